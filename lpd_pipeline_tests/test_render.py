"""Whole-painting rendering: grid and blending maths, seams, colour consistency, luminance, scale, files."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from lpd_pipeline import imaging
from lpd_pipeline.models.colorspace import rgb_to_lab
from lpd_pipeline.models.networks import build_generator
from lpd_pipeline.rendering import (RenderInputError, RenderReport, RenderSettings, colorize_gray,
                                    load_render_model, plan_render, render_file)
from lpd_pipeline.rendering.compose import gray_lightness_table
from lpd_pipeline.rendering.grid import axis_grid, reflect_index, summed_weight, window_1d
from lpd_pipeline.rendering.model import RenderModel
from lpd_pipeline.rendering.png_stream import PngStreamWriter
from lpd_pipeline.rendering.render import seam_phase
from lpd_pipeline.rendering.seams import seam_spike
from lpd_pipeline.rendering.sliding import sliding_window
from lpd_pipeline.training.checkpoints import GENERATOR_FORMAT, save_torch_atomic
from lpd_pipeline.training.config import TrainConfig


# ---- helpers shared with the other rendering tests ------------------------------------------------------
def painting(height: int = 72, width: int = 104, seed: int = 0) -> np.ndarray:
    """A small gray 'painting': smooth washes, a few ink strokes, paper grain."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    wash = 150 + 50 * np.sin(xx / 11.0) * np.cos(yy / 15.0)
    wash[(np.abs(xx - yy - 10) < 2)] = 30  # an ink line
    return (wash + rng.normal(0, 6, (height, width))).clip(0, 255).astype(np.uint8)


