"""Results site: Deep Zoom pyramids, escaping, missing files, atomic publishing (no browser: see test_browser)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from PIL import Image

from lpd_pipeline import imaging
from lpd_pipeline.reports import deepzoom, publish
from lpd_pipeline.reports.site import MACHINE_LABEL, SampleSheet, build_results_site
from lpd_pipeline_tests.test_browser import make_site_inputs


def _gradient(height, width):
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([(x * 255 // max(width - 1, 1)), (y * 255 // max(height - 1, 1)),
                     ((x + y) % 256)], axis=-1).astype(np.uint8)


@pytest.mark.parametrize("height,width", [(300, 517), (1, 1), (64, 3)])
def test_pyramid_levels_and_tiles_follow_dzi(tmp_path, height, width):
    image = _gradient(height, width)
    dzi = deepzoom.write_deep_zoom(image, tmp_path, "img", tile_size=64, overlap=1, quality=95)
    top = deepzoom.max_level(width, height)
    assert dzi.max_level == top == int(np.ceil(np.log2(max(width, height))))
    count = 0
    for level in range(top + 1):
        level_w, level_h = deepzoom.level_size(width, height, level)
        assert (level_w, level_h) == (-(-width // 2 ** (top - level)), -(-height // 2 ** (top - level)))
        files = sorted((tmp_path / "img_files" / str(level)).iterdir())
        columns, rows = -(-level_w // 64), -(-level_h // 64)
        assert len(files) == columns * rows
        count += len(files)
        for column in range(columns):
            for row in range(rows):
                with Image.open(tmp_path / "img_files" / str(level) / f"{column}_{row}.jpg") as tile:
                    x0, y0 = max(column * 64 - 1, 0), max(row * 64 - 1, 0)
                    assert tile.size == (min((column + 1) * 64 + 1, level_w) - x0,
                                         min((row + 1) * 64 + 1, level_h) - y0)
    assert dzi.tiles == count
    # Full-resolution tiles hold the image's own pixels (JPEG-close); a lower level is its area average.
    with Image.open(tmp_path / "img_files" / str(top) / "0_0.jpg") as tile:
        crop = imaging.luma_bt601(image[: tile.size[1], : tile.size[0]]).astype(int)
        # Luma compared: the JPEG tiles keep full-resolution luma, chroma is subsampled (4:2:0) as on the web.
        assert np.abs(imaging.luma_bt601(np.asarray(tile.convert("RGB"))).astype(int) - crop).mean() < 4
    xml = (tmp_path / "img.dzi").read_text()
    assert f'Width="{width}" Height="{height}"' in xml and 'TileSize="64"' in xml
    source = dzi.tile_source("paintings/p000/")["Image"]
    assert source["Url"] == "paintings/p000/img_files/" and source["Size"] == {"Width": str(width),
                                                                               "Height": str(height)}
    thumbnail = dzi.thumbnail()
    assert max(thumbnail.shape[:2]) <= 64 and thumbnail.shape[:2] == deepzoom.level_size(
        width, height, deepzoom.thumbnail_level(width, height, 64))[::-1]
    assert deepzoom.read_deep_zoom(tmp_path, "img") == dzi


def test_halving_is_an_area_average():
    image = np.arange(5 * 7 * 3, dtype=np.uint8).reshape(5, 7, 3)
    half = deepzoom._halve(image, 4, 3)
    padded = np.pad(image.astype(float), ((0, 1), (0, 1), (0, 0)), mode="edge")
    expected = padded.reshape(3, 2, 4, 2, 3).mean(axis=(1, 3))
    assert np.abs(half - expected).max() <= 0.5 + 1e-9


def test_pyramid_of_a_gray_file_and_bad_input(tmp_path):
    imaging.save_image(tmp_path / "gray.png", _gradient(90, 140)[..., 0])
    dzi = deepzoom.write_deep_zoom(tmp_path / "gray.png", tmp_path / "out", "g", tile_size=32)
    assert (dzi.width, dzi.height) == (140, 90)
    (tmp_path / "bad.png").write_bytes(b"<html>not found</html>")
    with pytest.raises(imaging.ImageDecodeError, match="bad.png"):
        deepzoom.write_deep_zoom(tmp_path / "bad.png", tmp_path / "out", "b")
    with pytest.raises(ValueError, match="plain file name"):
        deepzoom.write_deep_zoom(_gradient(4, 4), tmp_path / "out", "../escape")


def test_site_escapes_labels_and_lists_everything(tmp_path):
    inputs = make_site_inputs(tmp_path)
    site = build_results_site(tmp_path / "site", tile_size=128, **inputs)
    assert (site.paintings, site.outputs, site.problems) == (2, 4, [])
    html = site.index.read_text()
    assert "<script>alert" not in html and "&lt;script&gt;alert(0)&lt;/script&gt; Mountain" in html
    assert "Anon &amp; co" in html and "CC0" in html and "synthetic" in html
    assert html.count(f'<div class="badge">{MACHINE_LABEL}</div>') == 4  # every output is labelled
    config = json.loads(re.search(r'<script type="application/json" id="lpd-viewers">(.*?)</script>', html,
                                  re.S).group(1))
    assert len(config["viewers"]) == 6
    for viewer in config["viewers"]:  # inline tile sources whose folders exist
        url = viewer["tileSource"]["Image"]["Url"]
        assert not url.startswith(("/", "http")) and (tmp_path / "site" / url).is_dir()
    for src in re.findall(r'<img src="([^"]+)"', html):
        assert (tmp_path / "site" / src).is_file()
    assert (tmp_path / "site" / "assets" / "openseadragon" / "openseadragon.min.js").is_file()
    assert (tmp_path / "site" / "assets" / "openseadragon" / "LICENSE.txt").is_file()
    assert "11.5" in html and "9.25" in html and "best epoch" in html  # metric table and tile table
    assert site.preview is not None and site.preview.shape[0] > 90 and site.preview.shape[1] <= 960


def test_site_survives_bad_files_and_missing_variants(tmp_path):
    inputs = make_site_inputs(tmp_path)
    renders = inputs.pop("renders")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)
    renders.loc[renders.index[0], "output_path"] = "broken.png"  # painting0 / resnet9
    renders = renders.drop(index=renders.index[3])  # painting1 has no unet256 render
    renders.loc[renders.index[2], "output_path"] = "../../outside.png"  # painting1 / resnet9: refused
    (tmp_path / "notes.png").write_text("not an image")
    inputs["plots"] = [*inputs["plots"], tmp_path / "notes.png"]
    site = build_results_site(tmp_path / "site", renders, tile_size=128, **inputs)
    assert site.outputs == 1 and len(site.problems) == 3
    assert any("broken.png" in p for p in site.problems) and any("notes.png" in p for p in site.problems)
    assert any("escapes the storage root" in p for p in site.problems)
    html = site.index.read_text()
    assert "not rendered for this model variant" in html and "broken.png" in html
    assert str(tmp_path) not in html  # the page names files, never local paths
    assert all(str(tmp_path) in p for p in site.problems if "escapes" not in p)  # the operator gets full paths
    with pytest.raises(ValueError, match="lacks column"):
        build_results_site(tmp_path / "site", renders.drop(columns="license"), **inputs)
    assert site.index.read_text() == html  # the failed build left the published site alone


def test_build_folder_replaces_whole_or_not_at_all(tmp_path):
    final = tmp_path / "site"
    with publish.build_folder(final) as build:
        (build / "a.txt").write_text("one")
    with pytest.raises(RuntimeError):
        with publish.build_folder(final) as build:
            (build / "b.txt").write_text("half")
            raise RuntimeError("crash")
    assert sorted(p.name for p in final.iterdir()) == ["a.txt"]
    with publish.build_folder(final) as build:
        (build / "c.txt").write_text("two")
    assert sorted(p.name for p in final.iterdir()) == ["c.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site"]  # no temp or old folders left


def test_samples_and_plots_keep_their_captions(tmp_path):
    inputs = make_site_inputs(tmp_path)
    inputs["samples"] = [SampleSheet("unet256", 12, tmp_path / "sheet.png", "newest sheet")]
    site = build_results_site(tmp_path / "site", tile_size=128, **inputs)
    html = site.index.read_text()
    assert "unet256, epoch 12 (newest sheet)" in html and "gray | generated | real" in html
    assert html.count('src="plots/') == 1 and html.count('src="samples/') == 1


def test_rebuild_reuses_unchanged_pyramids(tmp_path):
    inputs = make_site_inputs(tmp_path)
    first = build_results_site(tmp_path / "site", tile_size=128, **inputs)
    assert first.reused_pyramids == 0
    tiles_before = sorted(p.relative_to(tmp_path / "site") for p in (tmp_path / "site").rglob("*.jpg"))
    changed = tmp_path / inputs["renders"]["output_path"].iloc[0]
    imaging.save_image(changed, np.full((600, 900, 3), 200, np.uint8))  # new content for one output
    second = build_results_site(tmp_path / "site", tile_size=128, **inputs)
    assert second.reused_pyramids == 5 and second.tiles == first.tiles and not second.problems
    assert sorted(p.relative_to(tmp_path / "site") for p in (tmp_path / "site").rglob("*.jpg")) == tiles_before
    with Image.open(tmp_path / "site" / "paintings" / "p000" / "v0_files" / "0" / "0_0.jpg") as tile:
        assert np.asarray(tile.convert("RGB")).mean() == pytest.approx(200, abs=2)  # the changed one was recut
    third = build_results_site(tmp_path / "site", tile_size=64, **inputs)  # other settings: nothing reused
    assert third.reused_pyramids == 0
    assert str(tmp_path) not in (tmp_path / "site" / "pyramids.json").read_text()  # no local paths published
