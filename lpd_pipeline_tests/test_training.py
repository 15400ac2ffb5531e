"""Training config, tile store, checkpoints, retention and a tiny training of every backbone × colour space."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from lpd_pipeline import imaging
from lpd_pipeline.training import checkpoints as ckpt
from lpd_pipeline.training.config import ConfigError, TrainConfig
from lpd_pipeline.training.data import (
    DataError,
    EpochIndexSampler,
    TilePairDataset,
    build_tile_store,
    flip_decision,
)
from lpd_pipeline.training.loop import Pix2PixModel, _linear_decay_rule, train
from lpd_pipeline_tests.training_fixtures import tiny_config, write_fake_tiles


# ---- config ----------------------------------------------------------------------------------------------
def test_config_defaults_are_the_paper_ones_and_round_trip():
    config = TrainConfig()
    assert (config.lr, config.beta1, config.beta2, config.lambda_l1) == (2e-4, 0.5, 0.999, 100.0)
    assert (config.n_epochs, config.n_epochs_decay, config.batch_size, config.norm) == (100, 100, 1, "batch")
    assert config.gan_mode == "vanilla" and config.flip is True and config.total_epochs == 200
    custom = config.replace(backbone="resnet9", color_space="lab", keep_every=3, amp="bf16")
    assert TrainConfig.from_json(custom.to_json()) == custom
    assert TrainConfig.from_dict(json.loads(custom.to_json())).to_dict() == custom.to_dict()


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"backbone": "vgg"}, "backbone"),
        ({"lr": 0.0}, "lr"),
        ({"batch_size": 0}, "batch_size"),
        ({"amp": "fp8"}, "amp"),
        ({"beta1": 1.0}, "beta1"),
        ({"tile_size": 48, "backbone": "unet256"}, "tile_size"),
        ({"flip": "yes"}, "flip"),
    ],
)
def test_config_rejects_bad_values_naming_the_field(changes, needle):
    with pytest.raises(ConfigError, match=needle):
        TrainConfig(**changes)


def test_config_rejects_unknown_keys_and_bad_json():
    with pytest.raises(ConfigError, match="lamda_l1"):
        TrainConfig.from_dict({"lamda_l1": 10})
    with pytest.raises(ConfigError, match="not valid JSON"):
        TrainConfig.from_json("{nope")


def test_lr_rule_matches_the_reference_linear_policy():
    rule = _linear_decay_rule(3, 2)
    # reference: 1 - max(0, epoch + epoch_count - n_epochs) / (n_epochs_decay + 1), epoch_count = 1
    assert [rule(e) for e in range(5)] == pytest.approx([1.0, 1.0, 1.0, 2 / 3, 1 / 3])


# ---- data ------------------------------------------------------------------------------------------------
def test_tile_store_matches_pngs_is_reused_and_tracks_changes(storage_root, tmp_path):
    tiles = write_fake_tiles(storage_root, n_train=4, n_test=1)
    store = build_tile_store(tiles, storage_root, "train", tmp_path / "store")
    rows = pd.read_parquet(tiles).query("split == 'train'").sort_values("tile_id")
    assert store.n == 4 and store.size == 32 and list(store.tile_ids) == rows["tile_id"].tolist()
    for i, row in enumerate(rows.itertuples()):
        assert np.array_equal(store.color()[i], np.asarray(Image.open(storage_root / row.color_path)))
        assert np.array_equal(store.gray()[i], np.asarray(Image.open(storage_root / row.gray_path)))

    color_mtime = store.color_path.stat().st_mtime_ns
    again = build_tile_store(tiles, storage_root, "train", tmp_path / "store")
    assert again.fingerprint == store.fingerprint and store.color_path.stat().st_mtime_ns == color_mtime

    # One changed pixel changes the fingerprint and forces a rebuild with the new content.
    first = storage_root / rows["color_path"].iloc[0]
    pixels = np.asarray(Image.open(first)).copy()
    pixels[0, 0] = 255 - pixels[0, 0]
    Image.fromarray(pixels).save(first)
    imaging.save_image(storage_root / rows["gray_path"].iloc[0], imaging.luma_bt601(pixels))  # keep the pair valid
    rebuilt = build_tile_store(tiles, storage_root, "train", tmp_path / "store")
    assert rebuilt.fingerprint != store.fingerprint
    assert np.array_equal(rebuilt.color()[0], pixels)


def test_tile_store_errors_name_the_file(storage_root, tmp_path):
    tiles = write_fake_tiles(storage_root, n_train=2, n_test=0)
    missing = storage_root / pd.read_parquet(tiles)["gray_path"].iloc[1]
    missing.unlink()
    with pytest.raises(DataError, match=missing.name):
        build_tile_store(tiles, storage_root, "train", tmp_path / "store")
    with pytest.raises(DataError, match="no tiles in split 'test_ink'"):
        build_tile_store(tiles, storage_root, "test_ink", tmp_path / "store2")
    with pytest.raises(DataError, match="does not exist"):
        build_tile_store(tmp_path / "nope.parquet", storage_root, "train", tmp_path / "store3")
    # A gray file that is not its colour tile's luma (damaged, swapped) is refused, naming both files.
    table = pd.read_parquet(tiles)
    colour = imaging.decode_image(storage_root / table["color_path"].iloc[1])
    imaging.save_image(missing, 255 - imaging.luma_bt601(colour))
    with pytest.raises(DataError, match="not the BT.601 luma"):
        build_tile_store(tiles, storage_root, "train", tmp_path / "store4")


def test_flips_are_reproducible_and_keep_pairs_aligned(storage_root, tmp_path):
    tiles = write_fake_tiles(storage_root, n_train=6, n_test=0)
    store = build_tile_store(tiles, storage_root, "train", tmp_path / "store")
    dataset = TilePairDataset(store, flip=True, seed=3)
    decisions = [flip_decision(3, epoch, i) for epoch in range(4) for i in range(store.n)]
    assert decisions == [flip_decision(3, epoch, i) for epoch in range(4) for i in range(store.n)]
    assert 0 < sum(decisions) < len(decisions)  # both outcomes happen
    for epoch in range(2):
        for i in range(store.n):
            gray, color = dataset[(epoch, i)]
            expected = store.color()[i][:, ::-1] if flip_decision(3, epoch, i) else store.color()[i]
            assert np.array_equal(color.numpy(), expected)
            assert np.array_equal(gray.numpy(), imaging.luma_bt601(color.numpy()))  # gray stays the luma of its colour
    unflipped = TilePairDataset(store, flip=False, seed=3)
    assert all(np.array_equal(unflipped[(e, i)][1].numpy(), store.color()[i]) for e in range(3) for i in range(6))


def test_sampler_order_depends_only_on_seed_epoch_and_shards_cover_everything():
    one = EpochIndexSampler(10, seed=1)
    one.set_epoch(2)
    order = list(one)
    again = EpochIndexSampler(10, seed=1)
    again.set_epoch(2)
    assert list(again) == order and sorted(i for _, i in order) == list(range(10))
    assert all(e == 2 for e, _ in order)
    shards = []
    for rank in range(2):
        sampler = EpochIndexSampler(10, seed=1, rank=rank, world_size=2)
        sampler.set_epoch(2)
        shards += [i for _, i in sampler]
    assert sorted(shards) == list(range(10))


# ---- training, checkpoints, retention -----------------------------------------------------------------------
@pytest.mark.parametrize("backbone", ["resnet9", "unet256"])
@pytest.mark.parametrize("color_space", ["rgb", "lab"])
def test_tiny_training_writes_checkpoints_table_and_generator(storage_root, tmp_path, backbone, color_space):
    tiles = write_fake_tiles(storage_root, n_train=4, n_test=1)
    config = tiny_config(backbone=backbone, color_space=color_space, n_epochs=1, n_epochs_decay=0)
    events = []
    result = train(config, tiles, storage_root, tmp_path / "run", on_event=events.append)
    assert result.finished and result.epochs_completed == 1
    assert [p.name for p in result.checkpoints] == ["epoch_0001.pt"]
    table = pd.read_parquet(tmp_path / "run" / "checkpoints.parquet")
    assert table["epoch"].tolist() == [1] and table["path"].iloc[0] == str(result.checkpoints[0])
    losses = result.history[-1]
    assert all(np.isfinite(losses[k]) for k in ("G_GAN", "G_L1", "D_real", "D_fake"))
    assert [e["event"] for e in events] == ["run_start", "epoch_end", "checkpoint", "run_end"]
    assert events[1]["img_per_s"] > 0 and events[1]["lr"] == pytest.approx(2e-4)

    loaded = ckpt.load_generator(result.generator_path)
    in_ch, out_ch = (1, 3) if color_space == "rgb" else (1, 2)
    with torch.no_grad():
        out = loaded.net(torch.zeros(1, in_ch, 32, 32))
    assert out.shape == (1, out_ch, 32, 32) and loaded.config == config


def test_checkpoint_contents_load_weights_only_and_export(storage_root, tmp_path):
    tiles = write_fake_tiles(storage_root, n_train=4, n_test=0)
    config = tiny_config(n_epochs=2, n_epochs_decay=0)
    result = train(config, tiles, storage_root, tmp_path / "run")
    raw = torch.load(result.checkpoints[-1], weights_only=True)  # plain containers and tensors only
    expected = {"format", "epoch", "global_step", "config", "data_fingerprint", "generator", "discriminator",
                "optimizer_g", "optimizer_d", "scheduler_g", "scheduler_d", "grad_scaler", "rng",
                "loss_history", "wall_time_s", "world_size", "torch_version"}
    assert expected <= set(raw)
    assert raw["epoch"] == 2 and raw["global_step"] == 4 and len(raw["loss_history"]) == 2
    assert TrainConfig.from_dict(raw["config"]) == config
    assert set(raw["rng"]) >= {"python", "numpy", "torch_cpu"}
    assert raw["optimizer_g"]["state"] and raw["scheduler_g"]["last_epoch"] == 2

    # Restoring the captured RNG state reproduces the same draws.
    ckpt.restore_rng_state(raw["rng"])
    draws = (torch.rand(3), np.random.rand(2))
    ckpt.restore_rng_state(raw["rng"])
    assert torch.equal(draws[0], torch.rand(3)) and np.array_equal(draws[1], np.random.rand(2))

    fp32 = ckpt.export_generator(result.checkpoints[-1], tmp_path / "g32.pt", dtype="fp32")
    fp16 = ckpt.export_generator(result.checkpoints[-1], tmp_path / "g16.pt", dtype="fp16")
    assert fp16.stat().st_size < 0.7 * fp32.stat().st_size < result.checkpoints[-1].stat().st_size
    net32 = ckpt.load_generator(fp32).net
    from_checkpoint = ckpt.load_generator(result.checkpoints[-1])  # a training checkpoint loads the same way
    assert from_checkpoint.epoch == raw["epoch"]
    for name, tensor in net32.state_dict().items():
        assert torch.equal(tensor, raw["generator"][name]), name
        assert torch.equal(from_checkpoint.net.state_dict()[name], tensor), name
    x = torch.rand(2, 1, 32, 32) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(ckpt.load_generator(fp16, mode="eval").net(x),
                              ckpt.load_generator(fp32, mode="eval").net(x), atol=2e-2)

    # Default inference mode = the reference test script: the network as in training (batch statistics,
    # dropout on). Eval mode uses running statistics instead, which differs.
    generator = Pix2PixModel(config, torch.device("cpu")).generator
    generator.load_state_dict(raw["generator"])
    generator.train()
    assert net32.training and not ckpt.load_generator(fp32, mode="eval").net.training
    with torch.no_grad():
        torch.manual_seed(0)
        reference = generator(x)
        torch.manual_seed(0)
        assert torch.equal(net32(x), reference)
        assert not torch.allclose(ckpt.load_generator(fp32, mode="eval").net(x), reference, atol=1e-3)
    with pytest.raises(ValueError, match="mode"):
        ckpt.load_generator(fp32, mode="test")

    with pytest.raises(ckpt.CheckpointError, match="not an lpd training checkpoint"):
        torch.save({"hello": 1}, tmp_path / "other.pt")
        ckpt.load_checkpoint(tmp_path / "other.pt")


def test_retention_policy():
    assert ckpt.retained_epochs([5, 10, 15, 20, 25], 2, 5) == {10, 20, 25}
    assert ckpt.retained_epochs([5, 10, 15, 20], 2, 5) == {10, 20}
    assert ckpt.retained_epochs([5, 10, 12], 0, 5) == {5, 10, 12}
    assert ckpt.retained_epochs([5, 10, 12], None, 5) == {5, 10, 12}
    assert ckpt.retained_epochs([], 3, 5) == set()


def test_retention_during_training_keeps_table_in_sync(storage_root, tmp_path):
    tiles = write_fake_tiles(storage_root, n_train=2, n_test=0)
    config = tiny_config(n_epochs=3, n_epochs_decay=0, keep_every=2)
    result = train(config, tiles, storage_root, tmp_path / "run")
    assert [p.name for p in result.checkpoints] == ["epoch_0002.pt", "epoch_0003.pt"]
    table = pd.read_parquet(tmp_path / "run" / "checkpoints.parquet")
    assert table["epoch"].tolist() == [2, 3]
    assert all(ckpt.load_checkpoint(p)["epoch"] == e for e, p in zip(table["epoch"], table["path"]))
    assert not list((tmp_path / "run" / "checkpoints").glob(".*"))  # no temp files left
