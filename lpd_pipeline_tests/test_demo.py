"""Tests for the procedural demo paintings: determinism, the documented set, and every planted defect."""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from lpd_pipeline import demo

SMALL = dict(seed=7, scale=0.3)  # ~170-310 px pictures: the whole set in well under a second


def _digest_dir(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def _read_rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert bgr is not None, f"could not decode {path}"
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _off_axis_chroma(rgb: np.ndarray) -> tuple[np.ndarray, float]:
    """Per-pixel Lab ab distance off the paper axis (the ray from grey through the median paper tint).

    Darkening the ground with neutral ink stays on that axis; pigments of another hue leave it. Returns the
    distances and the paper tint's own chroma.
    """
    lab = cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab).reshape(-1, 3)
    lightness, ab = lab[:, 0], lab[:, 1:]
    paper = np.median(ab[lightness >= np.quantile(lightness, 0.75)], axis=0)
    paper_chroma = float(np.linalg.norm(paper))
    if paper_chroma < 1e-3:
        return np.linalg.norm(ab, axis=1), paper_chroma
    u = paper / paper_chroma
    along = ab @ u
    perp = np.abs(ab[:, 0] * u[1] - ab[:, 1] * u[0])
    return np.hypot(perp, np.maximum(0.0, along - paper_chroma)), paper_chroma


@pytest.fixture(scope="module")
def small_set(tmp_path_factory) -> tuple[Path, pd.DataFrame]:
    out = tmp_path_factory.mktemp("demo_small")
    return out, demo.generate_demo_paintings(out, **SMALL)


def test_same_seed_gives_byte_identical_files(small_set, tmp_path):
    out, table = small_set
    again = demo.generate_demo_paintings(tmp_path / "again", **SMALL)
    assert _digest_dir(out) == _digest_dir(tmp_path / "again")
    pd.testing.assert_frame_equal(table, again)
    other = demo.generate_demo_paintings(tmp_path / "other", seed=8, scale=0.3)
    differing = [f for f in table["file"] if (out / f).read_bytes() != (tmp_path / "other" / f).read_bytes()]
    assert len(differing) == len(table), "a different seed must change every painting"
    assert list(other["file"]) == list(table["file"])


def test_documented_counts_kinds_and_defects(small_set):
    out, table = small_set
    assert list(table.columns) == ["file", "kind", "style", "defect", "width", "height", "defect_box"]
    assert len(table) == 14 + 6 + 5 + 3
    plain = table[table["defect"] == ""]
    assert (plain["kind"] == "colored").sum() == 14 and (plain["kind"] == "ink").sum() == 6
    assert set(plain.loc[plain["kind"] == "colored", "style"]) == {"blue_green", "ochre"}
    assert set(plain.loc[plain["kind"] == "ink", "style"]) == {"ink_paper", "ink_silk"}
    planted = table[table["defect"].isin(demo.DEFECT_KINDS)]
    assert sorted(planted["defect"]) == sorted(demo.DEFECT_KINDS)
    assert set(planted["kind"]) == {"colored", "ink"}
    dups = table[table["defect"].str.startswith("near_duplicate_of:")]
    assert sorted(dups["style"]) == ["cropped_copy", "grayscale_copy", "resized_jpeg_copy"]
    for ref in dups["defect"]:
        source = ref.split(":", 1)[1].split("|")[0]
        assert table.loc[table["file"] == source, "kind"].item() == "colored"
        assert table.loc[table["file"] == source, "defect"].item() == ""
    assert table.loc[dups.index[dups["style"] == "grayscale_copy"], "kind"].item() == "ink"
    suffixes = {Path(f).suffix for f in table["file"]}
    assert suffixes == {".jpg", ".png"}
    assert table["file"].is_unique
    # Every file exists, decodes, and has the recorded size; no temp files are left behind.
    for row in table.itertuples():
        rgb = _read_rgb(out / row.file)
        assert rgb.shape[:2] == (row.height, row.width), row.file
    leftovers = [p.name for p in out.iterdir() if ".tmp" in p.name]
    assert leftovers == []
    assert (out / demo.MARKER_NAME).is_file()


