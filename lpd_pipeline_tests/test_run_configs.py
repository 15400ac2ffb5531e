"""Every run config under config/ is valid for the job its first line names, and make demo's command is true."""

from pathlib import Path

import dagster as dg
import pytest
import pandas as pd
import yaml

from lpd_pipeline.definitions import defs
from lpd_pipeline.defs.jobs import MAIN_RANGE_TAGS, PAPER_RANGE_TAGS

CONFIG_DIR = Path(__file__).resolve().parents[1] / "config"
RUN_CONFIGS = sorted(p for p in CONFIG_DIR.glob("*.yaml") if p.name not in ("dagster.yaml",)
                     and not p.name.startswith("dagster-"))


def _job_of(path: Path) -> str:
    first = path.read_text().splitlines()[0]
    assert first.startswith("# job: "), f"{path.name}: the first line must be '# job: <job name>'"
    return first.removeprefix("# job: ").strip()


def test_there_is_a_config_for_demo_paper_evaluate_and_render():
    assert {"demo.yaml", "paper_gpu.yaml", "evaluate_only.yaml", "render_only.yaml"} <= {p.name for p in RUN_CONFIGS}


@pytest.mark.parametrize("path", RUN_CONFIGS, ids=[p.name for p in RUN_CONFIGS])
def test_run_config_is_valid_for_its_job(path):
    job = defs.resolve_job_def(_job_of(path))
    run_config = yaml.safe_load(path.read_text())
    result = dg.validate_run_config(job, run_config)
    assert result, f"{path.name} is not valid for {job.name}"


def test_an_invalid_value_is_refused_naming_the_field():
    job = defs.resolve_job_def("full_pipeline")
    with pytest.raises(dg.DagsterInvalidConfigError, match="selection_rule"):
        dg.validate_run_config(job, {"ops": {"best_checkpoint": {"config": {"selection_rule": "psnr"}}}})


def test_make_demo_runs_full_pipeline_over_the_paper_and_quality_range():
    makefile = (CONFIG_DIR.parent / "Makefile").read_text().replace("\\\n", " ")  # join continued lines
    demo = makefile[makefile.index("\ndemo:"):makefile.index("\nprepare-demo:")]
    assert "dagster job execute -m lpd_pipeline -j full_pipeline" in demo
    assert "-c config/demo.yaml --tags $(MAIN_RANGE)" in " ".join(demo.split())
    assert PAPER_RANGE_TAGS == {"dagster/asset_partition_range_start": "resnet9",
                                "dagster/asset_partition_range_end": "unet256"}
    assert MAIN_RANGE_TAGS == {"dagster/asset_partition_range_start": "resnet9",
                               "dagster/asset_partition_range_end": "unet256-colour"}
    for key, value in MAIN_RANGE_TAGS.items():
        assert f'"{key}": "{value}"' in makefile
    # The range covers exactly the paper's two and the colour-quality variant, in partition order.
    partitions = defs.resolve_job_def("full_pipeline").partitions_def.get_partition_keys()
    assert partitions[:3] == ["resnet9", "unet256", "unet256-colour"]


def test_demo_config_makes_small_demo_paintings(tmp_path):
    """config/demo.yaml's demo_scale reaches the generated demo paintings (raw_paintings' op config)."""
    from lpd_pipeline.defs.assets.dataset import raw_paintings
    from lpd_pipeline.defs.resources import CurationResource, PaintingSourcesResource, ParquetIOManager, \
        StorageResource

    demo_yaml = yaml.safe_load((CONFIG_DIR / "demo.yaml").read_text())
    assert demo_yaml["ops"]["raw_paintings"]["config"]["demo_scale"] == 0.5
    assert demo_yaml["resources"]["curation_settings"]["config"]["tile_size"] == 128
    assert demo_yaml["ops"]["trained_generator"]["config"]["restart"] is True  # a rerun after an update works
    storage = StorageResource(storage_root=str(tmp_path))
    result = dg.materialize(
        [raw_paintings], run_config={"ops": {"raw_paintings": {"config": {"demo_scale": 0.2}}}},
        resources={"storage": storage, "painting_sources": PaintingSourcesResource(),
                   "curation_settings": CurationResource(workers=1),
                   "parquet_io_manager": ParquetIOManager(storage=storage)})
    assert result.success
    table = pd.read_parquet(tmp_path / "assets" / "raw_paintings.parquet")
    assert len(table) > 20 and max(table["width"].max(), table["height"].max()) <= 1024 * 0.2 + 1
