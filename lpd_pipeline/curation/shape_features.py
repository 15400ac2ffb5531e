"""Shape features for the learned tile filter: seal stamps, text columns and lines, bare ground.

Rule: each group looks for the *shape* a labeller sees (docs/FILTER_RULES.md) on the tile at half resolution
(:data:`SIDE` px, area-averaged from the shared full-resolution intermediates of
:class:`lpd_pipeline.curation.filters._Tile`), and returns plain numbers named in :data:`SHAPE_FEATURE_NAMES`:

- ``stamp_*``: red *relative to the paper* (a* above the median of the tile's lighter half, in a direction
  from the paper's a*b* that is more red than yellow: a seal on yellow silk is as yellow as the silk), closed
  into blobs; the most stamp-like blob (area x fill x squareness, a blob cut by the tile edge counts as square)
  damped when it is faint or when the ring around it is warm (red foliage, robes and autumn hills have red and
  orange neighbours, a stamp stands on paper), and the dark calligraphy in that ring (seals sit by signatures);
- ``glyph_*``: near-neutral dark thin strokes (the inscription rule's ink) merged into character-sized pieces,
  and how many of them have a neighbour above and below (a column) or left and right (a line);
- ``line_*``: the same ink closed along one axis into long thin runs (a short signature column, a title line
  along the top), and how bare the paper is beside the best one;
- ``rim_*``: what lies along the tile's sides (padding the rule's straight-edge test leaves to its margin): a
  straight edge held along a side within its outer 1/25, the colour step between a side's outer strip and the
  band inside it, and the longest smooth edge (a fan's or album leaf's curved border, a mount edge);
- ``plain_*``: the red channel (seals vanish in it, ink does not) and the luma at quarter resolution with the
  paper's low-frequency tone removed: spread, low-gradient fraction, entropy and dark fraction (bare silk with
  faint weave or stains is flat here; brushwork is not), and the fraction of bare cells (an 8 x 8 grid; a
  cell is bare when its range is below 6, 12 or 24 grey levels): a mostly bare tile with a seal, a column of
  text or a few strokes in one part.
"""

from __future__ import annotations

import cv2
import numpy as np

from lpd_pipeline.curation.filters import _labelled, _Tile, sobel_magnitude
from lpd_pipeline.curation.order_stats import median, percentile

SIDE = 128
BIG_SIDE = PLAIN_SIDE = 64
# Bare cells (issue 12, fifth pass): the tile in 8 x 8 cells (32 px at 256); a cell is bare when its range at
# quarter resolution (each value a 4 x 4 mean: silk grain averaged out) is below each of these grey levels.
BARE_CELLS = 8
BARE_RANGES = (6, 12, 24)
SHAPE_FEATURE_NAMES: tuple[str, ...] = (
    "stamp_warm_fraction", "stamp_score", "stamp_area", "stamp_lift", "stamp_ring_warm", "stamp_ring_ink",
    "stamp_fill", "stamp_hue_spread", "stamp_edge", "stamp_total", "stamp_count",
    *(f"{scale}glyph_{name}" for scale in ("", "big")
      for name in ("count", "fraction", "in_column", "in_line", "column_pairs", "line_pairs", "size_spread")),
    *(f"{scale}line_{name}" for scale in ("", "big")
      for name in ("columns", "column_area", "column_length", "column_bare", "rows", "row_area", "row_length",
                   "row_bare")),
    *(f"plain_{plane}_{name}" for plane in ("red", "luma")
      for name in ("spread", "range", "flat1", "flat25", "entropy", "dark", *(f"bare{k}" for k in BARE_RANGES))),
    "rim_edge", "rim_step", "rim_longest_edge",
)


def shape_features(t: _Tile) -> list[float]:
    """The features of :data:`SHAPE_FEATURE_NAMES` for one tile, in that order."""
    ink, big = _neutral_ink(t), _big_ink(t)
    return (_stamps(t, ink) + _glyphs(ink, SIDE, merge=True) + _glyphs(big, BIG_SIDE, merge=False)
            + _lines(ink, SIDE, 7, 1 / 6) + _lines(big, BIG_SIDE, 5, 1 / 4) + _plain(t) + _rim(t))