def test_metadata_csv_declares_kind_for_only_some_files(small_set):
    out, table = small_set
    meta = pd.read_csv(out / demo.METADATA_NAME, dtype=str, keep_default_na=False)
    assert list(meta.columns) == ["file", "title", "artist", "date", "medium", "license", "kind"]
    assert list(meta["file"]) == list(table["file"])
    declared = meta[meta["kind"] != ""]
    assert 0 < len(declared) < len(meta)
    truth = table.set_index("file")["kind"]
    assert all(truth[f] == k for f, k in zip(declared["file"], declared["kind"]))
    assert meta["medium"].str.contains("ink").all()
    assert meta.loc[truth[meta["file"]].values == "colored", "medium"].str.contains("color").all()
    assert (meta["title"] != "").all() and (meta["license"] != "").all()


def test_default_sizes_vary_and_yield_several_tiles(tmp_path):
    table = demo.generate_demo_paintings(tmp_path, seed=0, n_colored=3, n_ink=2, with_defects=False)
    assert len(table) == 5 and (table["defect"] == "").all()
    assert table["width"].between(560, 1024).all() and table["height"].between(560, 1024).all()
    assert len(set(zip(table["width"], table["height"]))) == len(table)
    assert len(set((table["width"] / table["height"]).round(2))) > 1
    tiles = (table["width"] // 256) * (table["height"] // 256)
    assert (tiles >= 4).all()


def test_scale_shrinks_pictures(small_set):
    _, table = small_set
    assert table["width"].max() <= 0.3 * 1024 + 1 and table["height"].max() <= 0.3 * 1024 + 1
    assert table["width"].min() >= 0.3 * 560 * 0.6 - 1  # the resized duplicate is the smallest


def test_colored_paintings_leave_the_paper_axis_and_ink_ones_do_not(small_set):
    out, table = small_set
    fractions, paper_chroma = {}, {}
    for row in table[table["defect"] == ""].itertuples():
        dist, chroma = _off_axis_chroma(_read_rgb(out / row.file))
        fractions[row.file] = float(np.mean(dist > 10.0))
        paper_chroma[row.style] = max(paper_chroma.get(row.style, 0.0), chroma)
    plain = table[table["defect"] == ""]
    colored = [fractions[f] for f in plain.loc[plain["kind"] == "colored", "file"]]
    ink = [fractions[f] for f in plain.loc[plain["kind"] == "ink", "file"]]
    assert min(colored) >= 0.02, colored
    assert max(ink) <= 0.005, ink
    # The hard case is present: aged silk is strongly tinted although the painting is ink only.
    assert paper_chroma["ink_silk"] > 15.0


def test_seal_is_red_and_square(small_set):
    out, table = small_set
    row = table[table["defect"] == "seal"].iloc[0]
    x0, y0, x1, y1 = row["defect_box"]
    assert x1 - x0 == y1 - y0 > 0
    rgb = _read_rgb(out / row["file"]).astype(int)
    patch = rgb[y0:y1, x0:x1]
    red = (patch[..., 0] > patch[..., 1] + 60) & (patch[..., 0] > patch[..., 2] + 60)
    assert red.mean() > 0.3
    outside = np.ones(rgb.shape[:2], bool)
    outside[y0:y1, x0:x1] = False
    red_outside = (rgb[..., 0] > rgb[..., 1] + 60) & (rgb[..., 0] > rgb[..., 2] + 60) & outside
    assert red_outside.sum() < red.sum() * 0.25


def test_padding_bar_is_flat_grey(small_set):
    out, table = small_set
    row = table[table["defect"] == "padding_bar"].iloc[0]
    assert row["file"].endswith(".png")
    x0, y0, x1, y1 = row["defect_box"]
    bar = _read_rgb(out / row["file"])[y0:y1, x0:x1]
    assert bar.size > 0 and np.ptp(bar) == 0
    assert bar[0, 0, 0] == bar[0, 0, 1] == bar[0, 0, 2]
    assert (x0, y0) == (0, 0) or x1 == row["width"] or y1 == row["height"]


def test_blank_margin_is_bare_ground_and_inscription_is_dense_ink(small_set):
    out, table = small_set
    blank = table[table["defect"] == "blank_margin"].iloc[0]
    rgb = _read_rgb(out / blank["file"])
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    x0, y0, x1, y1 = blank["defect_box"]
    assert (x1 - x0) * (y1 - y0) >= 0.25 * gray.size
    # Strokes are fine detail: the high-pass residual finds them; the blank part only has fibre texture.
    detail = np.abs(gray - cv2.GaussianBlur(gray, (0, 0), sigmaX=4.0))
    margin = detail[y0:y1, x0:x1]
    rest = np.ones(gray.shape, bool)
    rest[y0:y1, x0:x1] = False
    assert np.percentile(margin, 99.9) < 20
    assert np.percentile(detail[rest], 99.9) > 3 * np.percentile(margin, 99.9)

    ins = table[table["defect"] == "inscription"].iloc[0]
    gray = cv2.cvtColor(_read_rgb(out / ins["file"]), cv2.COLOR_RGB2GRAY).astype(np.float32)
    x0, y0, x1, y1 = ins["defect_box"]
    block = gray[y0:y1, x0:x1]
    assert np.mean(block < 0.5 * np.median(gray)) > 0.08


def test_near_duplicates_match_their_sources(small_set):
    out, table = small_set
    for row in table[table["defect"].str.startswith("near_duplicate_of:")].itertuples():
        source = _read_rgb(out / row.defect.split(":", 1)[1].split("|")[0])
        copy = _read_rgb(out / row.file)
        if row.style == "resized_jpeg_copy":
            assert copy.shape[0] < source.shape[0]
            ref = cv2.resize(source, (copy.shape[1], copy.shape[0]), interpolation=cv2.INTER_AREA)
            assert np.abs(ref.astype(int) - copy.astype(int)).mean() < 6
        elif row.style == "cropped_copy":
            h, w = copy.shape[:2]
            assert 0.85 * source.shape[0] < h < source.shape[0] and 0.85 * source.shape[1] < w < source.shape[1]
            match = cv2.matchTemplate(source, copy, cv2.TM_SQDIFF)
            _, _, (x, y), _ = cv2.minMaxLoc(match)
            assert np.array_equal(source[y:y + h, x:x + w], copy)  # lossless PNG crop of the decoded source
        else:
            raw = cv2.imread(str(out / row.file), cv2.IMREAD_UNCHANGED)
            assert raw.ndim == 2  # stored as a single-channel image
            ref = cv2.cvtColor(source, cv2.COLOR_RGB2GRAY)
            assert np.abs(ref.astype(int) - raw.astype(int)).mean() < 3


def test_helpers_plant_defects_on_any_rgb_array():
    rng = np.random.default_rng(0)
    base = np.full((200, 240, 3), (220, 205, 180), np.uint8)

    sealed, (x0, y0, x1, y1) = demo.add_seal(base, rng, size=40, position=(10, 150))
    assert (x0, y0, x1, y1) == (10, 150, 50, 190)  # clamped into the picture
    assert np.array_equal(sealed[:, 60:], base[:, 60:])
    patch = sealed[y0:y1, x0:x1].astype(int)
    assert np.mean(patch[..., 0] - patch[..., 1] > 80) > 0.3

    marked, box = demo.add_watermark(base, rng, alpha=0.3)
    assert box == (0, 0, 240, 200)
    changed = np.any(marked != base, axis=2)
    assert 0.03 < changed.mean() < 0.8
    assert all(changed[r:r + 100, c:c + 120].any() for r in (0, 100) for c in (0, 120))
    lift = marked.astype(int) - base.astype(int)
    assert lift.max() <= int(0.3 * (255 - 180)) + 2  # alpha bounds how far text pulls towards white

    padded, (px0, py0, px1, py1) = demo.add_padding_bar(base, rng, side="left", fraction=0.25, value=128)
    assert (px0, py0, px1, py1) == (0, 0, 60, 200) and (padded[:, :60] == 128).all()
    assert np.array_equal(padded[:, 60:], base[:, 60:])

    written, (ix0, iy0, ix1, iy1) = demo.add_inscription(base, rng, box=(140, 10, 230, 150))
    assert 140 <= ix0 < ix1 <= 230 and iy0 == 10 and iy1 <= 150
    assert (written[iy0:iy1, ix0:ix1].mean(axis=2) < 120).mean() > 0.05
    assert np.array_equal(written[160:], base[160:])

    painting = demo.render_landscape(200, 240, rng, "ink_paper")
    blank, (bx0, by0, bx1, by1) = demo.add_blank_margin(painting, rng, side="top", fraction=0.4)
    assert (bx0, by0, bx1, by1) == (0, 0, 240, 80)
    assert blank[:80].std() < painting[:80].std() or painting[:80].std() < 3


def test_render_landscape_styles_and_errors():
    rng = np.random.default_rng(1)
    for style in demo.STYLES:
        rgb = demo.render_landscape(120, 90, rng, style)
        assert rgb.shape == (120, 90, 3) and rgb.dtype == np.uint8
        assert rgb.std() > 5  # not a blank page
    with pytest.raises(ValueError, match="style"):
        demo.render_landscape(100, 100, rng, "watercolour")
    with pytest.raises(ValueError, match="too small"):
        demo.render_landscape(8, 100, rng, "ochre")
    with pytest.raises(ValueError, match="uint8 RGB"):
        demo.add_seal(np.zeros((50, 50), np.uint8), rng)
    with pytest.raises(ValueError, match="side"):
        demo.add_padding_bar(np.zeros((50, 50, 3), np.uint8), rng, side="middle")
    with pytest.raises(ValueError, match="does not fit"):
        demo.add_inscription(np.zeros((50, 50, 3), np.uint8), rng, box=(0, 0, 80, 20))


def test_generate_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="n_colored"):
        demo.generate_demo_paintings(tmp_path, n_colored=-1)
    with pytest.raises(ValueError, match="scale"):
        demo.generate_demo_paintings(tmp_path, scale=0.0)