def tiny_net(backbone: str = "resnet9", out_channels: int = 3, tile: int = 32, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return build_generator(backbone, in_channels=1, out_channels=out_channels, ngf=4, norm="batch",
                           use_dropout=False, image_size=tile).eval()


def tiny_model(backbone: str = "resnet9", space: str = "rgb", tile: int = 32) -> RenderModel:
    net = tiny_net(backbone, 3 if space == "rgb" else 2, tile)
    return RenderModel(net, space, tile, 32 if backbone == "unet256" else 4, backbone, "/nowhere/g.pt", 3, "lpd")


def write_export(path, backbone: str = "resnet9", space: str = "rgb", tile: int = 32, epoch: int = 7):
    """A generator export file in the project's own format, as training writes it."""
    config = TrainConfig(backbone=backbone, color_space=space, ngf=4, ndf=4, tile_size=tile, use_dropout=False)
    net = tiny_net(backbone, 3 if space == "rgb" else 2, tile)
    payload = {"format": GENERATOR_FORMAT, "generator": {k: v.clone() for k, v in net.state_dict().items()},
               "config": config.to_dict(), "epoch": epoch, "data_fingerprint": "test", "dtype": "fp32"}
    return save_torch_atomic(payload, path)


class TileOffsetNet(nn.Module):
    """A 'lab' generator whose tiles disagree in colour: a*b* = a per-tile offset (from the tile's content)
    plus a little of the input. It imitates the failure the renderer must hide (and the anchor must fix)."""

    def __init__(self) -> None:
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        key = x.mean(dim=(1, 2, 3)) * 997.0
        offset = torch.stack([torch.sin(key), torch.cos(key * 1.3)], dim=1) * 0.15  # ~ +-16 a*b* units
        return (offset[:, :, None, None] + 0.05 * x).clamp(-1, 1)


def offset_model(tile: int = 32) -> RenderModel:
    return RenderModel(TileOffsetNet(), "lab", tile, 4, "offset", "/nowhere/offset.pt", None, "lpd")


# ---- grid ------------------------------------------------------------------------------------------------
def test_reflect_index_matches_numpy_pad():
    for length in (1, 2, 5, 17):
        base = np.arange(length)
        padded = np.pad(base, (23, 31), mode="reflect") if length > 1 else np.zeros(length + 54, int)
        assert np.array_equal(base[reflect_index(np.arange(-23, length + 31), length)], padded)


@pytest.mark.parametrize("tile,stride", [(32, 32), (32, 16), (32, 24), (64, 48)])
def test_axis_grid_covers_image_with_margin(tile, stride):
    for length in (1, 7, 31, 32, 33, 100, 257):
        grid = axis_grid(length, tile, stride)
        assert grid.margin == (tile - stride) // 2
        assert grid.origins()[-1] + tile == grid.padded
        assert grid.padded >= length + 2 * grid.margin
        assert grid.count == 1 or grid.padded - stride < length + 2 * grid.margin  # no needless tile


def test_window_floor_peak_and_positive_sum():
    for kind in ("hann", "gaussian"):
        w = window_1d(32, kind, floor=0.02)
        assert w.min() == pytest.approx(0.02) and w.max() == pytest.approx(1.0)
        assert np.allclose(w, w[::-1])
        assert summed_weight(axis_grid(50, 32, 16), w).min() > 0


# ---- blending --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(1, 1), (5, 77), (40, 33), (70, 64)])
@pytest.mark.parametrize("stride", [32, 16, 24])
def test_blending_reproduces_an_identity_model_exactly(shape, stride):
    """Weights are normalised and tiles are cut with reflection: a model returning its input gives the image
    back, whatever the size (also smaller than a tile) or overlap. Strips never exceed one stride (bar the last)."""
    gray = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    strips = list(sliding_window(gray, lambda t: t[:, None].astype(np.float32), tile=32, stride=stride,
                                 window=window_1d(32), channels=1, batch_size=3))
    out = np.concatenate([s.values[0] for s in strips])
    assert out.shape == shape
    assert np.allclose(out, gray, atol=1e-3)
    assert all(s.values.shape[1] <= stride for s in strips[:-1])
    assert [s.y0 for s in strips] == list(np.cumsum([0] + [s.values.shape[1] for s in strips[:-1]]))


def test_naive_tiles_show_seams_blended_do_not():
    """Fold the chroma step between neighbouring columns/rows by the tile period: stitched tiles of different
    colour spike at the tile borders, blended ones do not."""
    gray, model = painting(96, 128), offset_model()
    naive = RenderSettings(mode="naive", consistency="none")
    blended = RenderSettings(mode="blended", consistency="none")
    plan_n, plan_b = plan_render(96, 128, model, naive), plan_render(96, 128, model, blended)
    seams_naive = seam_spike(colorize_gray(gray, model, naive), *seam_phase(plan_n, naive))
    seams_blended = seam_spike(colorize_gray(gray, model, blended), *seam_phase(plan_b, blended))
    assert seams_naive.columns > 3 and seams_naive.rows > 3, seams_naive
    assert seams_blended.worst < 1.5, seams_blended


def test_anchor_reduces_colour_spread_between_overlapping_tiles():
    gray, model = painting(96, 160), offset_model()
    before, after = RenderReport(None), RenderReport(None)
    colorize_gray(gray, model, RenderSettings(consistency="none"), report=before)
    colorize_gray(gray, model, RenderSettings(consistency="anchor"), report=after)
    assert after.plan.anchor_tiles > 0 and before.plan.anchor_tiles == 0
    assert before.consistency.cells == after.consistency.cells > 10
    assert before.consistency.mean > 3.0
    assert after.consistency.mean < 0.5 * before.consistency.mean, (before.consistency, after.consistency)


def test_anchor_is_skipped_when_the_painting_is_no_larger_than_the_anchor_pass():
    plan = plan_render(30, 200, offset_model(), RenderSettings())
    assert plan.anchor_size is None and plan.anchor_tiles == 0


def lightness(rgb: np.ndarray) -> np.ndarray:
    return rgb_to_lab(torch.from_numpy(rgb.copy()).permute(2, 0, 1).float() / 255.0)[0].numpy()


def test_keep_luminance_keeps_the_input_lightness():
    gray, model = painting(), tiny_model("resnet9", "rgb")
    kept = colorize_gray(gray, model, RenderSettings(keep_luminance=True))
    model_l = colorize_gray(gray, model, RenderSettings(keep_luminance=False))
    target = gray_lightness_table()[gray]
    error_kept = np.abs(lightness(kept) - target)
    assert np.median(error_kept) < 0.5 and np.percentile(error_kept, 95) < 1.5
    assert np.median(np.abs(lightness(model_l) - target)) > 3 * np.median(error_kept)


def test_reduced_scale_runs_fewer_tiles_and_returns_full_size():
    gray, model = painting(96, 128), tiny_model("unet256", "lab")
    full, half = RenderReport(None), RenderReport(None)
    out_full = colorize_gray(gray, model, RenderSettings(consistency="none"), report=full)
    out_half = colorize_gray(gray, model, RenderSettings(consistency="none", scale=0.5), report=half)
    assert out_half.shape == out_full.shape == (96, 128, 3)
    assert half.plan.tiles < full.plan.tiles
    # lightness is the input's at full resolution either way
    assert np.median(np.abs(lightness(out_half) - gray_lightness_table()[gray])) < 0.5


def test_settings_are_validated():
    with pytest.raises(ValueError):
        RenderSettings(overlap=1.0)
    with pytest.raises(ValueError):
        RenderSettings(scale=1.5)
    with pytest.raises(ValueError):
        RenderSettings(tiles=3)  # unknown field
    with pytest.raises(ValueError, match="multiple of 32"):
        plan_render(64, 64, tiny_model("unet256", "rgb"), RenderSettings(tile=48))


# ---- output files ----------------------------------------------------------------------------------------
def test_png_stream_matches_the_image_and_carries_text(tmp_path):
    rgb = np.random.default_rng(2).integers(0, 256, (37, 23, 3), dtype=np.uint8)
    path = tmp_path / "out.png"
    with PngStreamWriter(path, 23, 37, {"lpd:note": "ünïcode <ok>"}) as png:
        for start in range(0, 37, 10):
            png.write_rows(rgb[start:start + 10])
    with Image.open(path) as image:
        assert np.array_equal(np.asarray(image), rgb)
        assert image.text["lpd:note"] == "ünïcode <ok>"
    assert np.array_equal(imaging.decode_image(path), rgb)


def test_png_stream_never_leaves_a_half_written_file(tmp_path):
    path = tmp_path / "out.png"
    path.write_bytes(b"previous result")
    with pytest.raises(ValueError, match="rows written"):
        with PngStreamWriter(path, 4, 4) as png:
            png.write_rows(np.zeros((2, 4, 3), np.uint8))
    with pytest.raises(RuntimeError):
        with PngStreamWriter(path, 4, 4) as png:
            png.write_rows(np.zeros((2, 4, 3), np.uint8))
            raise RuntimeError("killed half-way")
    assert path.read_bytes() == b"previous result"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]