def _half(plane: np.ndarray) -> np.ndarray:
    return cv2.resize(plane, (SIDE, SIDE), interpolation=cv2.INTER_AREA)


def _neutral_ink(t: _Tile) -> np.ndarray:
    """Dark thin near-neutral strokes (the inscription rule's ink, with a lower floor) at half resolution."""
    blackhat = t.get("blackhat")
    threshold = max(25.0, 0.45 * t.get("blackhat_top")[0])
    ink = ((blackhat > threshold) & (t.get("chroma") < 25.0)).astype(np.float32)
    return (_half(ink) > 0.15).astype(np.uint8)


def _big_ink(t: _Tile) -> np.ndarray:
    """Dark near-neutral strokes at quarter resolution, against a black-hat of ~1/7 of the tile: the broad
    strokes of large calligraphy, which the full-resolution black-hat (1/10 of the tile) cuts short."""
    luma = t.area_resized("luma", BIG_SIDE, BIG_SIDE)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (9, 9))
    blackhat = cv2.morphologyEx(luma, cv2.MORPH_CLOSE, kernel) - luma
    threshold = max(20.0, 0.45 * float(percentile(blackhat, 99.5)))
    chroma = t.area_resized("chroma", BIG_SIDE, BIG_SIDE)
    return ((blackhat > threshold) & (chroma < 25.0)).astype(np.uint8)


