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
from lpd_pipeline.models.abbins import bins_head
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


def test_histograms_presets_and_their_names():
    centers = palette.bin_centers(palette.DEFAULT_GRID)
    assert palette.palette_size() == len(centers) == 40
    blue_green, ochre = _flat((55, -30, -5)), _flat((65, 12, 40))
    hist = palette.histograms(np.stack([blue_green, ochre]), centers)
    assert hist.shape == (2, 40) and torch.allclose(hist.sum(1), torch.ones(2))
    assert palette.describe(hist[0], centers) == "blue-green" and palette.describe(hist[1], centers) == "ochre"
    assert palette.describe(palette.histograms(_flat((60, 1, 2))[None], centers)[0], centers) == "pale"
    rng = np.random.default_rng(0)
    tiles = np.stack([_flat((55 + rng.normal(), -30 + rng.normal(), -5)) for _ in range(6)]
                     + [_flat((65 + rng.normal(), 12, 40 + rng.normal())) for _ in range(6)])
    presets = palette.learn_presets(palette.histograms(tiles, centers), k=2)
    assert torch.equal(presets, palette.learn_presets(palette.histograms(tiles, centers), k=2))  # deterministic
    assert sorted(palette.preset_names(presets, centers)) == ["blue-green", "ochre"]
    assert palette.preset_names(torch.stack([hist[1], hist[1]]), centers) == ["ochre", "ochre-2"]


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
