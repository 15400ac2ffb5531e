"""Tile filters: API contract, synthetic defects (positive and negative per filter), real museum tiles."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from lpd_pipeline.curation.filters import (
    FILTER_NAMES,
    FilterThresholds,
    rejection_reasons,
    score_blank,
    score_blur,
    score_inscription,
    score_odd_colour,
    score_padding,
    score_seal,
    score_tile,
    score_watermark,
)

THRESHOLDS = FilterThresholds()


# ---------------------------------------------------------------------------------------------- synthetic tiles


def paper(size: int, seed: int = 0, colour=(232, 222, 200)) -> np.ndarray:
    """Bare paper: a flat tint with grain."""
    rng = np.random.default_rng(seed)
    base = np.empty((size, size, 3), np.float32)
    base[:] = colour
    base += rng.normal(0, 3.0, (size, size, 1))
    return np.clip(base, 0, 255).astype(np.uint8)


def landscape(size: int, seed: int = 0) -> np.ndarray:
    """A landscape-like tile: layered ink-wash hills, texture strokes and foliage dots on paper."""
    rng = np.random.default_rng(seed)
    img = paper(size, seed)
    for m in range(3):
        xs = np.linspace(0, size, 9)
        ys = size * (0.35 + 0.2 * m) + rng.normal(0, size * 0.08, xs.size)
        poly = np.array([[0, size]] + [[x, y] for x, y in zip(xs, ys)] + [[size, size]], np.int32)
        layer = img.copy()
        tone = 170 - 40 * m
        cv2.fillPoly(layer, [poly], (tone, tone - 5, tone - 15))
        img = cv2.addWeighted(img, 0.45, layer, 0.55, 0)
    for _ in range(int(size * 0.6)):
        x, y = rng.integers(0, size, 2)
        dx, dy = rng.normal(0, size / 25, 2)
        g = int(rng.integers(30, 110))
        cv2.line(img, (int(x), int(y)), (int(x + dx), int(y + dy)), (g, g, g - 5), int(rng.integers(1, 3)),
                 cv2.LINE_AA)
    for _ in range(int(size * 0.5)):
        x, y = rng.integers(0, size, 2)
        g = int(rng.integers(20, 80))
        cv2.circle(img, (int(x), int(y)), int(rng.integers(1, 4)), (g, g + 5, g), -1, cv2.LINE_AA)
    return img


def with_seal(img: np.ndarray, seed: int = 0) -> np.ndarray:
    """A vermilion square stamp with carved (paper-coloured) strokes, 18% of the tile side."""
    rng = np.random.default_rng(seed)
    out = img.copy()
    s = img.shape[0]
    w = int(s * 0.18)
    x0, y0 = int(s * 0.7), int(s * 0.1)
    cv2.rectangle(out, (x0, y0), (x0 + w, y0 + w), (190, 45, 35), -1)
    for _ in range(8):
        p = rng.integers(3, w - 3, 4)
        cv2.line(out, (x0 + int(p[0]), y0 + int(p[1])), (x0 + int(p[2]), y0 + int(p[3])), (235, 220, 205),
                 max(1, w // 20))
    return out


def with_inscription(img: np.ndarray, seed: int = 0) -> np.ndarray:
    """Four vertical columns of six pseudo-characters (random dark strokes in square cells)."""
    rng = np.random.default_rng(seed)
    out = img.copy()
    s = img.shape[0]
    c = max(6, s // 12)
    for col in range(4):
        x0 = int(s * 0.08) + col * int(c * 1.9)
        for row in range(6):
            y0 = int(s * 0.08) + row * int(c * 1.3)
            for _ in range(5):
                p = rng.integers(0, c, 4)
                cv2.line(out, (x0 + int(p[0]), y0 + int(p[1])), (x0 + int(p[2]), y0 + int(p[3])), (25, 25, 25),
                         max(1, s // 120), cv2.LINE_AA)
    return out


def with_watermark(img: np.ndarray, alpha: float = 0.55) -> np.ndarray:
    """Rows of a semi-transparent white site address."""
    s = img.shape[0]
    layer = np.zeros(img.shape[:2], np.uint8)
    for y in range(int(s * 0.3), s, int(s * 0.35)):
        cv2.putText(layer, "www.paintings-online.com", (int(s * 0.02), y), cv2.FONT_HERSHEY_SIMPLEX,
                    s / 256 * 0.6, 255, max(1, s // 200), cv2.LINE_AA)
    a = layer[..., None].astype(np.float32) / 255 * alpha
    return (img * (1 - a) + 255 * a).astype(np.uint8)


def with_bar(img: np.ndarray, fraction: float = 0.2, colour=(0, 0, 0)) -> np.ndarray:
    out = img.copy()
    out[img.shape[0] - int(img.shape[0] * fraction):] = colour
    return out


def with_colour_checker(img: np.ndarray) -> np.ndarray:
    """Two rows of flat colour-checker patches in the lower half."""
    out = img.copy()
    s = img.shape[0]
    c = s // 8
    colours = [(115, 82, 68), (194, 150, 130), (98, 122, 157), (87, 108, 67), (133, 128, 177), (103, 189, 170),
               (214, 126, 44), (80, 91, 166), (193, 90, 99), (94, 60, 108), (157, 188, 64), (224, 163, 46)]
    for i, col in enumerate(colours):
        r, q = divmod(i, 6)
        out[s // 2 + r * c: s // 2 + (r + 1) * c - 2, q * c: (q + 1) * c - 2] = col
    return out


def blurred(img: np.ndarray, sigma: float = 2.5) -> np.ndarray:
    return cv2.GaussianBlur(img, (0, 0), sigma)


# ---------------------------------------------------------------------------------------------- API contract


def test_names_thresholds_and_score_keys_agree():
    assert FILTER_NAMES == ("blank", "blur", "watermark", "seal", "inscription", "padding", "odd_colour")
    assert tuple(THRESHOLDS.as_dict()) == FILTER_NAMES
    scores = score_tile(landscape(64))
    assert tuple(scores) == FILTER_NAMES
    assert all(isinstance(v, float) and math.isfinite(v) for v in scores.values())


def test_individual_scorers_match_score_tile():
    tile = with_seal(landscape(128, 3))
    scores = score_tile(tile)
    singles = {"blank": score_blank, "blur": score_blur, "watermark": score_watermark, "seal": score_seal,
               "inscription": score_inscription, "padding": score_padding, "odd_colour": score_odd_colour}
    for name, fn in singles.items():
        assert fn(tile) == pytest.approx(scores[name]), name


def test_rejection_reasons_uses_strict_greater_and_filter_order():
    thresholds = FilterThresholds(blank=0.5, blur=0.5, watermark=0.5, seal=0.5, inscription=0.5, padding=0.5)
    scores = {"padding": 0.9, "blank": 0.6, "blur": 0.5, "watermark": 0.0, "seal": 0.51, "inscription": 0.1,
              "odd_colour": 1.0}
    assert rejection_reasons(scores, thresholds) == ["blank", "seal", "padding"]


def test_rejection_reasons_refuses_missing_or_nan_scores():
    scores = {name: 0.0 for name in FILTER_NAMES}
    del scores["seal"]
    with pytest.raises(KeyError, match="seal"):
        rejection_reasons(scores, THRESHOLDS)
    scores["seal"] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        rejection_reasons(scores, THRESHOLDS)


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.zeros((64, 64, 3), np.float32), "uint8"),
        (np.zeros((64, 64), np.uint8), "uint8 RGB"),
        (np.zeros((64, 64, 4), np.uint8), "uint8 RGB"),
        (np.zeros((16, 64, 3), np.uint8), ">= 32"),
    ],
)
def test_bad_tiles_raise_clear_errors(bad, message):
    with pytest.raises(ValueError, match=message):
        score_tile(bad)
    with pytest.raises(TypeError):
        score_tile([[0, 0, 0]])


def test_thresholds_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        THRESHOLDS.seal = 1.0  # type: ignore[misc]


# ---------------------------------------------------------------------------------------------- synthetic defects

SIZES = (64, 256)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("seed", (0, 1))
def test_clean_landscape_tile_passes_every_filter(size, seed):
    assert rejection_reasons(score_tile(landscape(size, seed)), THRESHOLDS) == []


@pytest.mark.parametrize("size", SIZES)
def test_blank_paper_rejected_only_as_blank_or_blur(size):
    reasons = rejection_reasons(score_tile(paper(size, 4)), THRESHOLDS)
    assert "blank" in reasons
    assert set(reasons) <= {"blank", "blur"}
    assert score_blank(landscape(size)) <= THRESHOLDS.blank


@pytest.mark.parametrize("size", SIZES)
def test_blur(size):
    sharp = landscape(size, 2)
    assert score_blur(sharp) <= THRESHOLDS.blur
    assert score_blur(blurred(sharp)) > THRESHOLDS.blur
    # More blur means a higher score (monotone, contrast-independent measure).
    assert score_blur(blurred(sharp, 4.0)) > score_blur(blurred(sharp, 1.5)) > score_blur(sharp)


@pytest.mark.parametrize("size", SIZES)
def test_seal(size):
    base = landscape(size, 1)
    assert score_seal(base) <= THRESHOLDS.seal
    assert "seal" in rejection_reasons(score_tile(with_seal(base)), THRESHOLDS)


def test_ochre_and_brown_silk_are_not_seals():
    ochre = paper(128, 5, colour=(196, 140, 70))  # 浅绛 ochre wash: hue ~60 deg
    silk = paper(128, 6, colour=(150, 118, 80))  # aged brown silk
    for tile in (ochre, silk):
        textured = cv2.addWeighted(tile, 0.6, landscape(128, 7), 0.4, 0)
        assert score_seal(textured) <= THRESHOLDS.seal
    # The same tiles with a real vermilion stamp are caught.
    assert score_seal(with_seal(silk)) > THRESHOLDS.seal


def test_scattered_red_foliage_is_not_a_seal():
    rng = np.random.default_rng(8)
    tile = landscape(256, 8)
    for _ in range(120):  # autumn leaves: many small red dots spread over the trees
        x, y = rng.integers(0, 256, 2)
        cv2.circle(tile, (int(x), int(y)), int(rng.integers(1, 3)), (185, 50, 40), -1)
    assert score_seal(tile) <= THRESHOLDS.seal


@pytest.mark.parametrize("size", SIZES)
def test_inscription(size):
    assert score_inscription(landscape(size, 3)) <= THRESHOLDS.inscription
    assert score_inscription(paper(size, 3)) <= THRESHOLDS.inscription
    assert "inscription" in rejection_reasons(score_tile(with_inscription(paper(size, 3))), THRESHOLDS)


def test_scattered_strokes_are_not_an_inscription():
    rng = np.random.default_rng(9)
    tile = paper(256, 9)
    for _ in range(120):  # the same strokes as the pseudo-characters, but not arranged in columns of cells
        x, y = rng.integers(0, 256, 2)
        dx, dy = rng.integers(-20, 20, 2)
        cv2.line(tile, (int(x), int(y)), (int(x + dx), int(y + dy)), (25, 25, 25), 2, cv2.LINE_AA)
    assert score_inscription(tile) <= THRESHOLDS.inscription


# Known limitation, kept visible: this mark is hairline (1 px strokes, letters ~1/30 of the tile) and the synthetic
# landscape crosses nearly every letter with dark strokes and dots, so the letters fall apart into specks below
# the ground level and no line forms (neither before nor after the ground test). strict=True: the day it is
# caught, this xfail fails and the case moves back to the plain list.
HAIRLINE_OVER_DENSE_BRUSHWORK = pytest.param(
    384, landscape, marks=pytest.mark.xfail(strict=True, reason="hairline mark over dense synthetic brushwork"))


@pytest.mark.parametrize("size, make_base", [(256, paper), (384, paper), HAIRLINE_OVER_DENSE_BRUSHWORK])
def test_watermark(size, make_base):
    base = make_base(size, 1)
    assert score_watermark(base) <= THRESHOLDS.watermark
    assert "watermark" in rejection_reasons(score_tile(with_watermark(base)), THRESHOLDS)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("colour", [(0, 0, 0), (255, 255, 255), (128, 128, 128)])
def test_padding_bar(size, colour):
    base = landscape(size, 4)
    assert score_padding(base) <= THRESHOLDS.padding
    assert "padding" in rejection_reasons(score_tile(with_bar(base, 0.2, colour)), THRESHOLDS)


def test_padding_mount_edge_and_colour_checker():
    # (checker patches need >= ~16 px to be seen, so this runs at 256 px only)
    base = landscape(256, 5)
    mount = base.copy()
    mount[:, 200:] = paper(256, 5, colour=(70, 62, 50))[:, 200:]  # dark mount silk beside a straight edge
    assert score_padding(mount) > THRESHOLDS.padding
    assert score_padding(with_colour_checker(base)) > THRESHOLDS.padding


# ---------------------------------------------------------------------------------------------- demo paintings


def test_saturated_bare_silk_is_not_a_colour_patch():
    # Orange silk with a faint grain (2 grey levels) is uniform and saturated, but not flat like a printed patch.
    rng = np.random.default_rng(3)
    silk = np.clip(np.array([205, 125, 45], np.float32) + rng.normal(0, 2.0, (256, 256, 1)), 0, 255).astype(np.uint8)
    assert score_padding(silk) <= THRESHOLDS.padding
    assert score_padding(with_colour_checker(silk)) > THRESHOLDS.padding


def test_demo_planted_defects_are_caught():
    """The demo module's own defect planters (default styling), scored on the 256 px tile grid."""
    demo = pytest.importorskip("lpd_pipeline.demo")
    base = demo.render_landscape(512, 512, np.random.default_rng(0), "ink_paper")
    origins = [(x, y) for y in (0, 256) for x in (0, 256)]

    def reasons_where(img, box, inside):
        x0, y0, x1, y1 = box
        out = []
        for x, y in origins:
            contained = x <= x0 and y <= y0 and x1 <= x + 256 and y1 <= y + 256
            overlaps = x < x1 and x0 < x + 256 and y < y1 and y0 < y + 256
            if (contained if inside else overlaps):
                out.append(rejection_reasons(score_tile(np.ascontiguousarray(img[y:y + 256, x:x + 256])), THRESHOLDS))
        return out

    for x, y in origins:
        assert rejection_reasons(score_tile(np.ascontiguousarray(base[y:y + 256, x:x + 256])), THRESHOLDS) == []
    sealed, box = demo.add_seal(base, np.random.default_rng(1), position=(300, 330))
    seal_tiles = reasons_where(sealed, box, inside=True)
    assert seal_tiles and all("seal" in r for r in seal_tiles)
    barred, box = demo.add_padding_bar(base, np.random.default_rng(2), side="bottom", fraction=0.15)
    bar_tiles = reasons_where(barred, box, inside=False)
    assert len(bar_tiles) == 2 and all("padding" in r for r in bar_tiles)
    written, box = demo.add_inscription(base, np.random.default_rng(3))
    assert any("inscription" in r for r in reasons_where(written, box, inside=False))


