"""Per-tile quality filters: each has a name, a score (higher = more defective) and a threshold.

A tile is rejected by a filter when ``score > threshold``. Scores are computed from the tile alone with numpy
and OpenCV; ``score_tile`` shares the intermediate images between filters so all six cost a few milliseconds
per 256x256 tile. Geometric parameters (kernel sizes, character sizes, bar lengths) are fractions of the tile
side, so the filters behave the same for any tile size >= 32. Pixel-scale parameters (paper grain, the
sharpness band) stay in pixels on purpose: they describe the scan, not the tile.

Thresholds were tuned with ``bench/filter_report.py`` on real museum scans (580 paintings, 3182 tiles of
256 px) and on synthetic defects; see that script for the per-filter rejection rates and contact sheets.
Scoring many tiles in parallel processes works best with ``cv2.setNumThreads(1)`` in each worker: on tiles
this small, OpenCV's own threads only add hand-off overhead.
"""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass
from typing import Any, Collection, Mapping

import cv2
import numpy as np

from lpd_pipeline import imaging
from lpd_pipeline.curation.order_stats import median, percentile

FILTER_NAMES = ("blank", "blur", "watermark", "seal", "inscription", "padding", "odd_colour")

MIN_TILE_SIDE = 32
# Watermark line tests (tuned with bench/filter_report.py): bright detail within a few px of ink darker than
# its surroundings by INK_DEPTH grey levels is paper between strokes; a text line's letters cover
# LETTER_COVERAGE of its length or number LETTER_DENSITY per letter height; at most MAX_INK_IN_LINE of its box
# is such ink.
INK_DEPTH = 45
LETTER_COVERAGE = 0.93
LETTER_DENSITY = 0.8
MAX_INK_IN_LINE = 0.02
# Ground test: a letter's mean lift above the local ground (median over ~GROUND_WINDOW letters) is at least
# MIN_GROUND_LIFT of its lift above the local dark envelope (the top-hat). Overlay strokes score ~0.4-1.3;
# paper or wash showing between brush strokes sits at the ground level and scores ~0-0.2.
GROUND_WINDOW = 4.0
MIN_GROUND_LIFT = 0.3
# Seal edge test: the a* gradient (per px, 75th percentile along the red boundary) is at least this fraction of
# the blob's a* contrast with its surroundings. Seals score 0.16-0.7 on real scans, ochre washes 0.06-0.13.
SEAL_MIN_EDGE_SHARPNESS = 0.15
# Odd colour: the paper (lightest quarter of the tile) may sit anywhere on the aged-silk locus, hue angle
# PAPER_HUES (yellow to orange-brown) up to PAPER_MAX_CHROMA; its a*b* distance from that locus, in units of
# ODD_COLOUR_UNIT, is the score. Neutral, cream and brown grounds score 0; mint, blue, violet or salmon casts
# of old slides and faded prints score above 1.
PAPER_HUES = (50.0, 100.0)
# Padding, colour patches: Lab variance within a box of 1/32 of the tile below this (flat print, flat mount).
PATCH_MAX_VARIANCE = 0.3
PAPER_MAX_CHROMA = 45.0
ODD_COLOUR_UNIT = 10.0
# ...but only a *ground* shows a cast: bare silk or paper is flat in lightness. Where the lightest quarter is a
# painted field (vivid web pigment covering the tile: a green hillside, an orange-gold sky), its lightness
# spreads; the score is damped from GROUND_FLAT_SPREAD (std of L*, full score) to GROUND_PAINTED_SPREAD (none).
# Issue 12, seventh pass: the labelled casts' grounds spread 0.9-4.4; the green pigment fields the rule rejected
# (keep tiles) 7.0-11.6.
GROUND_FLAT_SPREAD = 5.0
GROUND_PAINTED_SPREAD = 6.5


@dataclass(frozen=True)
class FilterThresholds:
    """Reject a tile when its score for a filter is above that filter's threshold."""

    blank: float = 0.3
    blur: float = 0.5
    watermark: float = 0.03
    seal: float = 0.007
    inscription: float = 0.03
    padding: float = 1.5
    odd_colour: float = 1.0

    def as_dict(self) -> dict[str, float]:
        return {name: float(value) for name, value in asdict(self).items()}


# --------------------------------------------------------------------------------------------------------------
# Shared intermediate images


def _odd(value: float, minimum: int = 3) -> int:
    size = max(minimum, int(round(value)))
    return size if size % 2 == 1 else size + 1