def test_render_file_writes_metadata_and_preview(tmp_path):
    source = tmp_path / "ink.png"
    imaging.save_image(source, painting())
    model = load_render_model(write_export(tmp_path / "generator.pt"), "cpu")
    assert (model.variant, model.epoch, model.tile_size, model.origin) == ("resnet9", 7, 32, "lpd")
    assert not model.net.training  # the shared inference mode (eval)
    out = tmp_path / "out" / "ink.png"
    report = render_file(source, out, model, RenderSettings(), preview_path=out.with_suffix(".preview.jpg"))
    with Image.open(out) as image:
        text = dict(image.text)
        assert image.size == (104, 72) and image.mode == "RGB"
    assert text["lpd:machine-colorized"] == "true"
    assert "machine-colorized" in text["Title"] and "Not the original" in text["Description"]
    assert text["lpd:checkpoint"] == str((tmp_path / "generator.pt").resolve())
    assert (text["lpd:variant"], text["lpd:epoch"]) == ("resnet9", "7")
    assert text["Software"].startswith("lpd-pipeline ")
    settings = json.loads(text["lpd:settings"])
    assert settings["tile"] == 32 and settings["overlap"] == 0.5 and settings["keep_luminance"] is True
    assert report.preview_path.is_file() and report.plan.tiles > 0
    # The file holds exactly what the in-memory path computes.
    assert np.array_equal(imaging.decode_image(out), colorize_gray(painting(), model, RenderSettings()))


