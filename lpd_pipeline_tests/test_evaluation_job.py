"""The evaluate_checkpoints job end to end through Dagster on a tiny trained model (fake metric networks)."""

import json

import dagster as dg
import pytest

from lpd_pipeline.defs.assets.evaluation import EVALUATION_ASSETS, evaluate_checkpoints
from lpd_pipeline.defs.assets.training import trained_generator
from lpd_pipeline.defs.resources import StorageResource
from lpd_pipeline.evaluation import evaluate, read_best_checkpoint, store
from lpd_pipeline.settings import StorageLayout
from lpd_pipeline_tests.evaluation_fixtures import FakeMetricModels, tiny_dataset, tiny_training

FAST = {"bootstrap": 10, "sample_color_tiles": 2, "sample_ink_tiles": 2}


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    """Every test here runs tiny networks on one torch thread (conftest.one_torch_thread)."""


def _definitions(storage_root) -> dg.Definitions:
    return dg.Definitions(
        assets=[trained_generator, *EVALUATION_ASSETS],
        jobs=[evaluate_checkpoints],
        resources={
            "storage": StorageResource(storage_root=str(storage_root)),
            "pipes_subprocess_client": dg.PipesSubprocessClient(),
        },
    )


def _run(defs, instance, variant="resnet9", best=None, **config):
    run_config = {"ops": {"checkpoint_evaluations": {"config": {**FAST, **config}},
                          "best_checkpoint": {"config": best or {}}}}
    return defs.resolve_job_def("evaluate_checkpoints").execute_in_process(
        partition_key=variant, run_config=run_config, instance=instance, raise_on_error=False)


def _as_training_output(storage_root, table, variant="resnet9"):
    """The checkpoint table trained_generator leaves for the partition (training is tested elsewhere)."""
    path = storage_root / "training" / variant / "checkpoints.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    table.to_parquet(path, index=False)


def test_evaluate_checkpoints_job_end_to_end(storage_root, monkeypatch):
    monkeypatch.setattr(evaluate, "default_models", FakeMetricModels)
    tiny_dataset(storage_root)
    table = tiny_training(storage_root, epochs=3)
    _as_training_output(storage_root, table)
    defs, instance = _definitions(storage_root), dg.DagsterInstance.ephemeral()

    result = _run(defs, instance, best={"keep_every_epochs": 2})
    assert result.success
    rows = store.read_evaluations(StorageLayout(storage_root), "resnet9")
    assert list(rows["epoch"]) == [1, 2, 3] and set(rows["status"]) == {"ok"}
    by_key = {m.asset_key.path[-1]: m for m in result.get_asset_materialization_events()}
    meta = by_key["checkpoint_evaluations"].materialization.metadata
    assert meta["evaluated"].value == 3 and meta["reused"].value == 0
    metrics = meta["metrics"].value  # a table, shown inline on the asset page
    assert [c.name for c in metrics.schema.columns][:3] == ["epoch", "status", "FID [95%]"] and metrics.records
    assert "data:image/jpeg;base64," in meta["sample_sheet"].value

    layout = StorageLayout(storage_root)
    best = read_best_checkpoint(layout, "resnet9")
    assert best["epoch"] in (1, 2, 3) and best["rule"] == "fid_then_lpips" and best["chosen_by"]
    (check,) = result.get_asset_check_evaluations()
    assert check.passed and check.check_name == "best_checkpoint_usable"
    best_meta = by_key["best_checkpoint"].materialization.metadata
    assert best_meta["epoch"].value == best["epoch"]
    # Retention (keep every 2nd epoch, the best and the latest): epoch 1 goes unless it is the best.
    kept = sorted(p.name for p in (storage_root / "training" / "resnet9" / "checkpoints").glob("*.pt"))
    expected = {"epoch_0002.pt", "epoch_0003.pt", f"epoch_{best['epoch']:04d}.pt"}
    assert set(kept) == expected

    comparison = by_key["backbone_comparison"].materialization.metadata
    assert comparison["variants"].value == 1
    assert [r.data["variant"] for r in comparison["comparison"].value.records] == ["resnet9"]  # an inline table
    assert comparison["metrics_per_epoch"].value.startswith("![metrics per epoch](data:image/png;base64,")
    assert (storage_root / "reports" / "backbone_comparison.csv").is_file()
    assert json.loads((storage_root / "evaluation" / "resnet9" / "best_checkpoint.json").read_text())["variant"] \
        == "resnet9"

    # Run again: nothing is scored twice (the retained checkpoints' rows come from the cache).
    _as_training_output(storage_root, __import__("pandas").read_parquet(
        storage_root / "training" / "resnet9" / "checkpoints.parquet"))
    again = _run(defs, instance)
    assert again.success
    meta = {m.asset_key.path[-1]: m for m in again.get_asset_materialization_events()}
    assert meta["checkpoint_evaluations"].materialization.metadata["evaluated"].value == 0


def test_no_scorable_checkpoint_fails_with_the_reasons(storage_root, monkeypatch):
    monkeypatch.setattr(evaluate, "default_models", FakeMetricModels)
    tiny_dataset(storage_root)
    table = tiny_training(storage_root, epochs=1)
    _as_training_output(storage_root, table, variant="unet256")  # a resnet9 checkpoint under unet256
    result = _run(_definitions(storage_root), dg.DagsterInstance.ephemeral(), variant="unet256")
    assert not result.success
    failure = result.get_step_failure_events()[0].event_specific_data
    message = failure.user_failure_data.description if failure.user_failure_data else failure.error.message
    assert "no checkpoint of 'unet256' could be scored" in message and "not of variant" in message
    assert read_best_checkpoint(StorageLayout(storage_root), "unet256") is None


def test_bad_settings_fail_with_the_field(storage_root, monkeypatch):
    monkeypatch.setattr(evaluate, "default_models", FakeMetricModels)
    tiny_dataset(storage_root)
    _as_training_output(storage_root, tiny_training(storage_root, epochs=1))
    # The run config is typed from EvaluationSettings: a bad value is refused before the run starts.
    with pytest.raises(dg.DagsterInvalidConfigError, match="selection_rule"):
        _run(_definitions(storage_root), dg.DagsterInstance.ephemeral(), best={"selection_rule": "psnr"})
    # A value only the core model can judge (a range) fails the step naming the field.
    result = _run(_definitions(storage_root), dg.DagsterInstance.ephemeral(), bootstrap=-1)
    assert not result.success
    failure = result.get_step_failure_events()[0].event_specific_data
    message = failure.user_failure_data.description if failure.user_failure_data else failure.error.message
    assert "bootstrap" in message
