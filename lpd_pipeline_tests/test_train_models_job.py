"""The train_models job: one tiny training per backbone and colour space through Dagster and Pipes."""

import dagster as dg
import pandas as pd
import pytest

from lpd_pipeline.defs.assets.training import trained_generator
from lpd_pipeline.defs.jobs import train_models
from lpd_pipeline.defs.resources import ParquetIOManager, StorageResource
from lpd_pipeline.models.options import variant_key
from lpd_pipeline.training import checkpoints as ckpt
from lpd_pipeline_tests.training_fixtures import write_fake_tiles

TINY = {"n_epochs": 1, "n_epochs_decay": 1, "batch_size": 2, "checkpoint_every": 1, "ngf": 8, "ndf": 8,
        "device": "cpu", "n_layers_d": 2, "num_workers": 0}


def _definitions(storage_root) -> dg.Definitions:
    storage = StorageResource(storage_root=str(storage_root))
    return dg.Definitions(
        assets=[trained_generator],
        jobs=[train_models],
        resources={
            "storage": storage,
            "parquet_io_manager": ParquetIOManager(storage=storage),
            "pipes_subprocess_client": dg.PipesSubprocessClient(env={"OMP_NUM_THREADS": "1"}),
        },
    )


def _table(storage_root, variant):
    """The checkpoint table the training of ``variant`` wrote (what evaluation reads)."""
    return ckpt.read_checkpoint_table(storage_root / "training" / variant)


def _run(defs, backbone, **config):
    run_config = {"ops": {"trained_generator": {"config": {**TINY, **config}}}}
    return defs.resolve_job_def("train_models").execute_in_process(
        partition_key=backbone, run_config=run_config, instance=dg.DagsterInstance.ephemeral())


@pytest.mark.parametrize("backbone", ["resnet9", "unet256"])
@pytest.mark.parametrize("color_space", ["rgb", "lab"])
def test_tiny_training_per_backbone_and_colour_space(storage_root, backbone, color_space):
    write_fake_tiles(storage_root, n_train=4, n_test=1, size=32)
    # The partition is the model variant: the colour space comes from it, not from the run config.
    result = _run(_definitions(storage_root), variant_key(backbone, color_space))
    assert result.success
    table = _table(storage_root, variant_key(backbone, color_space))
    assert list(table["epoch"]) == [1, 2]
    run_dir = storage_root / "training" / (backbone if color_space == "rgb" else f"{backbone}-lab")
    assert all(pd.Series(table["path"]).map(lambda p: p.startswith(str(run_dir))))
    (materialization,) = result.asset_materializations_for_node("trained_generator")
    meta = materialization.metadata
    assert meta["checkpoints"].value == 2
    assert meta["config"].value["color_space"] == color_space
    assert meta["loss_curve"].value.startswith("![loss curve](data:image/png;base64,")
    payload = ckpt.load_checkpoint(table["path"].iloc[-1])
    assert payload["config"]["backbone"] == backbone and payload["epoch"] == 2


def test_materializing_again_continues_and_restart_starts_over(storage_root):
    write_fake_tiles(storage_root, n_train=4, n_test=1, size=32)
    defs = _definitions(storage_root)
    first = _run(defs, "resnet9", max_epochs_this_run=1)
    assert list(_table(storage_root, "resnet9")["epoch"]) == [1]
    second = _run(defs, "resnet9")  # continues at epoch 2 instead of starting over
    assert list(_table(storage_root, "resnet9")["epoch"]) == [1, 2]
    history = ckpt.read_loss_history(storage_root / "training" / "resnet9")
    assert list(history["epoch"]) == [1, 2]
    third = _run(defs, "resnet9", restart=True, max_epochs_this_run=1)
    assert list(_table(storage_root, "resnet9")["epoch"]) == [1]

    # New tiles (a dataset refresh): training refuses, and the step failure says why and what to set.
    write_fake_tiles(storage_root, n_train=5, n_test=1, size=32)
    refused = defs.resolve_job_def("train_models").execute_in_process(
        partition_key="resnet9", run_config={"ops": {"trained_generator": {"config": TINY}}},
        instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)
    assert not refused.success
    failure = refused.get_step_failure_events()[0].event_specific_data
    message = failure.user_failure_data.description if failure.user_failure_data else failure.error.message
    assert "different data" in message and "restart: true" in message, message


def test_missing_dataset_fails_with_a_clear_message(storage_root):
    result = dg.materialize(
        [trained_generator], partition_key="unet256",
        resources=_definitions(storage_root).resources, raise_on_error=False,
        run_config={"ops": {"trained_generator": {"config": TINY}}},
    )
    assert not result.success
    error = result.get_step_failure_events()[0].event_specific_data.error
    assert "materialize tile_pairs" in error.cause.message


def test_torchrun_launcher_trains_with_two_cpu_processes(storage_root):
    """The same asset launched under torchrun (DDP, gloo on CPU): rank 0 reports through Pipes and checkpoints."""
    import sys
    from pathlib import Path

    torchrun = Path(sys.executable).with_name("torchrun")
    write_fake_tiles(storage_root, n_train=4, n_test=1, size=32)
    launcher = [str(torchrun), "--standalone", "--nproc-per-node", "2"]
    result = _run(_definitions(storage_root), "resnet9", launcher=launcher, n_epochs_decay=0)
    assert result.success
    table = _table(storage_root, "resnet9")
    assert list(table["epoch"]) == [1]
    payload = ckpt.load_checkpoint(table["path"].iloc[0])
    assert payload["world_size"] == 2


def test_run_config_colour_space_must_agree_with_the_variant(storage_root):
    write_fake_tiles(storage_root, n_train=4, n_test=1, size=32)
    with pytest.raises(dg.Failure, match="contradicts the partition 'resnet9'"):
        _run(_definitions(storage_root), "resnet9", color_space="lab")
