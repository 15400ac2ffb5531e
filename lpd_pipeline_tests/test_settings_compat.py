"""What today's users have keeps working after the settings became typed models: a checkpoint written by the
previous code (TrainConfig as a dataclass) resumes, and a saved Dagster run config with the old keys (``extra``,
``color_space``) still runs, with a deprecation warning in the run's log."""

import shutil
from pathlib import Path

import dagster as dg

from lpd_pipeline.defs.assets.training import trained_generator
from lpd_pipeline.defs.jobs import train_models
from lpd_pipeline.defs.resources import StorageResource
from lpd_pipeline.training import checkpoints as ckpt
from lpd_pipeline.training.config import TrainConfig
from lpd_pipeline.training.loop import train
from lpd_pipeline_tests.training_fixtures import write_fake_tiles

# Written by lpd_pipeline_tests/fixtures/checkpoint_v0_1_0/make_fixture.py with the code of commit e5a0bef.
FIXTURE = Path(__file__).parent / "fixtures" / "checkpoint_v0_1_0"


def test_a_checkpoint_written_by_the_previous_code_resumes(tmp_path):
    storage = tmp_path / "storage"
    shutil.copytree(FIXTURE / "storage", storage)
    run_dir = storage / "training" / "unet256"
    # The settings file the previous Dagster asset wrote beside the run, read by the new model.
    config = TrainConfig.from_json((FIXTURE / "dagster_run_config.json").read_text())
    saved = ckpt.load_checkpoint(ckpt.checkpoint_path(run_dir, 1))
    now = config.to_dict()
    assert {k: now[k] for k in saved["config"]} == saved["config"]  # the same values as the old dataclass wrote
    added = set(now) - set(saved["config"])  # fields added since (quality options), all at their defaults (off)
    assert {k: now[k] for k in added} == {k: TrainConfig.model_fields[k].default for k in added}

    events = []
    result = train(config, storage / "dataset" / "tiles.parquet", storage, run_dir, on_event=events.append)
    start = next(e for e in events if e["event"] == "run_start")
    assert start["start_epoch"] == 1 and str(start["resumed_from"]).endswith("epoch_0001.pt")
    assert result.finished and [e for e, _ in ckpt.list_checkpoints(run_dir)] == [1, 2]
    resumed = ckpt.load_checkpoint(ckpt.checkpoint_path(run_dir, 2))
    assert resumed["config"] == now and resumed["data_fingerprint"] == saved["data_fingerprint"]


def test_a_saved_run_config_with_todays_keys_runs_and_warns_in_the_run_log(storage_root):
    write_fake_tiles(storage_root, n_train=2, n_test=0, size=32)
    old_keys = {"color_space": "rgb", "n_epochs": 1, "n_epochs_decay": 0, "batch_size": 2, "ngf": 4, "ndf": 4,
                "device": "cpu", "extra": {"n_layers_d": 2, "num_workers": 0, "checkpoint_every": 1}}
    defs = dg.Definitions(
        assets=[trained_generator], jobs=[train_models],
        resources={"storage": StorageResource(storage_root=str(storage_root)),
                   "pipes_subprocess_client": dg.PipesSubprocessClient(env={"OMP_NUM_THREADS": "1"})})
    instance = dg.DagsterInstance.ephemeral()
    result = defs.resolve_job_def("train_models").execute_in_process(
        partition_key="unet256", run_config={"ops": {"trained_generator": {"config": old_keys}}}, instance=instance)
    assert result.success
    saved = ckpt.load_checkpoint(ckpt.read_checkpoint_table(storage_root / "training" / "unet256")["path"].iloc[-1])["config"]
    assert (saved["n_layers_d"], saved["ngf"], saved["checkpoint_every"]) == (2, 4, 1)
    warnings = [entry.user_message for entry in instance.all_logs(result.run_id) if entry.level == 30]
    assert any("'extra' is deprecated" in m for m in warnings), warnings
    assert any("'color_space' is deprecated" in m for m in warnings), warnings
