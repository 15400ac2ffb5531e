"""The raw-folder sensor starts prepare_dataset, and a refresh processes only what is new: counted from the runs'
metadata (files decoded, paintings whose tiles were scored), not timed."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import pytest

from lpd_pipeline import demo
from lpd_pipeline.defs.sensors import new_raw_paintings
from lpd_pipeline.sources.local import scan_local_folder

TILE = 128


@pytest.fixture()
def folders(tmp_path, monkeypatch):
    raw, spare, storage = (tmp_path / name for name in ("raw", "spare", "storage"))
    demo.generate_demo_paintings(raw, seed=1, n_colored=3, n_ink=1, scale=0.4, with_defects=False)
    demo.generate_demo_paintings(spare, seed=2, n_colored=2, n_ink=0, scale=0.4, with_defects=False)
    monkeypatch.setenv("LPD_RAW_DIR", str(raw))  # what the sensor watches (the daemon's environment)
    return raw, spare, storage


def _tick(instance, cursor):
    context = dg.build_sensor_context(instance=instance, cursor=cursor)
    return new_raw_paintings(context), context.cursor


def _run(instance, request: dg.RunRequest, raw: Path, storage: Path) -> dict[str, dict]:
    """prepare_dataset as the daemon launches it for the request (sources and storage from its environment,
    given here as resource config), in process; the metadata of each asset's materialization."""
    from lpd_pipeline.definitions import defs

    run_config = {"resources": {
        "painting_sources": {"config": {"raw_dir": str(raw)}},
        "storage": {"config": {"storage_root": str(storage)}},
        "curation_settings": {"config": {"tile_size": TILE, "stride": TILE, "workers": 1}},
    }}
    result = defs.resolve_job_def("prepare_dataset").execute_in_process(
        run_config=run_config, instance=instance, tags=request.tags)
    assert result.success
    return {node: {k: v.value for k, v in result.asset_materializations_for_node(node)[0].metadata.items()}
            for node in ("raw_paintings", "painting_tiles")}


def test_a_refresh_processes_only_the_new_paintings(folders, tmp_path):
    raw, spare, storage = folders
    first_files = [p.path for p in scan_local_folder(raw)[0]]
    new_files = [p.path for p in scan_local_folder(spare)[0]]
    with dg.instance_for_test() as instance:
        request, cursor = _tick(instance, None)
        assert isinstance(request, dg.RunRequest)
        first = _run(instance, request, raw, storage)
        assert first["raw_paintings"]["decoded"] == len(first_files)
        assert first["raw_paintings"]["reused_from_cache"] == 0
        scored_first = first["painting_tiles"]["paintings_scored"]
        assert scored_first >= 3 and first["painting_tiles"]["paintings_reused"] == 0

        skipped, cursor = _tick(instance, cursor)
        assert isinstance(skipped, dg.SkipReason)  # nothing new: no run

        for path in new_files:
            shutil.copy2(path, raw / f"new_{Path(path).name}")
        request2, cursor = _tick(instance, cursor)
        assert isinstance(request2, dg.RunRequest) and request2.run_key != request.run_key
        second = _run(instance, request2, raw, storage)

    # Only the two new files are decoded and only their tiles are scored; the others come from the caches.
    assert second["raw_paintings"]["files_found"] == len(first_files) + len(new_files)
    assert second["raw_paintings"]["decoded"] == len(new_files) == 2
    assert second["raw_paintings"]["reused_from_cache"] == len(first_files)
    assert second["painting_tiles"]["paintings_scored"] == 2
    assert second["painting_tiles"]["paintings_reused"] == scored_first