class _Tile:
    """Intermediate images computed once per tile and shared by the scorers (lazily, so each ``score_<name>``
    only pays for what it uses)."""

    def __init__(self, rgb: np.ndarray) -> None:
        _validate(rgb)
        rgb = np.ascontiguousarray(rgb)  # tiles are often views into a painting; OpenCV wants plain buffers
        self.rgb = rgb
        self.h, self.w = rgb.shape[:2]
        self.side = min(self.h, self.w)
        self.area = float(self.h * self.w)
        # BT.601 luma, as the pipeline stores grayscale tiles.
        self.luma = rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        self._cache: dict[str, Any] = {}

    def get(self, key: str) -> Any:
        if key not in self._cache:
            self._cache[key] = getattr(self, f"_make_{key}")()
        return self._cache[key]

    def _make_luma_u8(self) -> np.ndarray:
        # Rounded to the nearest level. No clipping pass: the weights sum to 1, so luma + 0.5 stays below 256.
        return (self.luma + np.float32(0.5)).astype(np.uint8)

    def _make_smooth(self) -> np.ndarray:
        # sigma 1.5 px removes paper/silk grain and JPEG noise but keeps brush strokes.
        return cv2.GaussianBlur(self.luma, (0, 0), 1.5)

    def _make_smooth_grad(self) -> tuple[np.ndarray, np.ndarray]:
        # Gradient of the de-grained luma in grey levels per pixel (Sobel 3x3 weights sum to 8): x, then y.
        smooth = self.get("smooth")
        return (cv2.Sobel(smooth, cv2.CV_32F, 1, 0, ksize=3) / 8.0, cv2.Sobel(smooth, cv2.CV_32F, 0, 1, ksize=3) / 8.0)

    def _make_lab(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        # Contiguous planes: strided channel views make each numpy/OpenCV pass over them several times slower.
        return imaging.lab_planes(self.rgb)

    def _make_chroma(self) -> np.ndarray:
        _, a, b = self.get("lab")
        return np.sqrt(a * a + b * b)

    def _make_fine(self) -> np.ndarray:
        return cv2.GaussianBlur(self.luma, (0, 0), 1.0)

    def _make_coarse(self) -> np.ndarray:
        return cv2.GaussianBlur(self.luma, (0, 0), 3.0)

    def _make_blackhat(self) -> np.ndarray:
        # Black-hat (closing minus image) of the luma with an elliptic kernel of 1/10 of the tile: dark thin
        # strokes (calligraphy, ink) against the local paper level.
        luma_u8 = self.get("luma_u8")
        return cv2.subtract(_ellipse_close(luma_u8, _odd(self.side / 10)), luma_u8)

    def _make_blackhat_top(self) -> tuple[float, float]:
        # The black-hat's 99.5th and 99th percentiles (levels): the ink masks' thresholds scale with them.
        return tuple(_percentiles_u8(self.get("blackhat"), 99.5, 99.0))  # type: ignore[return-value]

    def _make_smooth_energy(self) -> np.ndarray:
        # Squared gradient of the de-grained luma (stroke edges: > 16, i.e. 4 grey levels per pixel).
        gx, gy = self.get("smooth_grad")
        return gx * gx + gy * gy

    def area_resized(self, key: str, width: int, height: int) -> Any:
        """An intermediate (an image, or a tuple of planes) area-averaged to ``width`` x ``height``, computed once
        per size: the learned filter's features look at the same planes at half and quarter resolution."""
        cache_key = f"{key}@{width}x{height}"
        if cache_key not in self._cache:
            value = self.luma if key == "luma" else self.get(key)
            resize = functools.partial(cv2.resize, dsize=(width, height), interpolation=cv2.INTER_AREA)
            self._cache[cache_key] = tuple(map(resize, value)) if isinstance(value, tuple) else resize(value)
        return self._cache[cache_key]


def sobel_magnitude(plane: np.ndarray) -> np.ndarray:
    """|gradient| of a float32 plane by 3x3 Sobel (weights sum to 8), as numpy computes sqrt(gx^2 + gy^2).

    Not ``cv2.magnitude``: its SIMD and scalar paths differ in the last bit, and which one a pixel takes varies
    from run to run (the same tile gave two results), which made features irreproducible."""
    gx, gy = cv2.Sobel(plane, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(plane, cv2.CV_32F, 0, 1, ksize=3)
    return np.sqrt(gx * gx + gy * gy)


def _validate(rgb: np.ndarray) -> None:
    if not isinstance(rgb, np.ndarray):
        raise TypeError(f"tile must be a numpy array, got {type(rgb).__name__}")
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"tile must be uint8 RGB (H, W, 3), got dtype={rgb.dtype} shape={rgb.shape}")
    if min(rgb.shape[:2]) < MIN_TILE_SIDE:
        raise ValueError(f"tile side must be >= {MIN_TILE_SIDE} px, got shape={rgb.shape}")


def _percentiles_u8(values: np.ndarray, *qs: float) -> list[float]:
    """Fast percentiles of values in [0, 255] (float values truncated to their level) via one 256-bin histogram."""
    if values.dtype != np.uint8:
        values = np.clip(values, 0, 255).astype(np.uint8)
    # calcHist counts exactly (float32 holds integers up to 2**24) and is several times faster than np.bincount.
    cdf = np.cumsum(cv2.calcHist([values], [0], None, [256], [0, 256]).ravel().astype(np.int64))
    return [float(np.searchsorted(cdf, q / 100.0 * cdf[-1])) for q in qs]


def _labelled(mask: np.ndarray) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
    """8-connected components of a mask: count, labels, stats, centroids.

    Explicitly BBDT: it numbers the components exactly as OpenCV's default (Spaghetti) does, but gathers the
    statistics about 1.5x as fast. Where only the labels are needed, ``cv2.connectedComponents`` is cheaper still.
    """
    if mask.dtype == bool:
        mask = mask.view(np.uint8)  # same bytes, no copy
    return cv2.connectedComponentsWithStatsWithAlgorithm(mask, 8, cv2.CV_32S, cv2.CCL_BBDT)


def _components(mask: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    count, labels, stats, _ = _labelled(mask)
    return count, labels, stats


def _dilated_box(boxes: np.ndarray, pad_x: int, pad_y: int, width: int, height: int) -> tuple[int, int, int, int]:
    """Bounding box ``(x, y, w, h)`` of the components with these stats rows after dilation by a centred
    ``(2 * pad_y + 1) x (2 * pad_x + 1)`` rectangle: their joint box grown by the pad, clipped to the image.

    The box of a group of components joined by that dilation, without asking OpenCV for the statistics of the
    dilated mask (4x the cost of labelling it)."""
    x0 = max(0, int(boxes[:, 0].min()) - pad_x)
    y0 = max(0, int(boxes[:, 1].min()) - pad_y)
    x1 = min(width, int((boxes[:, 0] + boxes[:, 2]).max()) + pad_x)
    y1 = min(height, int((boxes[:, 1] + boxes[:, 3]).max()) + pad_y)
    return x0, y0, x1 - x0, y1 - y0


@functools.cache
def _ellipse_rectangles(size: int) -> tuple[np.ndarray, ...]:
    """Centred rectangles whose union is OpenCV's ``size`` x ``size`` elliptic kernel, one per row width."""
    widths = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size)).sum(axis=1)
    # The ellipse is convex and symmetric: the rows at least w wide form one centred block of rows.
    return tuple(np.ones((int((widths >= w).sum()), int(w)), np.uint8) for w in np.unique(widths))