def test_too_large_input_is_refused_naming_the_setting(tmp_path):
    source = tmp_path / "big.png"
    imaging.save_image(source, painting(64, 64))
    with pytest.raises(RenderInputError, match="max_pixels.*--max-pixels"):
        render_file(source, tmp_path / "o.png", tiny_model(), RenderSettings(max_pixels=1000))
    assert not (tmp_path / "o.png").exists()
    render_file(source, tmp_path / "o.png", tiny_model(), RenderSettings(max_pixels=4096))  # raised: fine


def test_bad_and_unusual_inputs(tmp_path):
    model, settings = tiny_model(), RenderSettings(consistency="none")
    html = tmp_path / "page.jpg"
    html.write_text("<html><body>404</body></html>")
    with pytest.raises(RenderInputError, match="page.jpg.*not_an_image"):
        render_file(html, tmp_path / "x.png", model, settings)
    gray16 = (painting(40, 40).astype(np.uint16) * 257)
    Image.fromarray(gray16).save(tmp_path / "g16.png")
    rgba = np.dstack([np.dstack([painting(40, 40)] * 3), np.full((40, 40), 128, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "alpha.png")
    Image.fromarray(np.dstack([painting(40, 40)] * 3), "RGB").convert("CMYK").save(tmp_path / "cmyk.jpg")
    for name in ("g16.png", "alpha.png", "cmyk.jpg"):
        report = render_file(tmp_path / name, tmp_path / f"{name}.out.png", model, settings)
        assert (report.plan.height, report.plan.width) == (40, 40)
    with pytest.raises(ValueError, match="original"):
        render_file(tmp_path / "g16.png", tmp_path / "g16.png", model, settings)


@pytest.mark.shared
def test_real_ink_painting_renders(shared_paintings, tmp_path):
    source = sorted((shared_paintings / "ink").iterdir())[0]
    model = load_render_model(write_export(tmp_path / "g.pt", "unet256", "lab"), "cpu")
    report = render_file(source, tmp_path / "ink.png", model, RenderSettings(scale=0.25, batch_size=16))
    width, height = imaging.image_size(source)
    assert (report.plan.width, report.plan.height) == (width, height)
    out = imaging.decode_image(tmp_path / "ink.png")
    gray = imaging.luma_bt601(imaging.decode_image(source))
    assert np.median(np.abs(lightness(out) - gray_lightness_table()[gray])) < 0.5


# ---- small pieces ----------------------------------------------------------------------------------------
def test_anchor_map_region_means_are_exact():
    from lpd_pipeline.rendering.consistency import AnchorMap

    small = np.random.default_rng(3).normal(size=(2, 5, 7))
    anchor = AnchorMap(small, 50, 70)  # each map pixel covers 10 x 10 image pixels
    nearest = np.repeat(np.repeat(small, 10, axis=1), 10, axis=2)
    for rows, cols in ((slice(0, 50), slice(0, 70)), (slice(3, 27), slice(11, 64)), (slice(49, 50), slice(0, 1))):
        assert np.allclose(anchor.mean(rows, cols), nearest[:, rows, cols].mean(axis=(1, 2)))


def test_chroma_upsampling_by_row_blocks_equals_the_whole():
    from lpd_pipeline.rendering.resample import upsample_rows

    small = np.random.default_rng(4).normal(size=(2, 9, 13)).astype(np.float32)
    whole = upsample_rows(small, 40, 57, 0, 40)
    blocks = np.concatenate([upsample_rows(small, 40, 57, y, min(40, y + 7)) for y in range(0, 40, 7)], axis=1)
    assert whole.shape == (2, 40, 57) and np.array_equal(whole, blocks)
    assert np.allclose(upsample_rows(np.ones((2, 3, 3), np.float32), 10, 10, 0, 10), 1.0)


def test_preview_thumbnail_is_a_box_filter_of_the_streamed_rows():
    from lpd_pipeline.rendering.render import _Thumbnail

    rgb = np.random.default_rng(5).integers(0, 256, (103, 64, 3), dtype=np.uint8)
    thumb = _Thumbnail(103, 64, 20)  # factor 6
    for start in range(0, 103, 17):
        thumb.add(rgb[start:start + 17])
    image = thumb.image()
    assert image.shape == (18, 10, 3)
    assert np.abs(image[0, 0].astype(float) - rgb[:6, :6].reshape(-1, 3).mean(axis=0)).max() <= 0.5
