"""``python -m lpd_pipeline.train``: flags, config layering, clear errors, and a real Dagster Pipes launch."""


import json
import sys
from pathlib import Path

import pandas as pd
import pytest

from lpd_pipeline import train as entry
from lpd_pipeline.training import checkpoints as ckpt
from lpd_pipeline.training.config import TrainConfig
from lpd_pipeline_tests.training_fixtures import write_fake_tiles

dagster = pytest.importorskip("dagster")

REPO_ROOT = Path(__file__).resolve().parents[1]
TINY_FLAGS = ["--ngf", "8", "--ndf", "8", "--n-layers-d", "2", "--tile-size", "32", "--n-epochs", "1",
              "--n-epochs-decay", "0", "--batch-size", "2", "--checkpoint-every", "1", "--device", "cpu"]


def test_every_config_field_has_a_flag_and_layers_apply_in_order(tmp_path):
    parser = entry.build_parser()
    flags = {opt for action in parser._actions for opt in action.option_strings}
    for name, field in TrainConfig.model_fields.items():
        assert "--" + name.replace("_", "-") in flags, name
        if field.annotation is bool:
            assert "--no-" + name.replace("_", "-") in flags, name

    layer = tmp_path / "run.json"
    layer.write_text(TrainConfig(backbone="resnet9", ngf=16, lr=1e-3).to_json())
    args = parser.parse_args(["--config-json", str(layer), "--ngf", "32", "--no-flip", "--keep-every", "2"])
    config = entry.resolve_config(args)
    # defaults < json < explicit flags
    assert (config.backbone, config.lr, config.seed, config.ngf) == ("resnet9", 1e-3, 0, 32)
    assert config.flip is False and config.keep_every == 2 and config.n_epochs == 100


def test_standalone_run_trains_into_the_default_run_dir(storage_root):
    tiles = write_fake_tiles(storage_root, n_train=2, n_test=0)
    status = entry.run(["--storage", str(storage_root), "--backbone", "resnet9", "--color-space", "lab",
                        *TINY_FLAGS])
    assert status == 0
    run_dir = storage_root / "training" / "resnet9-lab"
    assert [e for e, _ in ckpt.list_checkpoints(run_dir)] == [1] and (run_dir / "generator.pt").is_file()
    assert tiles == storage_root / "dataset" / "tiles.parquet"


def test_tile_size_follows_the_tiles_unless_chosen(storage_root):
    write_fake_tiles(storage_root, n_train=2, n_test=0, size=32)
    without_size = [flag for flag in TINY_FLAGS if flag not in ("--tile-size", "32")]
    assert entry.run(["--storage", str(storage_root), "--backbone", "resnet9", *without_size]) == 0
    saved = ckpt.load_checkpoint(ckpt.list_checkpoints(storage_root / "training" / "resnet9")[-1][1])
    assert saved["config"]["tile_size"] == 32


def test_bad_input_exits_2_with_a_message_naming_the_problem(storage_root, tmp_path, capsys):
    missing = tmp_path / "nowhere" / "tiles.parquet"
    assert entry.run(["--storage", str(storage_root), "--tiles", str(missing), *TINY_FLAGS]) == 2
    assert str(missing) in capsys.readouterr().err

    bad_json = tmp_path / "bad.json"
    bad_json.write_text(json.dumps({"lamda_l1": 3}))
    assert entry.run(["--storage", str(storage_root), "--config-json", str(bad_json)]) == 2
    err = capsys.readouterr().err
    assert "bad.json" in err and "lamda_l1" in err

    tiles = write_fake_tiles(storage_root, n_train=2, n_test=0, size=32)
    assert entry.run(["--storage", str(storage_root), *TINY_FLAGS, "--tile-size", "64"]) == 2
    assert "--tile-size 32" in capsys.readouterr().err  # says what to do

    assert entry.run(["--storage", str(storage_root), *TINY_FLAGS, "--backbone", "resnet9", "--tile-size", "16",
                      "--n-layers-d", "3"]) == 2
    assert "too small for a PatchGAN" in capsys.readouterr().err

    table = pd.read_parquet(tiles)
    table.loc[0, "color_path"] = "../../outside.png"
    escaping = tmp_path / "escaping.parquet"
    table.to_parquet(escaping)
    assert entry.run(["--storage", str(storage_root), "--tiles", str(escaping), *TINY_FLAGS]) == 2
    assert "escapes the storage root" in capsys.readouterr().err

    with pytest.raises(SystemExit) as exit_info:
        entry.run(["--backbone", "vgg16"])
    assert exit_info.value.code == 2


def test_launched_by_dagster_pipes_reports_logs_and_a_materialization(storage_root, tmp_path):
    write_fake_tiles(storage_root, n_train=2, n_test=0)
    run_dir = tmp_path / "pipes_run"
    # The small-model settings arrive in a --config-json file, as the Dagster asset passes its run config.
    settings = tmp_path / "settings.json"
    settings.write_text(TrainConfig(backbone="unet256", ngf=8, ndf=8, n_layers_d=2, tile_size=32, batch_size=2,
                                    checkpoint_every=1).to_json())
    command = [sys.executable, "-m", "lpd_pipeline.train", "--storage", str(storage_root), "--run-dir",
               str(run_dir), "--config-json", str(settings), "--n-epochs", "1", "--n-epochs-decay", "1",
               "--device", "cpu"]

    @dagster.asset
    def pix2pix_unet(context: dagster.AssetExecutionContext, pipes_subprocess_client: dagster.PipesSubprocessClient):
        env = {"PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1"}
        return pipes_subprocess_client.run(command=command, context=context, env=env,
                                           cwd=str(REPO_ROOT)).get_materialize_result()

    instance = dagster.DagsterInstance.ephemeral()
    result = dagster.materialize([pix2pix_unet], resources={"pipes_subprocess_client": dagster.PipesSubprocessClient()},
                                 instance=instance, raise_on_error=True)
    assert result.success
    (materialization,) = result.asset_materializations_for_node("pix2pix_unet")
    meta = {key: value.value for key, value in materialization.metadata.items()}
    assert meta["checkpoint_count"] == 2 and meta["epochs_completed"] == 2 and meta["finished"] is True
    assert meta["config"]["ngf"] == 8 and meta["config"]["backbone"] == "unet256"
    assert Path(meta["last_checkpoint"]) == ckpt.checkpoint_path(run_dir, 2)
    assert meta["best_G_L1"] <= meta["last_G_L1"] + 1e-9 and meta["checkpoint_epochs"] == [1, 2]

    messages = [entry.user_message for entry in instance.all_logs(result.run_id)]
    assert any("epoch 2/2 G_GAN=" in m for m in messages), "per-epoch progress arrives through pipes.log"
    assert any("checkpoint epoch 1 written" in m for m in messages)
