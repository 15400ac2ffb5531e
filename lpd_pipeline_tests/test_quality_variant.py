"""The ab-classification variant end to end (train 1 epoch -> checkpoint with its prior -> evaluation -> a rendered
painting), and the cheap remedies as training options."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from lpd_pipeline import imaging
from lpd_pipeline.evaluation.evaluate import evaluate_checkpoints
from lpd_pipeline.evaluation.settings import EvaluationSettings
from lpd_pipeline.metrics.color import colorfulness_per_image
from lpd_pipeline.models import abbins
from lpd_pipeline.models.build import build_model_discriminator
from lpd_pipeline.models.networks import GANLoss
from lpd_pipeline.models.options import VARIANTS, parse_variant
from lpd_pipeline.rendering.model import load_render_model
from lpd_pipeline.rendering.render import colorize_gray
from lpd_pipeline.rendering.settings import RenderSettings
from lpd_pipeline.settings import StorageLayout
from lpd_pipeline.training import checkpoints as ckpt
from lpd_pipeline.training import remedies
from lpd_pipeline.training.config import MODEL_FIELDS, OPTIMISATION_FIELDS, TrainConfig, config_differences
from lpd_pipeline.training.data import open_tile_store
from lpd_pipeline.training.loop import train
from lpd_pipeline_tests.evaluation_fixtures import FakeMetricModels, tiny_dataset
from lpd_pipeline_tests.training_fixtures import tiny_config

VARIANT = "unet256-labcls"


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    """Tiny networks on one torch thread (conftest.one_torch_thread)."""


def test_the_classification_variant_is_a_variant_everywhere():
    assert VARIANT in VARIANTS and "resnet9-labcls" in VARIANTS
    assert parse_variant(VARIANT) == ("unet256", "labcls")
    assert VARIANTS[:2] == ("resnet9", "unet256")  # make demo's partition range is unchanged


def test_labcls_trains_evaluates_and_renders(storage_root):
    tiny_dataset(storage_root)
    layout = StorageLayout(storage_root)
    config = tiny_config(backbone="unet256", color_space="labcls", ngf=4, ndf=4, n_epochs=1, n_epochs_decay=0,
                         ink_augment=True, lambda_colorfulness=1.0)
    result = train(config, layout.tiles_table, storage_root, layout.training_dir(VARIANT))
    assert result.finished and np.isfinite(list(result.last_losses.values())).all()

    # The prior is the training tiles' own, stored with the checkpoint and the export.
    payload = ckpt.load_checkpoint(result.checkpoints[-1])
    store = open_tile_store(storage_root / "training" / "tile_store" / "train")
    expected = abbins.prior_from_tiles(store.color(), abbins.bin_centers(config.ab_grid))
    assert torch.allclose(payload["generator"]["prior"], expected)
    loaded = ckpt.load_generator(result.generator_path, mode="eval")
    assert torch.allclose(loaded.net.prior, expected) and loaded.net.temperature.item() == pytest.approx(0.38)

    table = pd.read_parquet(result.table_path)
    run = evaluate_checkpoints(layout, VARIANT, table, EvaluationSettings(bootstrap=10),
                               models_factory=FakeMetricModels)
    assert run.evaluated == [1] and (run.rows["status"] == "ok").all()
    assert np.isfinite(run.rows[["fid", "lpips", "delta_e", "delta_cf", "ink_kid"]].to_numpy(float)).all()
    other = evaluate_checkpoints(layout, "unet256-lab", table, EvaluationSettings(bootstrap=10),
                                 models_factory=FakeMetricModels)
    assert other.skipped and "unet256/labcls model" in other.skipped[0][1]

    model = load_render_model(result.checkpoints[-1], "cpu")
    assert model.variant == VARIANT and model.color_space == "labcls"
    gray = imaging.luma_bt601(np.random.default_rng(0).integers(0, 256, (70, 90, 3), dtype=np.uint8))
    painting = colorize_gray(gray, model, RenderSettings(tile=32, overlap=0.25))
    assert painting.shape == (70, 90, 3) and painting.dtype == np.uint8
    # Lightness is the input's: the output's luma stays close to the gray painting.
    assert np.abs(imaging.luma_bt601(painting).astype(int) - gray.astype(int)).mean() < 3


def test_ink_augmentation_is_a_pure_function_of_its_seed():
    gray = np.arange(256, dtype=np.uint8).reshape(16, 16)
    draws = [remedies.augment_ink(gray, torch.Generator().manual_seed(s)) for s in range(20)]
    again = [remedies.augment_ink(gray, torch.Generator().manual_seed(s)) for s in range(20)]
    assert all(np.array_equal(a, b) for a, b in zip(draws, again))
    changed = [d for d in draws if not np.array_equal(d, gray)]
    assert 8 <= len(changed) < 20  # probability 0.8
    for d in changed:
        assert d.dtype == np.uint8 and d.shape == gray.shape
        assert np.all(np.diff(d.astype(int).ravel()) >= 0)  # a monotone tone curve: the order of tones is kept
        assert d.min() <= 0.12 * 255 + 1


def test_colorfulness_loss_matches_the_metric_and_saturation_raises_it():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 16, 16, 3), dtype=np.uint8)
    ours = remedies.colorfulness(torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0)
    assert np.allclose(ours.numpy(), colorfulness_per_image(images), rtol=1e-3, atol=1e-2)
    targets = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1.0
    saturated = remedies.saturate_targets(targets, "rgb", 1.3)
    assert (remedies.colorfulness((saturated + 1) / 2) > ours).all()
    assert torch.equal(remedies.saturate_targets(targets, "rgb", 1.0), targets)
    ab = torch.full((1, 2, 2, 2), 0.9)
    assert remedies.saturate_targets(ab, "lab", 1.5).max() == 1.0  # clipped to the encoding's range
    inputs = torch.zeros(3, 1, 16, 16)
    fake = torch.zeros(3, 2, 16, 16, requires_grad=True)
    loss = remedies.colorfulness_loss(inputs, fake, torch.full((3, 2, 16, 16), 0.3), "lab")
    loss.backward()
    assert loss.item() > 0 and fake.grad.abs().sum() > 0


def test_regional_colorfulness_loss_is_not_fooled_by_stripes():
    """Row stripes of opposite chroma raise per-pixel colourfulness; 4 x 4 block averages cancel them."""
    inputs = torch.full((1, 1, 16, 16), 0.2)  # a mid-light tile (encoded L*)
    flat = torch.zeros(1, 2, 16, 16)
    stripes = torch.zeros(1, 2, 16, 16)
    stripes[:, 0, 0::2], stripes[:, 0, 1::2] = 0.18, -0.18  # a* alternating by row
    real = torch.zeros(1, 2, 16, 16)
    real[:, 0, :, :8], real[:, 1, :, 8:] = 0.3, 0.3  # two coherent colour regions
    per_pixel = [remedies.colorfulness_loss(inputs, x, real, "lab").item() for x in (flat, stripes)]
    regional = [remedies.colorfulness_loss(inputs, x, real, "lab", scale=4).item() for x in (flat, stripes)]
    assert per_pixel[1] < 0.5 * per_pixel[0]  # per pixel, stripes earn most of the target's colourfulness
    assert regional[1] > 0.95 * regional[0]  # regionally they are nearly as gray as a flat tile (sRGB is not linear)


def test_hinge_loss_and_spectral_norm_discriminator():
    hinge = GANLoss("hinge")
    logits = torch.tensor([[-2.0, 0.5, 3.0]])
    assert hinge(logits, True).item() == pytest.approx((3.0 + 0.5 + 0.0) / 3)
    assert hinge(logits, False).item() == pytest.approx((0.0 + 1.5 + 4.0) / 3)
    assert hinge(logits, True, generator=True).item() == pytest.approx(-0.5)
    assert GANLoss("vanilla")(logits, True, generator=True) == GANLoss("vanilla")(logits, True)
    net = build_model_discriminator(TrainConfig(ndf=4, spectral_norm=True))
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())
    assert sum(torch.nn.utils.parametrize.is_parametrized(m) for m in net.modules()) == 5
    plain = build_model_discriminator(TrainConfig(ndf=4))
    assert not any(torch.nn.utils.parametrize.is_parametrized(m) for m in plain.modules())


def test_new_fields_are_off_by_default_and_old_configs_still_match():
    config = TrainConfig()
    assert (config.color_space, config.ink_augment, config.lambda_colorfulness, config.target_saturation,
            config.spectral_norm, config.gan_mode) == ("rgb", False, 0.0, 1.0, False, "vanilla")
    new = {"ab_grid", "annealed_temperature", "spectral_norm", "lambda_ce", "rebalance_lambda", "ink_augment",
           "lambda_colorfulness", "lambda_perceptual", "target_saturation"}
    saved = {k: v for k, v in config.to_dict().items() if k not in new}  # a checkpoint written before them
    assert config_differences(saved, config, MODEL_FIELDS + OPTIMISATION_FIELDS) == {}
    assert config_differences(saved, config.replace(ink_augment=True), OPTIMISATION_FIELDS) == {
        "ink_augment": (False, True)}
