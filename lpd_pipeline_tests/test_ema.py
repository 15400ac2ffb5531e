"""The generator's weight average (TrainConfig.ema_decay): its rule, what checkpoints hold, exact resume."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lpd_pipeline.training import checkpoints as ckpt
from lpd_pipeline.training.ema import WeightAverage
from lpd_pipeline.training.loop import train
from lpd_pipeline_tests.test_resume import assert_same_state
from lpd_pipeline_tests.training_fixtures import tiny_config, write_fake_tiles


def test_the_average_follows_its_rule():
    net = nn.Sequential(nn.Linear(2, 1), nn.BatchNorm1d(1))
    average = WeightAverage(net, 0.5)
    with torch.no_grad():
        net[0].weight.fill_(1.0)
    average.update(net)  # the first update starts from the trained weights
    assert torch.equal(average.average[0].weight, net[0].weight)
    with torch.no_grad():
        net[0].weight.fill_(3.0)
        net[1].running_mean.fill_(7.0)
    average.update(net)  # update 1: d = min(0.5, 2/11)
    d = 2 / 11
    assert torch.allclose(average.average[0].weight, torch.full((1, 2), d * 1.0 + (1 - d) * 3.0))
    assert average.average[1].running_mean.item() == 7.0  # buffers are the trained network's
    assert average.decay_at(10_000) == 0.5 and not average.average[0].weight.requires_grad
    with pytest.raises(ValueError, match="decay"):
        WeightAverage(net, 1.0)


@pytest.fixture()
def tiles(storage_root):
    return write_fake_tiles(storage_root, n_train=4, n_test=0)


def test_checkpoints_hand_the_average_to_inference_and_resume_exactly(storage_root, tmp_path, tiles):
    config = tiny_config(backbone="unet256", n_epochs=1, n_epochs_decay=1, ema_decay=0.9)
    train(config, tiles, storage_root, tmp_path / "straight")
    train(config, tiles, storage_root, tmp_path / "sliced", max_epochs_this_run=1)
    resumed = train(config, tiles, storage_root, tmp_path / "sliced")
    assert resumed.resumed_from is not None and resumed.finished

    straight = ckpt.load_checkpoint(ckpt.list_checkpoints(tmp_path / "straight")[-1][1])
    sliced = ckpt.load_checkpoint(ckpt.list_checkpoints(tmp_path / "sliced")[-1][1])
    for key in ("generator", "generator_train", "ema_updates", "discriminator", "optimizer_g"):
        assert_same_state(straight[key], sliced[key], key)
    assert straight["ema_updates"] == straight["global_step"] == 4  # 4 tiles, batch 2, 2 epochs
    averaged, trained = straight["generator"], straight["generator_train"]
    assert not all(torch.equal(averaged[k], trained[k]) for k in averaged)
    # The exported inference file and a loaded checkpoint are the average.
    exported = torch.load(ckpt.generator_path(tmp_path / "straight"), weights_only=True)["generator"]
    assert all(torch.equal(exported[k], averaged[k]) for k in averaged)
    loaded = ckpt.load_generator(ckpt.list_checkpoints(tmp_path / "straight")[-1][1], mode="eval")
    assert all(torch.equal(v, averaged[k].float()) for k, v in loaded.net.state_dict().items())


def test_without_an_average_checkpoints_are_as_before(storage_root, tmp_path, tiles):
    train(tiny_config(), tiles, storage_root, tmp_path / "run")
    payload = ckpt.load_checkpoint(ckpt.list_checkpoints(tmp_path / "run")[-1][1])
    assert "generator_train" not in payload and "ema_updates" not in payload