def _stamps(t: _Tile, ink: np.ndarray) -> list[float]:
    lightness, a, b = t.area_resized("lab", SIDE, SIDE)
    light = lightness >= median(lightness)
    da, db = a - float(median(a[light])), b - float(median(b[light]))
    warm = ((da > 5) & (db < 3.0 * da)).astype(np.uint8)
    red = ((db < 1.2 * da) & (db > -0.8 * da) & (lightness > 12) & (da > 5)).astype(np.uint8)
    closed = cv2.morphologyEx(red, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5)))
    count, labels, stats, _ = _labelled(closed)
    reds = np.bincount(labels.ravel(), weights=red.ravel().astype(np.float64), minlength=count)
    lifts = np.bincount(labels.ravel(), weights=(da * red).ravel().astype(np.float64), minlength=count)
    best, total, stamps = [0.0] * 8, 0.0, 0
    for i in range(1, count):
        x, y, w, h, area = (int(v) for v in stats[i])
        if max(w, h) < 4 or max(w, h) > 0.75 * SIDE or reds[i] < 8:
            continue
        edge = x == 0 or y == 0 or x + w == SIDE or y + h == SIDE
        fill, square = area / (w * h), 1.0 if edge else min(w, h) / max(w, h)
        density, lift = reds[i] / area, lifts[i] / reds[i]
        pad = max(3, max(w, h) // 2)
        y0, y1, x0, x1 = max(0, y - pad), min(SIDE, y + h + pad), max(0, x - pad), min(SIDE, x + w + pad)
        ring = ~cv2.dilate((labels[y0:y1, x0:x1] == i).astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
        ring_warm = float(warm[y0:y1, x0:x1][ring].mean()) if ring.any() else 0.0
        score = (area / SIDE**2 * fill * square * min(1.0, density / 0.5) * min(1.0, lift / 15.0)
                 * max(0.0, 1.0 - ring_warm / 0.3))
        total += score
        stamps += score > 3e-4
        if score > best[0]:
            ring_ink = float(ink[y0:y1, x0:x1][ring].mean()) if ring.any() else 0.0
            best = [score, area / SIDE**2, lift, ring_warm, ring_ink, fill,
                    *_paste(da[y:y + h, x:x + w], db[y:y + h, x:x + w], red[y:y + h, x:x + w].astype(bool), lift)]
    return [float(warm.mean()), *best, total, float(stamps)]


def _paste(da: np.ndarray, db: np.ndarray, red: np.ndarray, lift: float) -> list[float]:
    """Seal paste is one pigment printed with a sharp edge: the spread of its hue (degrees) and the a* step at
    its edge per unit of its lift (foliage mixes reds and oranges and fades out)."""
    hue = np.degrees(np.arctan2(db[red], da[red]))
    gradient = sobel_magnitude(da) / 8.0
    boundary = cv2.morphologyEx(red.astype(np.uint8), cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) > 0
    edge = float(percentile(gradient[boundary], 75)) / max(lift, 1.0) if boundary.any() else 0.0
    return [float(hue.std()), edge]


def _glyphs(ink: np.ndarray, side: int, merge: bool) -> list[float]:
    """Character-sized pieces of an ink mask of ``side`` px (strokes merged by a 3x3 dilation when ``merge``)
    and how many stand in columns and lines."""
    merged = cv2.dilate(ink, np.ones((3, 3), np.uint8)) if merge else ink
    _, _, stats, centres = _labelled(merged)
    stats, centres = stats[1:], centres[1:]
    longest = np.maximum(stats[:, 2], stats[:, 3])
    glyph = (longest >= side / 32) & (longest <= side / (6 if merge else 4))
    fraction = float(stats[glyph, 4].sum()) / (float(merged.sum()) + 1e-6)
    c, w, h = centres[glyph], stats[glyph, 2].astype(np.float64), stats[glyph, 3].astype(np.float64)
    if len(c) < 2:
        return [float(len(c)), fraction, 0.0, 0.0, 0.0, 0.0, 0.0]
    dx, dy = np.abs(c[:, None, 0] - c[None, :, 0]), np.abs(c[:, None, 1] - c[None, :, 1])
    wide, tall = np.maximum(w[:, None], w[None, :]), np.maximum(h[:, None], h[None, :])
    np.fill_diagonal(dx, 1e9)
    np.fill_diagonal(dy, 1e9)
    vertical = (dx < 0.5 * wide) & (dy < 2.0 * tall) & (dy > 0.5 * tall)
    horizontal = (dy < 0.5 * tall) & (dx < 2.0 * wide) & (dx > 0.5 * wide)
    above, left = c[None, :, 1] < c[:, None, 1], c[None, :, 0] < c[:, None, 0]
    in_column = ((vertical & above).any(1) & (vertical & ~above).any(1)).sum()
    in_line = ((horizontal & left).any(1) & (horizontal & ~left).any(1)).sum()
    aligned = vertical.any(1) | horizontal.any(1)
    size = np.maximum(w, h)[aligned]
    spread = float(size.std() / size.mean()) if len(size) >= 3 else 0.0
    return [float(len(c)), fraction, float(in_column), float(in_line), float(vertical.any(1).sum()),
            float(horizontal.any(1).sum()), spread]


def _lines(ink: np.ndarray, side: int, join: int, widest: float) -> list[float]:
    """Runs of an ink mask of ``side`` px closed along one axis (``join`` px), at most ``widest`` x side
    across: columns, then lines."""
    out: list[float] = []
    for vertical in (True, False):
        kernel = np.ones((join, 3) if vertical else (3, join), np.uint8)
        count, labels, stats, _ = _labelled(cv2.morphologyEx(ink, cv2.MORPH_CLOSE, kernel))
        w, h, area = (stats[1:, k].astype(np.float64) for k in (2, 3, 4))
        along, across = (h, w) if vertical else (w, h)
        run = ((along >= 3 * across) & (across >= side / 43) & (across <= widest * side) & (along >= side / 8)
               & (area / (w * h) > 0.2))
        bare = 0.0
        for k in np.where(run)[0]:
            x, y, bw, bh = (int(v) for v in stats[k + 1, :4])
            if vertical:
                x0, x1, y0, y1 = max(0, x - bw), min(side, x + 2 * bw), y, y + bh
            else:
                x0, x1, y0, y1 = x, x + bw, max(0, y - bh), min(side, y + 2 * bh)
            other = labels[y0:y1, x0:x1] != k + 1
            bare = max(bare, 1.0 - float(ink[y0:y1, x0:x1][other].mean()) if other.any() else 1.0)
        out += [float(run.sum()), float(area[run].sum()) / side**2, float(along[run].max() / side) if run.any() else 0.0,
                bare]
    return out


def _plain(t: _Tile) -> list[float]:
    out: list[float] = []
    red = cv2.resize(t.rgb[:, :, 0].astype(np.float32), (PLAIN_SIDE, PLAIN_SIDE), interpolation=cv2.INTER_AREA)
    for small in (red, t.area_resized("luma", PLAIN_SIDE, PLAIN_SIDE)):
        detail = small - cv2.GaussianBlur(small, (0, 0), 8)
        gx, gy = cv2.Sobel(small, cv2.CV_32F, 1, 0, ksize=3) / 8, cv2.Sobel(small, cv2.CV_32F, 0, 1, ksize=3) / 8
        gradient = np.sqrt(gx * gx + gy * gy)
        histogram = np.bincount(np.clip((detail + 64) / 2, 0, 63).astype(np.int64).ravel(), minlength=64) / detail.size
        histogram = histogram[histogram > 0]
        low, high = percentile(detail, [1, 99])
        out += [float(detail.std()), float(high - low), float((gradient < 1.0).mean()), float((gradient < 2.5).mean()),
                float(-(histogram * np.log2(histogram)).sum()), float((small < percentile(small, 90) - 30).mean())]
        out += _bare_cells(small)
    return out


def _bare_cells(small: np.ndarray) -> list[float]:
    """The fraction of the tile's cells whose range is below each of :data:`BARE_RANGES`: "at least ~70 % bare"
    (docs/FILTER_RULES.md) is an area, which a seal, a column of text or a few strokes in the rest do not
    change, while they dominate the whole tile's contrast."""
    cell = PLAIN_SIDE // BARE_CELLS
    blocks = small[:cell * BARE_CELLS, :cell * BARE_CELLS].reshape(BARE_CELLS, cell, BARE_CELLS, cell)
    ranges = blocks.max(axis=(1, 3)) - blocks.min(axis=(1, 3))
    return [float((ranges < level).mean()) for level in BARE_RANGES]


def _rim(t: _Tile) -> list[float]:
    gx, gy = t.get("smooth_grad")
    band = max(3, t.side // 25)
    held = []
    for grad, axis in ((gx, 0), (gy, 1)):
        profile = np.abs(grad.mean(axis=axis))
        for lo, hi in ((1, band), (len(profile) - band, len(profile) - 1)):
            k = lo + int(np.argmax(profile[lo:hi]))
            line = np.abs(grad[:, k] if axis == 0 else grad[k, :])
            held.append(min(float(profile[k]), float(percentile(line, 20))))
    planes = t.area_resized("lab", SIDE, SIDE)
    lightness = planes[0]

    def lab_median(strip: tuple[slice, ...]) -> np.ndarray:
        return np.array([median(plane[strip]) for plane in planes])

    strips = ((np.s_[:3], np.s_[5:16]), (np.s_[-3:], np.s_[-16:-5]), (np.s_[:, :3], np.s_[:, 5:16]),
              (np.s_[:, -3:], np.s_[:, -16:-5]))
    step = max(float(np.linalg.norm(lab_median(outer) - lab_median(inner))) for outer, inner in strips)
    edges = cv2.Canny(cv2.GaussianBlur(lightness, (0, 0), 1.5).clip(0, 100).astype(np.uint8) * 2, 20, 40)
    count, _, stats, _ = _labelled((edges > 0).astype(np.uint8))
    longest = float(np.max(np.maximum(stats[1:, 2], stats[1:, 3]))) / SIDE if count > 1 else 0.0
    return [max(held), step, longest]
