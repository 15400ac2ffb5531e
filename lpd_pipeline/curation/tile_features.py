"""Per-tile features for the learned tile filter (:mod:`lpd_pipeline.curation.tile_model`).

Rule: a feature is a plain number measured on the tile alone (no painting context), from the intermediates the
rule filters already share (:class:`lpd_pipeline.curation.filters._Tile`), and named in :data:`FEATURE_NAMES`
(the model file stores the names, so a model trained on other features is refused, never misread). Geometric
sizes are fractions of the tile side, as in the filters. Groups:

- ``rule_*``: the seven rule scores themselves;
- ``paper_*`` / ``colour_*``: the ground's colour (lightest quarter), overall medians, chroma and hue spread
  (colour casts, blank silk);
- ``red_*``: red relative to the local ground (a* above a large median), and the most stamp-like red blob
  (faded seals on brown silk, which the seal rule's absolute a* > 16 misses);
- ``ink_*``: the dark thin strokes of the inscription rule: coverage, character-sized pieces, column and row
  profiles (columns and title lines of text);
- ``contrast_*`` / ``edge_*``: de-grained luma spread and stroke-edge density (blank);
- ``band_*``: detail energy in three fine bands (blur, upsampled thumbnails);
- ``border_*`` / ``flat_fraction``: the four edge strips and flat areas (padding, mounts);
- ``stamp_*``, ``glyph_*``, ``line_*``, ``plain_*``: the shapes of seals, text and bare ground
  (:mod:`lpd_pipeline.curation.shape_features`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import cv2
import numpy as np

from lpd_pipeline.curation import filters
from lpd_pipeline.curation.filters import _Tile, _labelled, _odd, _percentiles_u8
from lpd_pipeline.curation.order_stats import median, percentile
from lpd_pipeline.curation.shape_features import SHAPE_FEATURE_NAMES, shape_features

_BLOB_NAMES = ("score", "fill", "aspect", "density", "size", "count")
FEATURE_NAMES: tuple[str, ...] = (
    *(f"rule_{name}" for name in filters.FILTER_NAMES),
    "paper_a", "paper_b", "paper_chroma", "paper_hue", "colour_median_a", "colour_median_b",
    "colour_median_l", "paper_l", "colour_chroma_mean", "colour_chroma_15", "colour_chroma_30",
    "colour_hue_spread", "colour_std_a", "colour_std_b",
    "red_lift_6", "red_lift_10", "red_lift_20", "red_absolute",
    *(f"red_blob8_{name}" for name in _BLOB_NAMES), *(f"red_blob15_{name}" for name in _BLOB_NAMES),
    "ink_fraction", "ink_char_pieces", "ink_column_std", "ink_row_std", "ink_empty_columns", "ink_empty_rows",
    "ink_blackhat_p99",
    "contrast_99_1", "contrast_95_5", "edge_strong", "edge_weak", "contrast_std",
    "band_fine", "band_mid", "band_coarse", "band_ratio",
    "border_min_std", "border_median_std", "flat_fraction",
    *SHAPE_FEATURE_NAMES,
)


# Colour statistics are taken on the Lab planes area-averaged to this side (medians and spreads of a 64x64
# grid are those of the tile within a fraction of a unit, at 1/16 of the cost); red blobs at half resolution.
COLOUR_SIDE = 64


def tile_features(rgb: np.ndarray, rule_scores: Mapping[str, float] | None = None,
                  tile: _Tile | None = None) -> np.ndarray:
    """The features of one uint8 RGB tile, in :data:`FEATURE_NAMES` order (float64). ``rule_scores`` and
    ``tile``: the rule scores and the filters' intermediates when already computed (they are shared)."""
    tile = tile if tile is not None else _Tile(rgb)
    scores = rule_scores if rule_scores is not None else filters.scores_of(tile)
    values = [float(scores[name]) for name in filters.FILTER_NAMES]
    values += _colour(tile) + _red(tile) + _ink(tile) + _contrast(tile) + _bands(tile) + _borders(tile)
    values += shape_features(tile)
    return np.array(values, np.float64)


def _colour(t: _Tile) -> list[float]:
    lightness, a, b = t.area_resized("lab", min(COLOUR_SIDE, t.w), min(COLOUR_SIDE, t.h))
    chroma = np.sqrt(a * a + b * b)
    paper_l = float(percentile(lightness, 75.0))
    paper = lightness >= paper_l
    pa, pb = float(median(a[paper])), float(median(b[paper]))
    hue = np.arctan2(b, a)
    coloured = chroma > 8.0
    spread = 0.0
    if coloured.mean() > 0.01:
        spread = 1.0 - math.hypot(float(np.cos(hue[coloured]).mean()), float(np.sin(hue[coloured]).mean()))
    return [pa, pb, math.hypot(pa, pb), math.atan2(pb, pa), float(median(a)), float(median(b)),
            float(median(lightness)), paper_l, float(chroma.mean()), float((chroma > 15).mean()),
            float((chroma > 30).mean()), spread, float(a.std()), float(b.std())]