def _ellipse_close(image: np.ndarray, size: int) -> np.ndarray:
    """Grey-level closing by OpenCV's elliptic kernel, identical to ``cv2.morphologyEx(MORPH_CLOSE)``.

    Dilation (erosion) by a union of kernels is the maximum (minimum) of the dilations (erosions) by each, and
    OpenCV filters rectangles separably: for large kernels this is ~1.6x faster than the elliptic kernel.
    """
    rectangles = _ellipse_rectangles(size)
    dilated = functools.reduce(cv2.max, [cv2.dilate(image, rect) for rect in rectangles])
    return functools.reduce(cv2.min, [cv2.erode(dilated, rect) for rect in rectangles])


# --------------------------------------------------------------------------------------------------------------
# Scorers


def _blank(t: _Tile) -> float:
    # Robust contrast of the grain-free luma: blank paper/silk spans only a few grey levels.
    high, low = _percentiles_u8(t.get("smooth"), 99.0, 1.0)
    contrast = high - low
    # Fraction of pixels on a stroke edge (>= 4 grey levels per pixel after de-graining).
    edge_fraction = np.count_nonzero(t.get("smooth_energy") > 16.0) / t.area
    texture = max(contrast / 40.0, edge_fraction / 0.06)
    return float(1.0 - min(texture, 1.0))


def _blur(t: _Tile) -> float:
    luma = t.luma
    fine, coarse = t.get("fine"), t.get("coarse")
    # Energy in the finest band (< 1 px detail) relative to the next band (1-3 px): contrast-independent,
    # and an out-of-focus or upsampled scan has lost the first band while keeping the second.
    high = float(np.std(luma - fine))
    mid = float(np.std(fine - coarse))
    sharpness = high / (mid + 0.5)
    return float(-math.log10(sharpness + 1e-3))


