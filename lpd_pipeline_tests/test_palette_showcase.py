"""The palette showcase: the render asset renders the first painting under two presets of a palette-controlled
variant (one code path: render_file with the model's palette) and the results page shows them side by side,
labelled with the palette names."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from lpd_pipeline import imaging
from lpd_pipeline.defs.assets.rendering import masterpieces_table_path
from lpd_pipeline.rendering.model import showcase_palettes
from lpd_pipeline.models.build import build_model_generator
from lpd_pipeline.models.colorspace import lab_to_rgb
from lpd_pipeline.models.options import QUALITY_VARIANT
from lpd_pipeline.models.recipes import train_config
from lpd_pipeline.reports.site import MACHINE_LABEL, build_results_site, palette_label
from lpd_pipeline.settings import StorageLayout
from lpd_pipeline.training.checkpoints import GENERATOR_FORMAT, save_torch_atomic
from lpd_pipeline_tests.test_render import write_export
from lpd_pipeline_tests.test_render_asset import _dataset, _materialize

# Four colour families: blue-green, ochre, red and pale tiles, so the generator has every preset (palette.PRESET_NAMES).
FAMILIES = ((55, -30, -5), (65, 12, 40), (50, 55, 35), (70, 1, 2))


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    """Tiny networks on one torch thread (conftest.one_torch_thread)."""


def _tiles(rng: np.random.Generator, size: int = 16) -> np.ndarray:
    tiles = []
    for lab in FAMILIES:
        for _ in range(4):
            jitter = torch.tensor(lab, dtype=torch.float32) + torch.tensor(rng.normal(0, 1, 3), dtype=torch.float32)
            rgb = lab_to_rgb(jitter.view(3, 1, 1)).permute(1, 2, 0)
            tiles.append(np.broadcast_to((rgb * 255).round().to(torch.uint8).numpy(), (size, size, 3)))
    return np.stack(tiles)


def write_palette_export(path, tile: int = 32):
    """A generator export of the colour-quality recipe (palette control), presets learned from 4 colour families."""
    config = train_config(QUALITY_VARIANT, tile_size=tile, ngf=4, ndf=4, use_dropout=False)
    torch.manual_seed(0)
    net = build_model_generator(config).eval()
    net.set_presets(_tiles(np.random.default_rng(0)))
    payload = {"format": GENERATOR_FORMAT, "generator": {k: v.clone() for k, v in net.state_dict().items()},
               "config": config.to_dict(), "epoch": 3, "data_fingerprint": "test", "dtype": "fp32"}
    save_torch_atomic(payload, path)
    return net.preset_names()


def test_showcase_palettes_prefer_the_names_asked_for():
    hist = {"ochre": np.array([1.0, 0, 0]), "ochre-2": np.array([0.9, 0.1, 0]), "green": np.array([0, 0, 1.0]),
            "blue-green": np.array([0, 0.5, 0.5])}
    assert showcase_palettes(hist, ["blue-green", "ochre"]) == ["blue-green", "ochre"]
    # A missing name: the preset farthest from those chosen (not the near-copy ochre-2).
    assert showcase_palettes({k: hist[k] for k in ("ochre", "ochre-2", "green")}, ["blue-green", "ochre"]) == [
        "green", "ochre"]
    assert showcase_palettes({"ochre": hist["ochre"]}, ["blue-green", "ochre"]) == ["ochre"]
    assert showcase_palettes(hist, []) == []
    # The page names a reference painting by its file name, never its local path.
    assert palette_label("/home/user/refs/qinglu.jpg") == "qinglu.jpg" and palette_label("ochre") == "ochre"


def test_render_asset_shows_one_painting_under_two_palettes(storage_root, tmp_path):
    _dataset(storage_root, tmp_path)
    write_export(storage_root / "training" / "unet256" / "generator.pt", "unet256", tile=32, epoch=4)
    presets = write_palette_export(storage_root / "training" / QUALITY_VARIANT / "generator.pt")
    assert {"blue-green", "ochre"} <= set(presets)
    result = _materialize(storage_root, {"batch_size": 4})
    assert result.success
    table = pd.read_parquet(masterpieces_table_path(StorageLayout(storage_root)))
    plain, showcase = table[table["palette"] == ""], table[table["palette"] != ""]
    assert set(plain["variant"]) == {"unet256", QUALITY_VARIANT} and len(plain) == 4  # 2 test_ink paintings each
    assert list(showcase["palette"]) == ["blue-green", "ochre"] and set(showcase["variant"]) == {QUALITY_VARIANT}
    assert set(showcase["painting_id"]) == {"pid0"}  # the first painting only
    outputs = {}
    for row in showcase.itertuples():
        assert row.output_path.endswith(f"renders/{QUALITY_VARIANT}/palette-{row.palette}/pid0.png")
        with Image.open(row.output_path) as image:
            assert json.loads(image.text["lpd:settings"])["palette"] == row.palette
            outputs[row.palette] = np.asarray(image.convert("RGB"))
    assert not np.array_equal(outputs["blue-green"], outputs["ochre"])  # the palette changes the colours
    swatches = {row.palette: imaging.decode_image(row.palette_swatch) for row in showcase.itertuples()}
    assert swatches["blue-green"].shape == (20, 240, 3) and plain["palette_swatch"].eq("").all()
    blue_green, ochre = (swatches[name].reshape(-1, 3).mean(0) for name in ("blue-green", "ochre"))
    assert blue_green[2] > blue_green[0] and ochre[0] > ochre[2]  # a blue-green bar and an ochre one
    metadata = result.asset_materializations_for_node("colorized_masterpieces")[0].metadata
    assert metadata["palette_renders"].value == 2 and metadata["renders"].value == 4
    assert r"\(blue\-green\) | unet256\-colour \(ochre\)" in metadata["palette_showcase"].value  # escaped markdown
    assert "palette control" in metadata["variants"].value
    # A second run reuses the showcase renders too.
    mtimes = {p: p.stat().st_mtime_ns for p in (storage_root / "renders").rglob("*.png")}
    assert _materialize(storage_root, {"batch_size": 4}).success
    assert {p: p.stat().st_mtime_ns for p in mtimes} == mtimes
    # No showcase asked for: none rendered; a paper variant given a palette renders without one.
    assert _materialize(storage_root, {"palette_showcase": [], "palette": "ochre", "variants": ["unet256"]}).success
    again = pd.read_parquet(masterpieces_table_path(StorageLayout(storage_root)))
    assert set(again["palette"]) == {""} and len(again) == 2


def test_results_page_shows_the_palettes_side_by_side(storage_root, tmp_path):
    _dataset(storage_root, tmp_path)
    write_palette_export(storage_root / "training" / QUALITY_VARIANT / "generator.pt")
    assert _materialize(storage_root, {"variants": [QUALITY_VARIANT]}).success
    renders = pd.read_parquet(masterpieces_table_path(StorageLayout(storage_root)))
    site = build_results_site(tmp_path / "site", renders, base_dir=storage_root, tile_size=64)
    assert (site.paintings, site.outputs, site.palette_outputs, site.problems) == (2, 2, 2, [])
    html = site.index.read_text()
    section = html[html.index('<section id="palettes">'):html.index('<section id="variants">')]
    assert "palette: blue-green" in section and "palette: ochre" in section
    assert section.count(f'<div class="badge">{MACHINE_LABEL}</div>') == 2
    assert 'data-palette="blue-green"' in section and 'data-palette="ochre"' in section
    swatches = re.findall(r'<img class="swatch" src="([^"]+)" alt="the colours of palette ([^"]+)"', section)
    assert [name for _, name in swatches] == ["blue-green", "ochre"]
    assert all((tmp_path / "site" / src).is_file() for src, _ in swatches)
    views = re.findall(r'<div class="viewer" id="([^"]+)"', section)
    assert len(views) == 3  # the ink original and the two palettes
    config = json.loads(re.search(r'<script type="application/json" id="lpd-viewers">(.*?)</script>', html,
                                  re.S).group(1))
    by_id = {v["id"]: v for v in config["viewers"]}
    for viewer in views:  # each view has its own pyramid, all of one linked-zoom group
        assert (tmp_path / "site" / by_id[viewer]["tileSource"]["Image"]["Url"]).is_dir()
    assert len({by_id[v]["group"] for v in views}) == 1
    # The variants section names each variant with its recipe.
    assert "ink-domain augmentation" in html[html.index('<section id="variants">'):]