# ---------------------------------------------------------------------------------------------- real museum tiles

# Tiles checked by eye on the contact sheets of bench/filter_report.py: (file, x, y, filter that must reject).
REAL_DEFECTS = [
    ("colored/otang47__Landscape-Painting-Classification__paintings_Song_Paintings_115.jpg", 512, 0, "seal"),
    ("ink/AvatarGanymede__ChinesePaintingStyle__data_trainB_met_357.jpg", 256, 0, "seal"),
    ("colored/otang47__Landscape-Painting-Classification__paintings_Ming_Paintings_11.jpg", 512, 0, "inscription"),
    ("ink/otang47__Landscape-Painting-Classification__paintings_Ming_Paintings_194.jpg", 512, 0, "inscription"),
    ("ink/AvatarGanymede__ChinesePaintingStyle__data_trainB_harvard_52.jpg", 0, 0, "blank"),
    ("ink/AvatarGanymede__ChinesePaintingStyle__data_trainB_met_149.jpg", 0, 256, "padding"),  # black scan bar
]
# Clean landscape tiles (willows, bamboo, peaks, a misty hill) that no filter may reject.
REAL_CLEAN = [
    ("ink/AvatarGanymede__ChinesePaintingStyle__data_trainB_met_62.jpg", 0, 256),
    ("ink/AvatarGanymede__ChinesePaintingStyle__data_trainB_met_343.jpg", 0, 256),
    ("ink/AvatarGanymede__ChinesePaintingStyle__data_trainB_harvard_79.jpg", 0, 0),
    ("ink/otang47__Landscape-Painting-Classification__paintings_Ming_Paintings_136.jpg", 512, 0),
]


