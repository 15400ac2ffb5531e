"""Palette control: histograms, presets learned from the training set, a trained palette generator used with a
preset or a reference painting from the colorize CLI, and a clear refusal for generators without it."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from skimage.color import rgb2lab

from lpd_pipeline import imaging
from lpd_pipeline.colorize import main
from lpd_pipeline.models import palette
from lpd_pipeline.models.abbins import bilinear_bins, bins_head
from lpd_pipeline.models.colorspace import lab_to_rgb
from lpd_pipeline.models.inference import generator_forward
from lpd_pipeline.rendering.model import load_render_model
from lpd_pipeline.settings import StorageLayout
from lpd_pipeline.training import checkpoints as ckpt
from lpd_pipeline.training.loop import train
from lpd_pipeline_tests.evaluation_fixtures import tiny_dataset
from lpd_pipeline_tests.training_fixtures import tiny_config


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    """Tiny networks on one torch thread (conftest.one_torch_thread)."""


def _flat(lab: tuple[float, float, float], size: int = 16) -> np.ndarray:
    rgb = lab_to_rgb(torch.tensor(lab).view(3, 1, 1)).permute(1, 2, 0)
    return np.broadcast_to((rgb * 255).round().to(torch.uint8).numpy(), (size, size, 3)).copy()


def test_histograms_keep_the_mean_colour_that_nearest_bins_lose():
    centers = palette.bin_centers(palette.DEFAULT_GRID)
    assert palette.palette_size() == len(centers) == 40
    # A pale green and a pale orange: both round to the paper-yellow bin (0, 30) of the 30-unit lattice.
    green, orange = _flat((70, -8, 18)), _flat((70, 8, 18))
    hist = palette.histograms(np.stack([green, orange]), centers)
    assert hist.shape == (2, 40) and torch.allclose(hist.sum(1), torch.ones(2))
    expected = torch.tensor(rgb2lab(np.stack([green, orange])[:, 0, 0] / 255.0)[:, 1:], dtype=torch.float32)
    assert torch.allclose(hist @ centers, expected, atol=0.05)  # the mean a*b* survives (skimage's Lab)
    assert not torch.allclose(hist[0], hist[1], atol=0.05)
    # Bilinear weights: four corners, summing to 1, mean = the point; at the gamut's edge still a distribution.
    points = torch.tensor([[-8.0, 18.0], [0.0, 0.0], [80.0, 67.0], [-86.0, 83.0]])
    weights, bins = bilinear_bins(points, palette.DEFAULT_GRID)
    assert torch.allclose(weights.sum(-1), torch.ones(4)) and bool((weights >= 0).all())
    assert torch.allclose((weights[:2, :, None] * centers[bins[:2]]).sum(1), points[:2], atol=1e-4)


def test_presets_are_the_pigment_quarters_of_the_training_set():
    centers = palette.bin_centers(palette.DEFAULT_GRID)
    rng = np.random.default_rng(0)
    families = {"blue-green": (55, -30, -5), "ochre": (60, 25, 35), "silk": (70, 2, 22), "paper": (85, 0, 4)}
    tiles = {name: [_flat(tuple(np.add(lab, rng.normal(0, 1, 3)))) for _ in range(3)] for name, lab in families.items()}
    stack = np.stack([t for name in families for t in tiles[name]])
    palettes = palette.histograms(stack, centers)
    presets = palette.learn_presets(palettes, centers)
    assert torch.equal(presets, palette.learn_presets(palettes, centers))  # deterministic
    assert presets.shape == (palette.N_PRESETS, 40) and torch.allclose(presets.sum(1), torch.ones(4))
    by_name = dict(zip(palette.PRESET_NAMES, presets))
    # Each pigment preset averages the quarter of the tiles (3 of 12) richest in it: exactly one family.
    assert torch.allclose(by_name["blue-green"], palettes[0:3].mean(0), atol=1e-6)
    assert torch.allclose(by_name["ochre"], palettes[3:6].mean(0), atol=1e-6)
    assert torch.allclose(by_name["pale"], palettes[9:12].mean(0), atol=1e-6)
    assert torch.allclose(by_name["average"], palettes.mean(0), atol=1e-6)
    # The planes are standardised by the training palettes: the average preset is all zeros but the flag, the
    # blue-green preset lies spreads away from it (a bin's raw share moves by hundredths), clipped.
    trained = palette.PaletteConditioned(torch.nn.Identity())
    trained.set_presets(stack)
    like = torch.zeros(1, 1, 2, 2)
    average = trained.planes(trained.preset("average"), like)[0, :, 0, 0]
    assert average.shape == (palette.plane_count(),) and float(average[-1]) == 1.0
    assert torch.allclose(average[:-1], torch.zeros(42), atol=1e-4)
    blue_green = trained.planes(trained.preset("blue-green"), like)[0, :, 0, 0]
    assert float(blue_green[:-1].abs().max()) > 1.0 and float(blue_green.abs().max()) <= palette.PLANE_CLIP
    assert float(blue_green[-3]) < -1.0  # its mean a* is well below the training set's
    assert torch.equal(trained.planes(None, like), torch.zeros(1, palette.plane_count(), 2, 2))
    # No blue-green pigment in the training set: no blue-green preset.
    net = palette.PaletteConditioned(torch.nn.Identity())
    net.set_presets(np.stack([t for name in ("ochre", "silk", "paper") for t in tiles[name]]))
    assert net.preset_names() == ["ochre", "pale", "average"]
    with pytest.raises(ValueError, match="unknown palette preset 'blue-green'"):
        net.preset("blue-green")


def test_a_palette_generator_of_the_old_version_is_refused_with_the_reason():
    net = palette.PaletteConditioned(torch.nn.Identity())
    old = {k: v for k, v in net.state_dict().items() if k != "palette_version"}
    with pytest.raises(RuntimeError, match="palette control of version 1 .* retrain"):
        net.load_state_dict(old)
    net.load_state_dict(palette.PaletteConditioned(torch.nn.Identity()).state_dict())


@pytest.fixture(scope="module")
def palette_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("palette_storage")
    with torch.random.fork_rng():
        torch.set_num_threads(1)
        tiny_dataset(root)
        layout = StorageLayout(root)
        config = tiny_config(backbone="unet256", color_space="labcls", ngf=4, ndf=4, n_epochs=2, n_epochs_decay=0,
                             palette=True)
        result = train(config, layout.tiles_table, root, layout.training_dir("unet256-labcls"))
    return root, result


def test_a_palette_generator_learns_presets_and_follows_a_palette(palette_run):
    _, result = palette_run
    loaded = ckpt.load_generator(result.generator_path, mode="eval")
    net = loaded.net
    names = net.preset_names()
    assert len(names) == palette.N_PRESETS and torch.allclose(net.presets.sum(1), torch.ones(len(names)))
    gray = torch.randint(0, 256, (2, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    _, none = generator_forward(net, "labcls", gray)
    _, first = generator_forward(net, "labcls", gray, palette=net.preset(names[0]))
    _, again = generator_forward(net, "labcls", gray, palette=net.preset(names[0]))
    _, other = generator_forward(net, "labcls", gray, palette=net.preset(names[-1]))
    assert torch.equal(first, again) and not torch.equal(first, other) and not torch.equal(first, none)
    with pytest.raises(ValueError, match="unknown palette preset"):
        net.preset("purple-haze")


def test_colorize_cli_takes_a_preset_or_a_painting_as_palette(palette_run, tmp_path, monkeypatch):
    root, result = palette_run
    source = tmp_path / "ink.png"
    imaging.save_image(source, np.random.default_rng(1).integers(0, 256, (40, 56), dtype=np.uint8))
    reference = tmp_path / "qinglu.png"
    imaging.save_image(reference, _flat((55, -30, -5), 64))
    preset = ckpt.load_generator(result.generator_path).net.preset_names()[0]
    outputs = {}
    for name, spec in (("preset", preset), ("painting", str(reference)), ("none", "")):
        out = tmp_path / f"{name}.png"
        args = [str(source), str(out), "--quiet", "--variant", "unet256-labcls", "--storage", str(root)]
        assert main(args + (["--palette", spec] if spec else [])) == 0
        with Image.open(out) as image:
            assert json.loads(image.text["lpd:settings"])["palette"] == spec
            outputs[name] = np.asarray(image.convert("RGB"))
    assert not np.array_equal(outputs["preset"], outputs["painting"])
    assert main([str(source), str(tmp_path / "x.png"), "--quiet", "--checkpoint", str(result.generator_path),
                 "--palette", "no-such-preset"]) == 2


def test_a_generator_without_palette_control_refuses_a_palette(storage_root):
    tiny_dataset(storage_root)
    layout = StorageLayout(storage_root)
    result = train(tiny_config(ngf=4, ndf=4, n_epochs=1, n_epochs_decay=0), layout.tiles_table, storage_root,
                   layout.training_dir("resnet9"))
    with pytest.raises(ValueError, match="not trained with palette control"):
        load_render_model(result.generator_path, "cpu", palette="ochre")
    with pytest.raises(ValueError, match="not trained with palette control"):
        generator_forward(ckpt.load_generator(result.generator_path).net, "rgb",
                          torch.zeros(1, 32, 32, dtype=torch.uint8), palette=torch.zeros(40))


def test_decode_temperature_from_the_cli_for_class_generators_only(palette_run, tmp_path, storage_root):
    root, result = palette_run
    source = tmp_path / "ink.png"
    imaging.save_image(source, np.random.default_rng(2).integers(0, 256, (40, 56), dtype=np.uint8))
    chroma = {}
    for t in ("0.2", "1.0"):
        out = tmp_path / f"t{t}.png"
        assert main([str(source), str(out), "--quiet", "--checkpoint", str(result.generator_path),
                     "--temperature", t]) == 0
        with Image.open(out) as image:
            assert json.loads(image.text["lpd:settings"])["temperature"] == float(t)
            lab = rgb2lab(np.asarray(image.convert("RGB")))
        chroma[t] = float(np.hypot(lab[..., 1], lab[..., 2]).mean())
    assert chroma["0.2"] != pytest.approx(chroma["1.0"], abs=1e-3)  # the decode follows the temperature
    assert main([str(source), str(tmp_path / "x.png"), "--quiet", "--checkpoint", str(result.generator_path),
                 "--temperature", "0"]) == 2  # out of range: refused with the reason
    model = load_render_model(result.generator_path, "cpu", temperature=0.5)
    assert float(bins_head(model.net).temperature) == 0.5
    tiny_dataset(storage_root)
    layout = StorageLayout(storage_root)
    rgb = train(tiny_config(ngf=4, ndf=4, n_epochs=1, n_epochs_decay=0), layout.tiles_table, storage_root,
                layout.training_dir("resnet9"))
    with pytest.raises(ValueError, match="regresses colour"):
        load_render_model(rgb.generator_path, "cpu", temperature=0.5)