def test_ensure_reuses_a_complete_set_and_repairs_an_incomplete_one(tmp_path, monkeypatch):
    out = tmp_path / "demo"
    params = dict(n_colored=2, n_ink=1, scale=0.2)
    assert demo.ensure_demo_paintings(out, 3, **params) == out
    first = _digest_dir(out)
    assert len([f for f in first if not f.startswith(".") and f != demo.METADATA_NAME]) == 2 + 1 + 5 + 3

    calls = []
    real_generate = demo.generate_demo_paintings
    monkeypatch.setattr(demo, "generate_demo_paintings", lambda *a, **k: calls.append(k) or real_generate(*a, **k))
    demo.ensure_demo_paintings(out, 3, **params)
    assert calls == [] and _digest_dir(out) == first

    victim = sorted(p for p in out.iterdir() if p.suffix == ".png")[0]
    victim.unlink()
    demo.ensure_demo_paintings(out, 3, **params)
    assert len(calls) == 1 and _digest_dir(out) == first  # regenerated, identically

    demo.ensure_demo_paintings(out, 4, **params)  # another seed is another set
    assert len(calls) == 2 and _digest_dir(out) != first

    demo.ensure_demo_paintings(out, 4, n_colored=1, n_ink=1, scale=0.2)  # smaller set: stale files go
    names = [p.name for p in out.iterdir() if p.suffix in (".jpg", ".png")]
    assert len(calls) == 3 and len(names) == 1 + 1 + 5 + 3