def _real_tile(root: Path, name: str, x: int, y: int, size: int = 256) -> np.ndarray:
    path = root / name
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        pytest.skip(f"{path} not readable")
    return np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)[y: y + size, x: x + size])


@pytest.mark.parametrize("name, x, y, expected", REAL_DEFECTS)
def test_real_defect_tiles_rejected(shared_paintings, name, x, y, expected):
    assert expected in rejection_reasons(score_tile(_real_tile(shared_paintings, name, x, y)), THRESHOLDS)


@pytest.mark.parametrize("name, x, y", REAL_CLEAN)
def test_real_clean_tiles_kept(shared_paintings, name, x, y):
    assert rejection_reasons(score_tile(_real_tile(shared_paintings, name, x, y)), THRESHOLDS) == []


# ---------------------------------------------------------------------------------------------- watermark & seal


@pytest.fixture(scope="module")
def demo_watermark_painting(tmp_path_factory):
    """The demo set's watermarked painting (default faint, rotated, repeated site mark) and its defect box."""
    demo = pytest.importorskip("lpd_pipeline.demo")
    out = tmp_path_factory.mktemp("demo_watermark")
    truth = demo.generate_demo_paintings(out, n_colored=8, n_ink=3, scale=0.5)
    row = truth[truth["defect"] == "watermark"].iloc[0]
    bgr = cv2.imread(str(out / row["file"]), cv2.IMREAD_COLOR)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), tuple(int(v) for v in row["defect_box"])