def _red(t: _Tile) -> list[float]:
    lightness, a, b = t.area_resized("lab", max(1, t.w // 2), max(1, t.h // 2))
    side = min(a.shape)
    # The ground's a*: a large median (a* + 64 fits uint8 for the a* that matter here), at a quarter of this size.
    shifted = np.clip(a + 64.0, 0, 255).astype(np.uint8)
    quarter = cv2.resize(shifted, (max(1, a.shape[1] // 4), max(1, a.shape[0] // 4)), interpolation=cv2.INTER_AREA)
    ground = cv2.resize(cv2.medianBlur(quarter, _odd(side / 16)), (a.shape[1], a.shape[0]),
                        interpolation=cv2.INTER_LINEAR).astype(np.float32) - 64.0
    lift = a - ground
    positive = np.maximum(a, 0.0)
    red_hue = (b < 1.3 * positive) & (b > -0.5 * positive)
    values = [float((lift > 6).mean()), float(((lift > 10) & red_hue).mean()),
              float(((lift > 20) & red_hue).mean()), float(((a > 16) & red_hue).mean())]
    for level in (8.0, 15.0):
        values += _stamp_blob(((lift > level) & red_hue & (lightness > 15)).astype(np.uint8), side)
    return values


def _stamp_blob(mask: np.ndarray, side: int) -> list[float]:
    """The most stamp-like blob of a red mask after closing: (area x fill x squareness, fill, squareness,
    red density, size / side), and how many blobs are square-ish and filled."""
    k = _odd(side / 20)
    closed = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    count, labels, stats, _ = _labelled(closed)
    best, stamps = [0.0] * 5, 0
    for i in range(1, count):
        x, y, w, h, area = (int(v) for v in stats[i])
        longest = max(w, h)
        if longest < side / 40 or longest > 0.6 * side:
            continue
        fill, aspect = area / (w * h), min(w, h) / longest
        stamps += fill > 0.5 and aspect > 0.5
        score = area / side**2 * fill * aspect
        if score > best[0]:
            density = float(mask[y:y + h, x:x + w][labels[y:y + h, x:x + w] == i].mean())
            best = [score, fill, aspect, density, longest / side]
    return [*best, float(stamps)]


def _ink(t: _Tile) -> list[float]:
    blackhat, (top, p99) = t.get("blackhat"), t.get("blackhat_top")
    ink = (blackhat > max(25.0, 0.45 * top)).astype(np.uint8)
    count, _, stats, _ = _labelled(ink)
    longest = np.maximum(stats[1:, 2], stats[1:, 3])
    pieces = int(((longest >= t.side / 64) & (longest <= t.side / 6)).sum())
    columns, rows = ink.mean(axis=0), ink.mean(axis=1)
    return [float(ink.mean()), float(pieces), float(columns.std()), float(rows.std()),
            float((columns < 0.005).mean()), float((rows < 0.005).mean()), p99]


def _contrast(t: _Tile) -> list[float]:
    smooth = t.get("smooth")
    p1, p5, p95, p99 = _percentiles_u8(smooth, 1.0, 5.0, 95.0, 99.0)
    energy = t.get("smooth_energy")
    return [p99 - p1, p95 - p5, float((energy > 16).mean()), float((energy > 4).mean()), float(smooth.std())]


def _bands(t: _Tile) -> list[float]:
    # Detail finer than 1 px, between 1 and 1.5 px, and between 1.5 and 3 px (blurs the filters share).
    luma, fine, smooth, coarse = t.luma, t.get("fine"), t.get("smooth"), t.get("coarse")
    e0, e1, e2 = float(np.std(luma - fine)), float(np.std(fine - smooth)), float(np.std(smooth - coarse))
    return [math.log10(e0 + 0.1), math.log10(e1 + 0.1), math.log10(e2 + 0.1), math.log10((e0 + 0.1) / (e2 + 0.1))]


def _borders(t: _Tile) -> list[float]:
    rgb = t.rgb
    strips = (rgb[:8], rgb[-8:], rgb[:, :8], rgb[:, -8:])
    spread = [float(strip.reshape(-1, 3).astype(np.float32).std(axis=0).mean()) for strip in strips]
    flat = float((cv2.blur(t.get("smooth_energy"), (9, 9)) < 0.5).mean())
    return [min(spread), float(median(spread)), flat]