def _seal(t: _Tile) -> float:
    lightness, a, b = t.get("lab")
    side = t.side
    red = imaging.vermilion(lightness, a, b).astype(np.uint8)  # seal paste's colour
    red = cv2.morphologyEx(red, cv2.MORPH_OPEN, np.ones((2, 2), np.uint8))
    if not red.any():
        return 0.0
    # Colour alone cannot tell a seal from red autumn foliage or a red robe (same pigment), so shape decides:
    # closing joins a seal's carved strokes into one square or oval stamp that is fairly convex, fills its
    # bounding box and stands alone; foliage, figures and pillars close into ragged, elongated or clustered
    # shapes.
    k = _odd(side / 20)
    closed = cv2.morphologyEx(red, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    count, labels, stats = _components(closed)
    red_per_label = np.bincount(labels.ravel(), weights=red.ravel().astype(np.float64), minlength=count)
    seal_pixels = 0.0
    grad_a = None
    for i in range(1, count):
        x, y, w, h, area = stats[i]
        longest, shortest = max(w, h), min(w, h)
        touches_edge = x == 0 or y == 0 or x + w == t.w or y + h == t.h
        if longest < max(6, side / 40) or longest > 0.8 * side:
            continue
        if area / (w * h) < 0.45 or (longest > 4 * shortest and not touches_edge):
            continue
        density = red_per_label[i] / area
        if density < 0.25:
            continue
        # Inside a stamp the non-red pixels are the paper showing through the carving: lighter than the paste
        # and never ink-dark (solid 白文 stamps are nearly all red). Foliage has dark ink strokes among the red.
        blob = labels[y : y + h, x : x + w] == i
        is_red = red[y : y + h, x : x + w].astype(bool)
        blob_l = lightness[y : y + h, x : x + w]
        red_l, other_l = blob_l[blob & is_red], blob_l[blob & ~is_red]
        if other_l.size:
            if float((other_l < red_l.mean() - 15.0).mean()) > 0.09:
                continue
            if other_l.mean() < red_l.mean() + 2.0 and density < 0.7:
                continue
        contours, _ = cv2.findContours((labels[y : y + h, x : x + w] == i).astype(np.uint8),
                                       cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        hull_area = cv2.contourArea(cv2.convexHull(np.concatenate(contours)))
        if hull_area <= 0 or area / hull_area < 0.65:
            continue
        # A stamp sits alone: the ring around it holds little red. Foliage blobs have red neighbours.
        pad = _odd(side / 16)
        y0, y1, x0, x1 = max(0, y - pad), min(t.h, y + h + pad), max(0, x - pad), min(t.w, x + w + pad)
        ring = labels[y0:y1, x0:x1] != i
        if float(red[y0:y1, x0:x1][ring].mean()) > 0.08:
            continue
        # Seal paste is vivid against its ground; a reddish-brown silk or a dull red robe only just passes the
        # red test and barely differs from the silk around it.
        red_a = float(a[y : y + h, x : x + w][blob & is_red].mean())
        ring_a = float(median(a[y0:y1, x0:x1][ring]))
        if red_a - ring_a < 10.0:
            continue
        # Seal paste is printed: its edge is a step as sharp as the scan allows (JPEG chroma subsampling blurs it
        # over ~2 px). An ochre wash fades out over tens of pixels, so its a* gradient at the red-mask boundary
        # is a small fraction of its contrast with the surroundings.
        if grad_a is None:
            grad_a = sobel_magnitude(a)
        near = cv2.dilate(blob.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
        red_edge = cv2.morphologyEx(red[y : y + h, x : x + w], cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) > 0
        edge_grad = grad_a[y : y + h, x : x + w][red_edge & near] / 8.0  # Sobel 3x3 -> a* units per px
        if edge_grad.size == 0 or float(percentile(edge_grad, 75)) < SEAL_MIN_EDGE_SHARPNESS * (red_a - ring_a):
            continue
        seal_pixels += red_per_label[i]
    return float(seal_pixels / t.area)


def _text_columns(mask: np.ndarray, t: _Tile, min_members: int) -> float:
    """Fraction of the tile covered by vertical text columns found in an ink mask.

    Characters fall apart into several components (strokes, radicals) of 1/64..1/4 of the tile side. Chains
    of them joined vertically form candidate blocks; a block counts where it is made mostly of
    character-sized pieces (not tree or rock strokes) and splits at clean gutters into columns of consistent
    glyph cells (``_text_column_area``).
    """
    side = t.side
    count, labels, stats = _components(mask)
    if count <= 1:
        return 0.0
    widths, heights, areas = stats[1:, 2], stats[1:, 3], stats[1:, 4]
    longest = np.maximum(widths, heights)
    fill = areas / np.maximum(widths * heights, 1)
    char_like = (longest >= max(3, side / 64)) & (longest <= side / 4) & (fill > 0.08) & (fill < 0.75)
    char_like &= areas >= 6
    if int(char_like.sum()) < min_members:
        return 0.0
    keep = np.zeros(count, np.uint8)
    keep[1:][char_like] = 1
    chars = np.take(keep, labels)  # np.take: a faster lookup than keep[labels]
    along = _odd(side / 12)
    across = _odd(side / 60, minimum=1)
    kernel = np.ones((along, across), np.uint8)
    group_count, group_labels = cv2.connectedComponents(cv2.dilate(chars, kernel), connectivity=8)
    # Which group each character component fell into, then how many characters each group holds.
    on = chars.view(bool)  # 0/1 bytes: a free reinterpretation
    comp_group = np.zeros(count, np.int32)
    comp_group[labels[on]] = group_labels[on]
    members = np.bincount(comp_group[1:][char_like], minlength=group_count)
    ink = mask.astype(np.float32)
    covered = 0.0
    for g in range(1, group_count):
        if members[g] < min_members:
            continue
        gx, gy, gw, gh = _dilated_box(stats[comp_group == g], across // 2, along // 2, t.w, t.h)
        if gh < side / 4:
            continue
        box_ink = float(ink[gy : gy + gh, gx : gx + gw].mean())
        char_ink = float(chars[gy : gy + gh, gx : gx + gw].mean())
        if char_ink < 0.6 * box_ink:  # the box is mostly big strokes (trees, rocks), not characters
            continue
        # The group's characters, and all ink (any size) in the same rows to check the gutters beside columns.
        own = np.zeros((gh, t.w), bool)
        own[:, gx : gx + gw] = (group_labels[gy : gy + gh, gx : gx + gw] == g) & on[gy : gy + gh, gx : gx + gw]
        covered += _text_column_area(own, mask[gy : gy + gh, :].astype(bool), side, min_members)
    return min(1.0, covered / t.area)


def _text_column_area(block: np.ndarray, all_ink: np.ndarray, side: int, min_cells: int) -> float:
    """Area of the text columns in one vertical block: bands split at blank gutters (clean in ``all_ink`` too,
    so brush texture around a chance chain does not count) that hold a chain of consistent glyph cells."""
    cols_with_ink = np.flatnonzero(block.any(axis=0))
    if cols_with_ink.size == 0:
        return 0.0
    breaks = np.flatnonzero(np.diff(cols_with_ink) > 1)
    starts = np.concatenate(([cols_with_ink[0]], cols_with_ink[breaks + 1]))
    ends = np.concatenate((cols_with_ink[breaks], [cols_with_ink[-1]]))
    area = 0.0
    for start, end in zip(starts, ends):
        breadth = end - start + 1
        if breadth < side / 40 or breadth > side / 3:
            continue
        band = block[:, start : end + 1]
        rows = np.flatnonzero(band.any(axis=1))
        if rows[-1] - rows[0] + 1 < max(side / 4, 2.0 * breadth):
            continue
        gap = max(2, breadth // 6)
        band_ink = float(band[rows[0] : rows[-1] + 1].mean())
        gutters = [all_ink[rows[0] : rows[-1] + 1, lo:hi] for lo, hi in
                   ((max(0, start - gap), start), (end + 1, end + 1 + gap))]
        if any(g.size and float(g.mean()) > 0.4 * band_ink for g in gutters):
            continue
        if _glyph_cells(band[rows[0] : rows[-1] + 1]) >= min_cells:
            area += float(breadth * (rows[-1] - rows[0] + 1))
    return area


def _glyph_cells(column: np.ndarray) -> int:
    """How many glyph cells of one consistent size a vertical column mask splits into.

    Chinese characters occupy square cells of one size, stacked on one axis: cutting the column at the blank
    rows between characters gives runs close to square, of similar width and centred on the same line. Brush
    texture chained into a column gives runs of arbitrary shape, size and position instead.
    """
    rows_with_ink = column.any(axis=1)
    if not rows_with_ink.any():
        return 0
    # Runs of inked rows; blank gaps up to 1/12 of the column breadth (split radicals) are bridged.
    breadth = int(column.any(axis=0).sum())
    ink_rows = np.flatnonzero(rows_with_ink)
    breaks = np.flatnonzero(np.diff(ink_rows) > max(1, breadth // 12))
    starts = np.concatenate(([ink_rows[0]], ink_rows[breaks + 1]))
    ends = np.concatenate((ink_rows[breaks], [ink_rows[-1]]))
    widths, centres = [], []
    for start, end in zip(starts, ends):
        run = column[start : end + 1]
        cols = np.flatnonzero(run.any(axis=0))
        height, width = end - start + 1, int(cols[-1] - cols[0] + 1)
        if width >= 3 and 0.35 * width <= height <= 1.8 * width and 0.08 <= run.mean() <= 0.6:
            widths.append(width)
            centres.append(0.5 * (cols[0] + cols[-1]))
    if len(widths) < 2:
        return len(widths)
    widths_arr, centres_arr = np.array(widths, np.float32), np.array(centres, np.float32)
    typical = float(median(widths_arr))
    consistent = (np.abs(widths_arr - typical) <= 0.35 * typical) & (
        np.abs(centres_arr - median(centres_arr)) <= 0.3 * typical
    )
    return int(consistent.sum())


def _inscription(t: _Tile) -> float:
    blackhat = t.get("blackhat")
    # Dark thin strokes well below the local paper level; the floor ignores faint washes.
    threshold = max(35.0, 0.45 * t.get("blackhat_top")[0])
    ink = blackhat > threshold
    # Calligraphy is near-neutral ink; coloured strokes (green/blue texture strokes) are not text.
    ink &= t.get("chroma") < 25.0
    return _text_columns(ink, t, min_members=3)


_Line = tuple[float, float, float, float]


@dataclass
class _Overlay:
    """What the watermark steps share: the de-grained luma, its top-hat (bright thin detail), the strong-ink
    mask, and the bright-detail components with the mask of those still taken for letters."""

    smooth: np.ndarray
    tophat: np.ndarray
    ink: np.ndarray
    count: int = 0
    labels: np.ndarray | None = None
    stats: np.ndarray | None = None
    centroids: np.ndarray | None = None
    glyph_like: np.ndarray | None = None

    def glyph_count(self) -> int:
        return 0 if self.glyph_like is None else int(self.glyph_like.sum())


def _watermark_lines(t: _Tile) -> list[_Line]:
    """Candidate overlay text lines in a tile: ``(angle_deg, offset_px, length_px, breadth_px)`` each.

    Steps: bright thin detail lifted by a semi-transparent overlay, away from strong ink
    (:func:`_lifted_detail`); letter-sized components of it (:func:`_find_glyphs`) that rise above the local
    ground (:func:`_keep_glyphs_above_ground`); letters joined into groups (:func:`_group_glyphs`); groups
    shaped like a printed line of text (:func:`_text_line`)."""
    overlay, lifted = _lifted_detail(t)
    _find_glyphs(t, overlay, lifted)
    if overlay.glyph_count() < 4:
        return []
    _keep_glyphs_above_ground(t, overlay)
    if overlay.glyph_count() < 4:
        return []
    letter = float(median(_longest_sides(overlay.stats)[overlay.glyph_like]))
    j = _odd(0.3 * letter)
    group_count, group_labels, comp_group = _group_glyphs(overlay, j)
    group_size = np.bincount(comp_group, minlength=group_count)
    lines = []
    for g in range(1, group_count):
        if group_size[g] < 4:
            continue
        line = _text_line(t, overlay, np.flatnonzero(comp_group == g), group_labels, g, j, letter)
        if line is not None:
            lines.append(line)
    return lines


def _lifted_detail(t: _Tile) -> tuple[_Overlay, np.ndarray]:
    """The shared images and the mask of bright thin detail an overlay could have lifted.

    A semi-transparent white overlay lifts each pixel part of the way to white: by alpha * (255 - base), alpha
    well below 1, and it washes the ground's colour out. Bright paper gaps between ink strokes rise nearly all
    the way from the ink to the paper level (apparent alpha near 1) and keep the paper's colour."""
    side = t.side
    # uint8 throughout: grey-level morphology on 8-bit images is several times faster than on float.
    smooth = cv2.GaussianBlur(t.get("luma_u8"), (0, 0), 0.8)  # keeps 1-2 px glyph strokes, drops grain
    k = _odd(side / 24)
    disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    opened = cv2.morphologyEx(smooth, cv2.MORPH_OPEN, disk)
    tophat = cv2.subtract(smooth, opened)
    headroom = cv2.subtract(np.full_like(opened, 255), opened).astype(np.float32)
    chroma = t.get("chroma")
    saturation = chroma / (t.get("lab")[0] + 10.0)
    ground_saturation = cv2.blur(saturation, (2 * k + 1, 2 * k + 1))
    lifted = (tophat.astype(np.float32) < 0.7 * headroom) & ((chroma < 12.0) | (saturation < 0.9 * ground_saturation))
    # Paper showing between dark brush strokes (calligraphy, texture strokes) is the commonest bright thin
    # detail; an overlay's own drop shadow is far fainter than ink. Drop bright detail next to strong ink.
    closed = cv2.morphologyEx(smooth, cv2.MORPH_CLOSE, disk)
    ink = (cv2.subtract(closed, smooth) > INK_DEPTH).astype(np.uint8)
    near = _odd(side / 64, minimum=3)
    lifted &= cv2.dilate(ink, np.ones((near, near), np.uint8)) == 0
    return _Overlay(smooth, tophat, ink), lifted


def _longest_sides(stats: np.ndarray) -> np.ndarray:
    """Longer bounding-box side of each component but the background."""
    return np.maximum(stats[1:, 2], stats[1:, 3])


def _find_glyphs(t: _Tile, overlay: _Overlay, lifted: np.ndarray) -> None:
    """Components of the lifted detail (hysteresis: faint anti-aliased letter edges join the letter's core
    instead of breaking it into specks), and which of them are letter-sized, open shapes. Thresholds sit above
    the tile's own fine texture (silk weave, paper fibres), which is bright thin detail too."""
    side, tophat = t.side, overlay.tophat
    grain = _percentiles_u8(tophat, 75.0)[0]
    strong_level, weak_level = max(6.0, 3.0 * grain), max(3.0, 1.5 * grain)
    weak = (tophat > weak_level) & lifted
    count, labels, stats, centroids = _labelled(weak)
    overlay.count, overlay.labels, overlay.stats, overlay.centroids = count, labels, stats, centroids
    if count <= 1:
        return
    strong = np.bincount(labels[(tophat > strong_level) & weak], minlength=count) >= 3
    strong[0] = False
    widths, heights, areas = stats[1:, 2], stats[1:, 3], stats[1:, 4]
    longest = _longest_sides(stats)
    fill = areas / np.maximum(widths * heights, 1)
    glyph_like = strong[1:] & (longest >= max(4, side / 64)) & (longest <= side / 4) & (areas >= 6)
    overlay.glyph_like = glyph_like & (fill < 0.75)


def _keep_glyphs_above_ground(t: _Tile, overlay: _Overlay) -> None:
    """Keep the letters that rise above the local ground.

    An overlay lifts its strokes above the ground they cover, so they are brighter than the local median (the
    ground: a window of a few letters holds mostly ground even inside a line of text). Paper or wash showing
    between hatching strokes is bright only next to the dark strokes around it (the top-hat) and reaches no
    higher than the ground level itself, so its lift above the median is near zero."""
    smooth, labels, count = overlay.smooth, overlay.labels, overlay.count
    letter = float(median(_longest_sides(overlay.stats)[overlay.glyph_like]))
    # The ground varies on the scale of the window, so the median is taken at half resolution (4x cheaper).
    half = cv2.resize(smooth, (max(1, t.w // 2), max(1, t.h // 2)), interpolation=cv2.INTER_AREA)
    ground = cv2.resize(cv2.medianBlur(half, _odd(min(GROUND_WINDOW * letter, t.side / 2) / 2)), (t.w, t.h),
                        interpolation=cv2.INTER_LINEAR)
    ground_lift = cv2.subtract(smooth, ground)
    in_component = labels > 0
    component_of = labels[in_component]
    # bincount sums the uint8 weights as float64 (exact), so no float copies are needed.
    lift_sum = np.bincount(component_of, weights=ground_lift[in_component], minlength=count)
    tophat_sum = np.bincount(component_of, weights=overlay.tophat[in_component], minlength=count)
    overlay.glyph_like &= lift_sum[1:] >= MIN_GROUND_LIFT * tophat_sum[1:]


def _group_glyphs(overlay: _Overlay, j: int) -> tuple[int, np.ndarray, np.ndarray]:
    """Letters of one word sit about half a letter apart in any direction (site marks are often rotated): join
    them isotropically (a ``j`` x ``j`` dilation, ~0.3 letter). Returns the group count, the group label image
    and each component's group (0: none)."""
    labels, count, glyph_like = overlay.labels, overlay.count, overlay.glyph_like
    keep = np.zeros(count, np.uint8)
    keep[1:][glyph_like] = 1
    glyphs = np.take(keep, labels)
    group_count, group_labels = cv2.connectedComponents(cv2.dilate(glyphs, np.ones((j, j), np.uint8)), connectivity=8)
    on = glyphs.view(bool)
    comp_group = np.zeros(count, np.int32)
    comp_group[labels[on]] = group_labels[on]
    comp_group[0] = 0
    comp_group[1:][~glyph_like] = 0
    return group_count, group_labels, comp_group


def _line_axes(rect_angle: float, rw: float, rh: float) -> tuple[np.ndarray, np.ndarray]:
    """Unit normal and along-line vectors of a ``cv2.minAreaRect`` (its longer side is the line)."""
    angle = math.radians(rect_angle)
    if rw >= rh:
        normal = np.array([-math.sin(angle), math.cos(angle)])
    else:
        normal = np.array([math.cos(angle), math.sin(angle)])
    return normal, np.array([normal[1], -normal[0]])


def _member_spans(overlay: _Overlay, member_ids: np.ndarray, normal: np.ndarray,
                  along: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each member component's extent across and along the line, in px."""
    stats, labels = overlay.stats, overlay.labels
    spans_across, spans_along = [], []
    for m in member_ids:
        mx, my, mw, mh, _ = stats[m]
        py, px = np.nonzero(labels[my : my + mh, mx : mx + mw] == m)
        pts = np.column_stack([px + mx, py + my]).astype(np.float32)
        a_cross, a_along = pts @ normal, pts @ along
        spans_across.append(float(a_cross.max() - a_cross.min()) + 1.0)
        spans_along.append(float(a_along.max() - a_along.min()) + 1.0)
    return np.array(spans_across), np.array(spans_along)


def _text_line(t: _Tile, overlay: _Overlay, member_ids: np.ndarray, group_labels: np.ndarray, group: int,
               j: int, letter: float) -> _Line | None:
    """Group ``group`` (its letter components: ``member_ids``) as a line ``(angle, offset, length, breadth)``,
    or None when it is not shaped like a printed line of text."""
    gx, gy, gw, gh = _dilated_box(overlay.stats[member_ids], j // 2, j // 2, t.w, t.h)
    ys, xs = np.nonzero(group_labels[gy : gy + gh, gx : gx + gw] == group)
    (cx, cy), (rw, rh), rect_angle = cv2.minAreaRect(np.column_stack([xs + gx, ys + gy]).astype(np.float32))
    length, breadth = max(rw, rh), min(rw, rh)
    if length < max(t.side / 5, 3.0 * letter) or length < 2.0 * breadth:
        return None
    normal, along = _line_axes(rect_angle, rw, rh)
    across_arr, along_arr = _member_spans(overlay, member_ids, normal, along)
    typical = float(median(across_arr))
    if not _printed_letters(overlay.centroids[member_ids], normal, across_arr, along_arr, breadth, typical):
        return None
    if not _set_edge_to_edge(overlay.centroids[member_ids] @ along, along_arr, length, typical):
        return None
    if float(overlay.ink[gy : gy + gh, gx : gx + gw].mean()) > MAX_INK_IN_LINE:
        return None
    line_angle = math.degrees(math.atan2(along[1], along[0])) % 180.0
    return (line_angle, float(np.array([cx, cy]) @ normal), float(length), float(breadth))


def _printed_letters(centroids: np.ndarray, normal: np.ndarray, across_arr: np.ndarray, along_arr: np.ndarray,
                     breadth: float, typical: float) -> bool:
    """Printed letters (``typical``: their median height across the line): one height across the line, centres
    on that line, and compact glyphs rather than the parallel slivers paper shows between texture strokes."""
    if np.mean((across_arr >= 0.5 * typical) & (across_arr <= 1.8 * typical)) < 0.6:
        return False
    if breadth > 3.5 * typical:
        return False
    if float(median(np.maximum(across_arr, along_arr) / np.minimum(across_arr, along_arr))) > 2.5:
        return False
    return float(np.std(centroids @ normal)) <= 0.5 * typical


def _set_edge_to_edge(centres_along: np.ndarray, along_arr: np.ndarray, length: float, typical: float) -> bool:
    """Print sets letters edge to edge: their extents along the line cover most of its length, or (where
    letters split into strokes) many of them follow each other at less than a letter height. Paper between
    texture strokes leaves sparser slivers (and the ink it sits among shows inside the line's box)."""
    starts_along = centres_along - 0.5 * along_arr
    lo = float(starts_along.min())
    covered_along = np.zeros(int(length) + 2, bool)
    for s0, span in zip(starts_along - lo, along_arr):
        covered_along[int(s0) : int(s0 + span) + 1] = True
    return not (covered_along.mean() < LETTER_COVERAGE and along_arr.size * typical < LETTER_DENSITY * length)


def _watermark(t: _Tile) -> float:
    lines = _watermark_lines(t)
    return min(1.0, sum(l * b for _, _, l, b in lines) / t.area)


def _padding(t: _Tile) -> float:
    side = t.side
    # (a) digitally flat rows/columns (padding, letterbox bars): no variation along the whole line, in any
    # channel. Per contiguous channel plane: numpy reduces an (H, W, 3) array along W ~20x slower.
    planes = cv2.split(t.rgb)
    row_range = functools.reduce(np.maximum, [p.max(axis=1) - p.min(axis=1) for p in planes])
    col_range = functools.reduce(np.maximum, [p.max(axis=0) - p.min(axis=0) for p in planes])
    flat_lines = max(float((row_range <= 4).mean()), float((col_range <= 4).mean())) / 0.06

    # (b) a straight edge running the whole tile (mount border, card or strip edge): the signed gradient stays
    # the same along the full line, which brush strokes and natural horizons never do.
    gx, gy = t.get("smooth_grad")
    margin = max(2, side // 32)  # ignore the outermost lines (JPEG/tile-edge artefacts)

    def held(grad: np.ndarray, axis: int) -> float:
        """Mean signed gradient of the strongest line, capped by its 20th-percentile |gradient|: high only
        where the edge holds along at least 80 % of the line."""
        profile = np.abs(grad.mean(axis=axis))[margin:-margin]
        if profile.size == 0:
            return 0.0
        idx = int(np.argmax(profile)) + margin
        line = np.abs(grad[:, idx] if axis == 0 else grad[idx, :])
        return float(min(profile.max(), percentile(line, 20)))

    straight_edge = max(held(gx, 0), held(gy, 1)) / 6.0

    # (c) saturated uniform colour blocks (colour-checker patches); grey-scale strips show up as (b).
    saturated_px = t.get("chroma") > 35.0
    # Common case (ink paintings): no room for a colour patch, skip the work.
    if np.count_nonzero(saturated_px) / t.area < 0.01:
        return float(max(flat_lines, straight_edge))
    box = _odd(side / 32)
    lightness, a, b = t.get("lab")
    mean_l = cv2.blur(lightness, (box, box))
    var_l = cv2.blur(lightness**2, (box, box)) - mean_l**2
    mean_a = cv2.blur(a, (box, box))
    var_a = cv2.blur(a**2, (box, box)) - mean_a**2
    mean_b = cv2.blur(b, (box, box))
    var_b = cv2.blur(b**2, (box, box)) - mean_b**2
    # Printed patches are flatter than any silk: bare saturated orange or yellow silk has a Lab variance of ~1.
    uniform = (var_l < PATCH_MAX_VARIANCE) & (var_a < PATCH_MAX_VARIANCE) & (var_b < PATCH_MAX_VARIANCE)
    saturated = np.sqrt(mean_a**2 + mean_b**2) > 35.0
    blocks = float((uniform & saturated).mean()) / 0.02

    return float(max(flat_lines, straight_edge, blocks))


def _paper_colour(t: _Tile) -> tuple[float, float, float]:
    """Median a*, b* of the lightest quarter of the tile: the ground (silk, paper), which a cast shifts; and the
    spread (std) of its lightness: flat for bare silk or paper, wide for a field of pigment."""
    lightness, a, b = t.get("lab")
    paper = lightness >= percentile(lightness, 75.0)
    return float(median(a[paper])), float(median(b[paper])), float(lightness[paper].std())


def _odd_colour(t: _Tile) -> float:
    a, b, spread = _paper_colour(t)
    flat = min(1.0, max(0.0, (GROUND_PAINTED_SPREAD - spread) / (GROUND_PAINTED_SPREAD - GROUND_FLAT_SPREAD)))
    if flat == 0.0:
        return 0.0
    chroma, hue = math.hypot(a, b), math.degrees(math.atan2(b, a))
    if PAPER_HUES[0] <= hue <= PAPER_HUES[1]:
        distance = max(0.0, chroma - PAPER_MAX_CHROMA)
    else:  # distance to the nearer edge of the locus (a segment from neutral along each limiting hue)
        distance = math.inf
        for angle in PAPER_HUES:
            ux, uy = math.cos(math.radians(angle)), math.sin(math.radians(angle))
            along = min(max(a * ux + b * uy, 0.0), PAPER_MAX_CHROMA)
            distance = min(distance, math.hypot(a - along * ux, b - along * uy))
    return float(flat * distance / ODD_COLOUR_UNIT)


_SCORERS = {
    "blank": _blank,
    "blur": _blur,
    "watermark": _watermark,
    "seal": _seal,
    "inscription": _inscription,
    "padding": _padding,
    "odd_colour": _odd_colour,
}


# --------------------------------------------------------------------------------------------------------------
# Public API


def score_blank(rgb: np.ndarray) -> float:
    """Emptiness in [0, 1]: 1 minus texture, where texture is the larger of the de-grained luma contrast
    (1st..99th percentile, / 40 grey levels) and the stroke-edge density (/ 6 % of pixels). Blank paper or silk
    has neither, while even a faint wash with a few strokes has one of them."""
    return _blank(_Tile(rgb))


def score_blur(rgb: np.ndarray) -> float:
    """-log10 of the finest-band / next-band energy ratio of the luma. Focus loss and upsampling remove detail
    finer than a pixel first, so the ratio drops independently of contrast. Blank tiles score as blurry too."""
    return _blur(_Tile(rgb))


def score_watermark(rgb: np.ndarray) -> float:
    """Fraction of the tile covered by overlay text (site marks): thin strokes brighter than the brightest
    broad area around them and than the local ground level (median), washed-out in colour, letter-sized,
    chained into straight lines of any angle whose letters share one height and one baseline, sit edge to
    edge, and have no strong ink beside them (paper between brush strokes is the commonest look-alike).
    Faint (alpha < ~0.3) overlays on busy texture, and hairline (1-2 px) lettering small against the tile
    over dense brushwork or woven paper, can be missed; the line-shape and ground tests keep brush texture
    and paper gaps between strokes from firing."""
    return _watermark(_Tile(rgb))


def score_seal(rgb: np.ndarray) -> float:
    """Fraction of the tile covered by seal stamps: vermilion pixels (CIELAB a* > 16, hue angle below ~52 deg;
    ochre, brown silk and mineral greens excluded) inside blobs shaped like a stamp (compact, convex, filling
    their box, alone, with only paper, not ink, showing between the red) and edged by a sharp a* step. Red foliage
    and robes share the pigment, so the shape tests carry the discrimination; the edge test rejects soft-edged
    ochre washes."""
    return _seal(_Tile(rgb))


def score_inscription(rgb: np.ndarray) -> float:
    """Fraction of the tile covered by calligraphy columns: dark, neutral, thin strokes (black-hat) broken into
    character-sized components that chain vertically, split at clean gutters into columns, and cut at blank
    rows into square glyph cells of one size on one axis (at least three per column)."""
    return _inscription(_Tile(rgb))


def score_padding(rgb: np.ndarray) -> float:
    """Largest of three normalised cues (1.0 = clearly padding): digitally flat full rows/columns (/ 6 % of the
    lines), a straight edge held along the whole tile (mount border, card edge; / 6 grey levels per pixel), and
    uniform saturated blocks (colour-checker patches; / 2 % of the tile)."""
    return _padding(_Tile(rgb))


def score_odd_colour(rgb: np.ndarray) -> float:
    """a*b* distance (/ 10) of the tile's ground (median colour of its lightest quarter) from the aged-silk
    locus (hue 50-100 deg, chroma up to 45): a colour cast of an old slide or a faded print moves the ground off
    it, toward mint, blue, violet or salmon. Strong pigments on a neutral or brown ground score 0. Casts along
    the locus itself (an over-yellow print) are not caught by this rule (see docs/FILTER_RULES.md)."""
    return _odd_colour(_Tile(rgb))


def score_tile(rgb: np.ndarray) -> dict[str, float]:
    """All filter scores for one uint8 RGB tile, keyed by ``FILTER_NAMES`` (intermediates shared)."""
    return scores_of(_Tile(rgb))


def scores_of(tile: _Tile, skip: Collection[str] = ()) -> dict[str, float]:
    """:func:`score_tile` on prepared intermediates (so the learned filter's features reuse them); the filters
    named in ``skip`` (whose decision is taken elsewhere, e.g. by the watermark CNN) score NaN, uncomputed."""
    return {name: math.nan if name in skip else _SCORERS[name](tile) for name in FILTER_NAMES}


def rejection_reasons(scores: Mapping[str, float], thresholds: FilterThresholds,
                      names: Collection[str] = FILTER_NAMES) -> list[str]:
    """Names of the filters (of ``names``, default all) whose score exceeds its threshold, in ``FILTER_NAMES``
    order.

    A missing or NaN score of a filter asked about is an error: a tile must never pass a filter by accident.
    """
    limits = thresholds.as_dict()
    reasons = []
    for name in (n for n in FILTER_NAMES if n in names):
        if name not in scores:
            raise KeyError(f"score for filter {name!r} missing (got {sorted(scores)})")
        value = float(scores[name])
        if math.isnan(value):
            raise ValueError(f"score for filter {name!r} is NaN")
        if value > limits[name]:
            reasons.append(name)
    return reasons