def test_demo_watermark_painting_tiles_rejected(demo_watermark_painting):
    from lpd_pipeline.curation.tiling import tile_origins

    img, (x0, y0, x1, y1) = demo_watermark_painting
    box = img[y0:y1, x0:x1]
    origins = tile_origins(box.shape[0], box.shape[1], 128, 128)
    assert len(origins) >= 4
    rejected = [
        "watermark" in rejection_reasons(score_tile(np.ascontiguousarray(box[y:y + 128, x:x + 128])), THRESHOLDS)
        for x, y in origins
    ]
    assert sum(rejected) > len(rejected) / 2, rejected


def test_demo_watermark_absent_means_no_watermark_rejection():
    # The same painting style and size without the overlay: the text detector must not fire on the painting.
    demo = pytest.importorskip("lpd_pipeline.demo")
    for seed, style in ((0, "ochre"), (1, "blue_green"), (2, "ink_paper")):
        img = demo.render_landscape(384, 384, np.random.default_rng(seed), style)
        for y in (0, 128, 256):
            for x in (0, 128, 256):
                assert score_watermark(np.ascontiguousarray(img[y:y + 128, x:x + 128])) <= THRESHOLDS.watermark


def hatched_hill(size: int, seed: int, spacing: int) -> np.ndarray:
    """A grey hill wash covered in fine parallel texture strokes (披麻皴-like hatching) on paper: the wash showing
    between the strokes is a row of bright thin slivers, the commonest look-alike of overlay lettering."""
    rng = np.random.default_rng(seed)
    img = paper(size, seed).astype(np.float32)
    ridge = size * 0.3 + size * 0.12 * np.abs(np.sin(np.arange(size) / size * 3.0 + seed))
    rows = np.arange(size)[:, None]
    img[(rows > ridge[None, :]) & (rows < size * 0.75)] *= 0.8
    for x in range(2, size - 2, spacing):
        y0 = int(ridge[x] + rng.integers(1, 4))
        length = int(rng.integers(size // 12, size // 6))
        g = float(rng.integers(110, 150))
        cv2.line(img, (x, y0), (x + int(rng.integers(-1, 2)), y0 + length), (g, g, g - 5), 1, cv2.LINE_AA)
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("size", (128, 256))
@pytest.mark.parametrize("spacing", (3, 4, 5))
def test_wash_between_hatching_is_not_a_watermark(size, spacing):
    # The slivers are bright against the strokes beside them but no brighter than the wash itself (the ground
    # test); before that test, about half of these tiles scored as overlay text.
    for seed in range(4):
        assert score_watermark(hatched_hill(size, seed, spacing)) <= THRESHOLDS.watermark, seed


def _red_tree_crown(tile: np.ndarray, rng: np.random.Generator, cx: int, cy: int, radius: int) -> None:
    """An autumn tree: ink branches and a dense crown of red leaf dabs (clustered, ragged, ink among the red)."""
    for _ in range(6):
        angle = rng.uniform(0, 2 * math.pi)
        cv2.line(tile, (cx, cy + radius), (int(cx + radius * math.cos(angle)), int(cy + radius * math.sin(angle))),
                 (40, 35, 30), 2, cv2.LINE_AA)
    for _ in range(70):
        r, angle = radius * math.sqrt(rng.random()), rng.uniform(0, 2 * math.pi)
        colour = (int(rng.integers(170, 200)), int(rng.integers(40, 70)), int(rng.integers(30, 50)))
        cv2.circle(tile, (int(cx + r * math.cos(angle)), int(cy + r * math.sin(angle))), int(rng.integers(1, 4)),
                   colour, -1)


def test_dense_red_foliage_is_not_a_seal():
    rng = np.random.default_rng(11)
    tile = landscape(256, 11)
    for cx, cy in ((60, 80), (150, 70), (200, 160), (90, 190)):
        _red_tree_crown(tile, rng, cx, cy, 22)
    assert score_seal(tile) <= THRESHOLDS.seal


def test_red_robe_on_brown_silk_is_not_a_seal():
    # A figure in a dull red robe outlined in ink on aged silk: red, compact, but neither vivid against the
    # silk nor free of ink.
    silk = cv2.addWeighted(paper(256, 12, colour=(140, 105, 70)), 0.7, landscape(256, 12), 0.3, 0)
    robe = np.array([[110, 90], [140, 88], [150, 150], [158, 200], [100, 204], [104, 150]], np.int32)
    cv2.fillPoly(silk, [robe], (150, 62, 45))
    cv2.polylines(silk, [robe], True, (35, 28, 22), 2, cv2.LINE_AA)
    cv2.line(silk, (125, 100), (120, 195), (35, 28, 22), 1, cv2.LINE_AA)  # a fold
    assert score_seal(silk) <= THRESHOLDS.seal


@pytest.mark.parametrize("cut", ("left", "top", "corner"))
def test_partial_seal_at_tile_edge_is_caught(cut):
    """A stamp cut by the tile border (the rest lies in the neighbouring tile) still counts."""
    demo = pytest.importorskip("lpd_pipeline.demo")
    painting = demo.render_landscape(512, 512, np.random.default_rng(5), "ink_paper")
    sealed, (sx0, sy0, sx1, sy1) = demo.add_seal(painting, np.random.default_rng(6), size=56, position=(220, 220))
    # Tile origin so that about 60 % of the seal's width and/or height lies inside the tile.
    x = sx0 + int(0.4 * (sx1 - sx0)) if cut in ("left", "corner") else sx0 - 60
    y = sy0 + int(0.4 * (sy1 - sy0)) if cut in ("top", "corner") else sy0 - 60
    tile = np.ascontiguousarray(sealed[y:y + 256, x:x + 256])
    assert "seal" in rejection_reasons(score_tile(tile), THRESHOLDS)
    assert score_seal(np.ascontiguousarray(painting[y:y + 256, x:x + 256])) <= THRESHOLDS.seal


# ---------------------------------------------------------------------------------------------- seal vs ochre wash


@pytest.fixture(scope="module")
def demo_half_scale(tmp_path_factory):
    """The default demo set at half scale (the size the 128-px tiles are cut from): images and truth table."""
    demo = pytest.importorskip("lpd_pipeline.demo")
    out = tmp_path_factory.mktemp("demo_half")
    truth = demo.generate_demo_paintings(out, scale=0.5)
    images = {row.file: cv2.cvtColor(cv2.imread(str(out / row.file), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
              for row in truth.itertuples() if row.defect in ("", "seal")}
    return truth, images


def test_demo_clean_paintings_have_no_seal_tiles(demo_half_scale):
    """Ochre (qianjiang) washes are red-orange, compact and alone, like a stamp; only their soft edge differs."""
    from lpd_pipeline.curation.tiling import tile_origins

    truth, images = demo_half_scale
    clean = truth[truth["defect"] == ""]
    assert set(clean["style"]) >= {"ochre", "blue_green"}
    flagged = []
    for row in clean.itertuples():
        img = images[row.file]
        for x, y in tile_origins(img.shape[0], img.shape[1], 128, 128):
            if score_seal(np.ascontiguousarray(img[y:y + 128, x:x + 128])) > THRESHOLDS.seal:
                flagged.append((row.file, row.style, x, y))
    assert flagged == []


def test_demo_seal_tiles_rejected(demo_half_scale):
    from lpd_pipeline.curation.tiling import tile_origins

    truth, images = demo_half_scale
    row = truth[truth["defect"] == "seal"].iloc[0]
    img = images[row["file"]]
    x0, y0, x1, y1 = (int(v) for v in row["defect_box"])
    hits = [(x, y) for x, y in tile_origins(img.shape[0], img.shape[1], 128, 128)
            if x < x1 and x + 128 > x0 and y < y1 and y + 128 > y0]
    assert hits
    for x, y in hits:
        assert "seal" in rejection_reasons(score_tile(np.ascontiguousarray(img[y:y + 128, x:x + 128])), THRESHOLDS)


@pytest.mark.parametrize("size", (128, 256))
def test_soft_edged_ochre_wash_is_not_a_seal_but_a_sharp_stamp_is(size):
    """Same colour, place and shape; only the edge differs: a wash fades out, a stamp is printed."""
    s = size / 256
    base = landscape(size, 21)
    shape = np.zeros((size, size), np.float32)
    cv2.ellipse(shape, (int(170 * s), int(70 * s)), (int(30 * s), int(24 * s)), 0, 0, 360, 1.0, -1)
    vermilion = np.array([200, 60, 40], np.float32)
    for soft, expect_seal in ((True, False), (False, True)):
        alpha = cv2.GaussianBlur(shape, (0, 0), 8 * s) if soft else shape
        alpha = (0.85 * alpha / alpha.max())[..., None]
        tile = np.clip(base * (1 - alpha) + vermilion * alpha, 0, 255).astype(np.uint8)
        assert (score_seal(tile) > THRESHOLDS.seal) == expect_seal, (soft, score_seal(tile))


# ------------------------------------------------------------------------------- exactness of the fast helpers
# The scorers use faster but equivalent forms of a few OpenCV operations; these pin the equivalence.


def _ink_like_mask(size: int, seed: int) -> np.ndarray:
    """Binary mask of scattered strokes and specks: many components of mixed size, some at the border."""
    rng = np.random.default_rng(seed)
    noise = cv2.GaussianBlur(rng.random((size, size)).astype(np.float32), (0, 0), 1.2)
    return (noise > np.quantile(noise, 0.97)).astype(np.uint8)


@pytest.mark.parametrize("kernel_size", (3, 11, 13, 27, 41))
def test_ellipse_close_matches_opencv_elliptic_closing(kernel_size):
    from lpd_pipeline.curation.filters import _ellipse_close

    rng = np.random.default_rng(kernel_size)
    ellipse = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (kernel_size, kernel_size))
    for image in (landscape(128, 3)[..., 1].copy(), rng.integers(0, 256, (97, 131), dtype=np.uint8)):
        expected = cv2.morphologyEx(image, cv2.MORPH_CLOSE, ellipse)
        np.testing.assert_array_equal(_ellipse_close(image, kernel_size), expected)


@pytest.mark.parametrize("seed", range(4))
def test_labelled_numbers_components_like_opencv_default(seed):
    from lpd_pipeline.curation.filters import _labelled

    mask = _ink_like_mask(160, seed)
    count, labels, stats, centroids = _labelled(mask.astype(bool))
    ref_count, ref_labels, ref_stats, ref_centroids = cv2.connectedComponentsWithStats(mask, connectivity=8)
    assert count == ref_count
    np.testing.assert_array_equal(labels, ref_labels)
    np.testing.assert_array_equal(stats, ref_stats)
    np.testing.assert_array_equal(centroids, ref_centroids)


@pytest.mark.parametrize("pad_y, pad_x", ((10, 2), (3, 3), (0, 5)))
def test_dilated_box_matches_stats_of_dilated_groups(pad_y, pad_x):
    from lpd_pipeline.curation.filters import _dilated_box

    mask = _ink_like_mask(128, pad_y + 7 * pad_x)
    _, labels, stats = cv2.connectedComponentsWithStats(mask, connectivity=8)[:3]
    dilated = cv2.dilate(mask, np.ones((2 * pad_y + 1, 2 * pad_x + 1), np.uint8))
    group_count, group_labels, group_stats, _ = cv2.connectedComponentsWithStats(dilated, connectivity=8)
    on = mask.astype(bool)
    comp_group = np.zeros(len(stats), np.int64)
    comp_group[labels[on]] = group_labels[on]
    assert group_count > 5
    for g in range(1, group_count):
        box = _dilated_box(stats[comp_group == g], pad_x, pad_y, mask.shape[1], mask.shape[0])
        assert box == tuple(int(v) for v in group_stats[g, :4])


# The watermark line finder, pinned on generated overlays (recorded before _watermark_lines was split into named
# steps): the split must leave every line, and so every score, exactly as it was.
WATERMARK_LINES_PINNED = {
    (256, 0): [(0.0, -71.0, 210.0, 22.0)],
    (256, 1): [(0.9093780517578125, -158.97203281651088, 212.22723388671875, 24.806398391723633),
               (0.0, -246.0, 212.0, 18.0)],
    (384, 1): [(5.5054779052734375, -91.95336275835854, 117.89939880371094, 29.226001739501953),
               (0.0, -372.0, 158.0, 22.0)],
}


@pytest.mark.parametrize("size, seed", sorted(WATERMARK_LINES_PINNED))
def test_watermark_lines_pinned(size, seed):
    from lpd_pipeline.curation.filters import _Tile, _watermark_lines

    lines = _watermark_lines(_Tile(with_watermark(paper(size, seed))))
    expected = WATERMARK_LINES_PINNED[size, seed]
    assert len(lines) == len(expected)
    for line, pinned in zip(lines, expected):
        assert line == pytest.approx(pinned, rel=1e-9, abs=1e-9)


# ---------------------------------------------------------------------------------------------- odd colour


def with_cast(img: np.ndarray, rgb_gain) -> np.ndarray:
    """The whole tile through a colour cast (per-channel gains), as an old slide or a faded print."""
    return np.clip(img.astype(np.float32) * np.asarray(rgb_gain, np.float32), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("gain", [(0.8, 1.0, 1.05), (0.85, 0.95, 1.15), (1.0, 0.75, 0.85), (0.9, 0.8, 1.1)])
def test_odd_colour_catches_casts_off_the_silk_colours(gain):
    # mint, blue, pink and violet casts over a landscape on cream paper (a mild salmon or orange cast, close to
    # the hue of old silk, is beyond this rule: the learned filter carries those)
    tile = with_cast(landscape(128, 2), gain)
    assert "odd_colour" in rejection_reasons(score_tile(tile), THRESHOLDS)


@pytest.mark.parametrize("ground", [(232, 222, 200), (200, 170, 120), (160, 120, 80), (240, 240, 240)])
def test_odd_colour_keeps_neutral_cream_and_brown_grounds(ground):
    tile = landscape(128, 3)
    tile = np.clip(tile.astype(np.float32) * (np.asarray(ground, np.float32) / np.array([232, 222, 200])), 0, 255)
    assert score_odd_colour(tile.astype(np.uint8)) <= THRESHOLDS.odd_colour


def painted_field(size: int, seed: int = 0, colour=(70, 150, 90)) -> np.ndarray:
    """A tile covered by pigment (a vivid web painting's green hillside): no bare ground, the colour laid in
    short strokes of every shade from pale to dark."""
    rng = np.random.default_rng(seed)
    shade = np.full((size, size), 0.8, np.float32)
    for _ in range(size * 3):
        x, y = rng.integers(0, size, 2)
        dx, dy = rng.normal(0, size / 25, 2)
        cv2.line(shade, (int(x), int(y)), (int(x + dx), int(y + dy)), float(rng.uniform(0.3, 1.5)),
                 int(rng.integers(2, 5)))
    tile = np.asarray(colour, np.float32) * shade[..., None] + rng.normal(0, 3.0, (size, size, 1))
    return np.clip(tile, 0, 255).astype(np.uint8)


def test_odd_colour_is_judged_on_a_ground_not_on_a_field_of_pigment():
    # The same green: as a flat cast over paper it is odd colour; as pigment covering the tile (its lightest
    # quarter a painted field whose lightness spreads) it is the painting (issue 12, seventh pass).
    from lpd_pipeline.curation.filters import GROUND_PAINTED_SPREAD, _paper_colour, _Tile

    field = painted_field(256, 1)
    assert _paper_colour(_Tile(field))[2] > GROUND_PAINTED_SPREAD
    assert score_odd_colour(field) == 0.0
    mint = with_cast(paper(256, 1), (0.78, 1.0, 0.9))
    assert _paper_colour(_Tile(mint))[2] < 2.0
    assert score_odd_colour(mint) > THRESHOLDS.odd_colour


# Train-fold tiles of bench/labels/tile_labels.csv, looked at (issue 12, seventh pass): a green web painting
# whose lightest quarter is pigment (keep), and mint and blue casts of museum reproductions (odd colour).
REAL_PIGMENT_FIELDS = [("web/colored/stevenling__chinese-painting-retrieval__data_paint_photos_landscape_"
                        "shanshui371.jpg", x, y) for x, y in ((0, 0), (0, 202), (202, 202))]
REAL_CASTS = [
    ("colored/otang47__Landscape-Painting-Classification__paintings_Ming_Paintings_145.jpg", None),
    ("colored/otang47__Landscape-Painting-Classification__paintings_Ming_Paintings_186.jpg", None),
    ("colored/otang47__Landscape-Painting-Classification__paintings_Song_Paintings_7.jpg", None),
]


@pytest.mark.parametrize("name, x, y", REAL_PIGMENT_FIELDS)
def test_odd_colour_rule_keeps_real_pigment_fields(shared_paintings, name, x, y):
    assert score_odd_colour(_real_tile(shared_paintings, name, x, y)) <= THRESHOLDS.odd_colour


@pytest.mark.parametrize("name", [name for name, _ in REAL_CASTS])
def test_odd_colour_rule_still_catches_real_casts(shared_paintings, name):
    from lpd_pipeline_tests.test_filter_labels import _bench

    rows = [r for r in _bench().read_labels() if r.painting == name and "odd_colour" in r.labels and not r.unsure]
    assert rows, name
    scores = [score_odd_colour(_real_tile(shared_paintings, name, r.x, r.y)) for r in rows]
    assert max(scores) > THRESHOLDS.odd_colour, scores


def test_odd_colour_keeps_blue_green_pigment_and_red_leaves_on_paper():
    tile = landscape(128, 4)
    tile[20:70, 10:120] = (60, 140, 120)  # 青绿 mineral green over part of the tile
    tile[90:110, 30:60] = (190, 50, 40)  # red leaves
    assert score_odd_colour(tile) <= THRESHOLDS.odd_colour
