"""The AlexNet feature loss (training/perceptual.py): the ImageNet trunk the metrics use, frozen, and a training
run with it on."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lpd_pipeline.metrics.alexnet import AlexNetWeightsMissing
from lpd_pipeline.settings import StorageLayout
from lpd_pipeline.training import perceptual
from lpd_pipeline.training.loop import train
from lpd_pipeline_tests.evaluation_fixtures import tiny_dataset
from lpd_pipeline_tests.metrics_fixtures import metric_weights  # noqa: F401
from lpd_pipeline_tests.training_fixtures import tiny_config


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    """Tiny networks on one torch thread (conftest.one_torch_thread)."""


def test_feature_loss_is_zero_on_equal_images_and_grows_with_the_difference(metric_weights):  # noqa: F811
    loss = perceptual.AlexNetFeatureLoss()
    assert not any(p.requires_grad for p in loss.parameters())
    real = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    assert loss(real, real).item() == pytest.approx(0.0, abs=1e-6)
    small = (real + 0.02 * torch.randn(real.shape, generator=torch.Generator().manual_seed(1))).clamp(0, 1)
    large = (real + 0.3 * torch.randn(real.shape, generator=torch.Generator().manual_seed(1))).clamp(0, 1)
    assert 0 < loss(small, real).item() < loss(large, real).item() <= 2.0
    # Its gradient reaches the image (what the generator learns from).
    fake = real.clone().requires_grad_(True)
    loss(fake, torch.roll(real, 7, dims=3)).backward()
    assert fake.grad is not None and fake.grad.abs().sum() > 0


def test_missing_weights_name_the_file_and_the_command(tmp_path):
    with pytest.raises(AlexNetWeightsMissing, match="lpd_pipeline.metrics.weights"):
        perceptual.AlexNetFeatureLoss(weights=tmp_path / "nothing.pth")


def test_training_with_the_perceptual_loss_runs_and_records_it(storage_root, metric_weights):  # noqa: F811
    tiny_dataset(storage_root)
    layout = StorageLayout(storage_root)
    base = dict(backbone="unet256", color_space="lab", ngf=4, ndf=4, n_epochs=1, n_epochs_decay=0)
    with_loss = train(tiny_config(**base, lambda_perceptual=5.0), layout.tiles_table, storage_root,
                      layout.training_dir("unet256-lab"))
    without = train(tiny_config(**base), layout.tiles_table, storage_root, storage_root / "plain", restart=True)
    assert with_loss.finished and np.isfinite(list(with_loss.last_losses.values())).all()
    # Same seed, same data: the only difference is the added term, so G's non-GAN loss is larger with it.
    assert with_loss.history[0]["G_L1"] > without.history[0]["G_L1"]
