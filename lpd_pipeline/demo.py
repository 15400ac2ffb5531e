"""Deterministic procedural "Chinese landscape paintings" so the whole pipeline runs with no download.

Scenes are built from layered mountains (fractal ridgelines, 1/f noise textures), water, trees and moss dots,
ink outlines and texture strokes (cun), atmospheric mist, on a silk or paper ground with fibre texture and
vignetting. Coloured styles are ``blue_green`` (qinglü, opaque mineral green/azurite) and ``ochre``
(qianjiang, transparent ochre and indigo washes); ink styles are ``ink_paper`` and ``ink_silk``. Ink is
rendered as a neutral multiplicative darkening of the ground, so an ink painting stays on the paper-tint axis
even on strongly tinted aged silk (which is what a chroma-based kind classifier must cope with).

Defects are planted by small reusable helpers (``add_seal``, ``add_inscription``, ``add_watermark``,
``add_padding_bar``, ``add_blank_margin``), each returning ``(image, box)`` with ``box = (x0, y0, x1, y1)``
in pixels (exclusive end), so tests of other modules can plant them on any RGB array.

Everything is driven by ``numpy.random.Generator`` objects derived from one seed, and images are encoded
with fixed OpenCV encoder settings, so the same seed gives byte-identical files.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from lpd_pipeline.files import read_json_object, write_bytes_atomic, write_text_atomic

STYLES = ("blue_green", "ochre", "ink_paper", "ink_silk")
COLORED_STYLES = ("blue_green", "ochre")
INK_STYLES = ("ink_paper", "ink_silk")
DEFECT_KINDS = ("seal", "inscription", "watermark", "blank_margin", "padding_bar")
MARKER_NAME = ".demo_complete.json"
METADATA_NAME = "metadata.csv"
# Bump whenever the rendered output changes, so ensure_demo_paintings regenerates stale sets.
GENERATOR_VERSION = 1

_JPEG_PARAMS = [
    int(cv2.IMWRITE_JPEG_QUALITY), 92,
    int(cv2.IMWRITE_JPEG_OPTIMIZE), 0,
    int(cv2.IMWRITE_JPEG_PROGRESSIVE), 0,
]
_PNG_PARAMS = [int(cv2.IMWRITE_PNG_COMPRESSION), 1]  # fast; demo files are throwaway

Box = tuple[int, int, int, int]


# ----------------------------------------------------------------------------------------------- noise


def fractal_noise(height: int, width: int, rng: np.random.Generator, *, octaves: int = 5,
                  base_cells: int = 3, persistence: float = 0.55) -> np.ndarray:
    """Approximate 1/f noise (float32, zero mean, unit std): upsampled random grids summed over octaves.

    Octaves are summed on a grid of at most 256 px per side, then upsampled once (the finest octave has
    far fewer cells than that, so nothing is lost and large pictures stay cheap).
    """
    longest = max(height, width)
    shrink = min(1.0, 256.0 / longest)
    sh, sw = max(2, int(round(height * shrink))), max(2, int(round(width * shrink)))
    out = np.zeros((sh, sw), np.float32)
    amp = 1.0
    for octave in range(octaves):
        cells = base_cells * 2 ** octave
        gh = max(2, int(math.ceil(cells * height / longest)) + 1)
        gw = max(2, int(math.ceil(cells * width / longest)) + 1)
        grid = rng.standard_normal((gh, gw), dtype=np.float32)
        out += amp * cv2.resize(grid, (sw, sh), interpolation=cv2.INTER_CUBIC)
        amp *= persistence
    if (sh, sw) != (height, width):
        out = cv2.resize(out, (width, height), interpolation=cv2.INTER_LINEAR)
    out -= out.mean()
    std = float(out.std())
    return out / std if std > 0 else out


def fractal_line(n: int, rng: np.random.Generator, *, octaves: int = 6, base_cells: int = 4,
                 persistence: float = 0.5) -> np.ndarray:
    """1-D fractal profile of length ``n`` (zero mean, unit std), linear interpolation keeps ridges crisp."""
    out = np.zeros(n, np.float64)
    amp = 1.0
    xs = np.linspace(0.0, 1.0, n)
    for octave in range(octaves):
        k = base_cells * 2 ** octave + 1
        out += amp * np.interp(xs, np.linspace(0.0, 1.0, k), rng.standard_normal(k))
        amp *= persistence
    out -= out.mean()
    std = float(out.std())
    return out / std if std > 0 else out


# ----------------------------------------------------------------------------------------------- ground


@dataclass(frozen=True)
class _Palette:
    ground: tuple[float, float, float]  # silk / paper tint, linear-ish RGB in [0, 1]
    opaque_wash: bool  # mineral pigments are body colour (lerp); washes are transparent (multiply)
    top: tuple[float, float, float]  # pigment near ridges
    foot: tuple[float, float, float]  # pigment near the foot of a mountain
    accent: tuple[float, float, float]  # patches near the tops (azurite / indigo)
    foliage: tuple[tuple[float, float, float], ...]
    water: tuple[float, float, float] | None
    wash_strength: float
    ink_strength: float


def _palette(style: str, rng: np.random.Generator) -> _Palette:
    jitter = lambda c, s=0.03: tuple(float(np.clip(v + rng.uniform(-s, s), 0, 1)) for v in c)  # noqa: E731
    if style == "blue_green":
        return _Palette(
            ground=jitter((0.80, 0.68, 0.46)), opaque_wash=True,
            top=jitter((0.18, 0.48, 0.42)), foot=jitter((0.62, 0.50, 0.30)), accent=(0.14, 0.27, 0.52),
            foliage=((0.16, 0.42, 0.30), (0.20, 0.34, 0.52), (0.66, 0.36, 0.20)),
            water=(0.50, 0.62, 0.60), wash_strength=0.92, ink_strength=0.8,
        )
    if style == "ochre":
        return _Palette(
            ground=jitter((0.88, 0.81, 0.66)), opaque_wash=False,
            top=jitter((0.40, 0.58, 0.78)), foot=jitter((0.90, 0.52, 0.32)), accent=(0.30, 0.46, 0.72),
            foliage=((0.46, 0.62, 0.66), (0.84, 0.48, 0.32), (0.52, 0.68, 0.52)),
            water=(0.66, 0.80, 0.88), wash_strength=0.9, ink_strength=1.0,
        )
    if style == "ink_paper":
        return _Palette(ground=jitter((0.92, 0.89, 0.81), 0.02), opaque_wash=False, top=(1, 1, 1),
                        foot=(1, 1, 1), accent=(1, 1, 1), foliage=(), water=None, wash_strength=0.0, ink_strength=1.1)
    if style == "ink_silk":
        return _Palette(ground=jitter((0.74, 0.62, 0.44)), opaque_wash=False, top=(1, 1, 1),
                        foot=(1, 1, 1), accent=(1, 1, 1), foliage=(), water=None, wash_strength=0.0, ink_strength=1.0)
    raise ValueError(f"unknown demo painting style {style!r}; expected one of {STYLES}")


def render_ground(height: int, width: int, rng: np.random.Generator,
                  tint: tuple[float, float, float]) -> np.ndarray:
    """Silk/paper ground (float32 RGB in [0, 1]): blotchy ageing, woven fibre texture, mild vignetting.

    All variation is a luminance factor, so blank ground stays exactly on its tint's chroma axis.
    """
    blotch = fractal_noise(height, width, rng, octaves=4, base_cells=2)
    grain = rng.standard_normal((height, width), dtype=np.float32)
    # Woven threads: the grain smeared along rows (warp) and along columns (weft).
    warp = cv2.blur(grain, (15, 1))
    weft = cv2.blur(grain, (1, 15))
    fibre = (warp + weft) * (0.5 * math.sqrt(15.0))
    vx = (np.arange(width, dtype=np.float32) / width - 0.5) ** 2
    vy = (np.arange(height, dtype=np.float32) / height - 0.5) ** 2
    vignette = 1.0 - 0.28 * (vy[:, None] + vx[None, :])
    factor = (1.0 + 0.035 * blotch + 0.012 * fibre + 0.008 * grain) * vignette
    return factor[..., None] * np.asarray(tint, np.float32)[None, None, :]


# ----------------------------------------------------------------------------------------------- strokes


def _polylines(canvas: np.ndarray, lines: list[np.ndarray], value: float, thickness: int) -> None:
    if lines:
        cv2.polylines(canvas, [np.round(p).astype(np.int32).reshape(-1, 1, 2) for p in lines], False,
                      float(value), thickness=max(1, int(thickness)), lineType=cv2.LINE_AA)


def _apply_ink(img: np.ndarray, density: np.ndarray, strength: float = 1.0) -> None:
    """Neutral ink: multiply every channel by the same factor (keeps pixels on the ground's chroma axis)."""
    np.multiply(img, (1.0 - np.clip(density * strength, 0.0, 0.95))[..., None], out=img)


def _apply_pigment(img: np.ndarray, alpha: np.ndarray, color: np.ndarray, opaque: bool) -> None:
    a = np.clip(alpha, 0.0, 1.0)[..., None]
    if opaque:
        img += (color - img) * a
    else:
        img *= 1.0 - a * (1.0 - color)


# ----------------------------------------------------------------------------------------------- scene


def _mountain_profile(width: int, rng: np.random.Generator, n_peaks: int, height_px: float,
                      extent: tuple[float, float]) -> np.ndarray:
    """Height above the foot for every column: a max of steep rounded peaks plus fractal roughness."""
    xs = np.arange(width, dtype=np.float64)
    lo, hi = extent[0] * width, extent[1] * width
    prof = np.zeros(width)
    for _ in range(n_peaks):
        centre = rng.uniform(lo, hi)
        half = rng.uniform(0.08, 0.22) * width
        h = height_px * rng.uniform(0.45, 1.0)
        t = np.clip(1.0 - np.abs(xs - centre) / half, 0.0, 1.0)
        shape = t ** rng.uniform(0.6, 1.4) * (3 - 2 * t) ** 0.5 / math.sqrt(3)  # rounded top, steep sides
        prof = np.maximum(prof, h * shape)
    rough = fractal_line(width, rng, octaves=7, base_cells=3)
    prof = prof * (1.0 + 0.12 * rough) + (prof > 1) * 0.04 * height_px * rough
    taper = np.clip(np.minimum(xs - lo + 0.05 * width, hi + 0.05 * width - xs) / (0.05 * width), 0, 1)
    return np.maximum(prof * taper, 0.0)


def render_landscape(height: int, width: int, rng: np.random.Generator, style: str) -> np.ndarray:
    """Render one landscape painting as uint8 RGB ``(height, width, 3)`` in the given style."""
    if height < 16 or width < 16:
        raise ValueError(f"demo painting size {width}x{height} is too small (minimum 16x16)")
    pal = _palette(style, rng)
    img = render_ground(height, width, rng, pal.ground)
    paper = img.copy()
    colored = style in COLORED_STYLES
    unit = min(height, width) / 800.0  # stroke widths scale with the picture

    # Composition: 4-6 mountain layers from far (high, pale) to near (low, dark); some scenes have water.
    has_water = rng.random() < 0.5
    water_y = height * rng.uniform(0.72, 0.86) if has_water else height
    n_layers = int(rng.integers(4, 7))
    coverage = np.zeros((height, width), np.float32)
    for li in range(n_layers):
        depth = li / (n_layers - 1)  # 0 far .. 1 near
        near = li == n_layers - 1
        if near:
            foot = height * 1.02
            extent = (-0.1, rng.uniform(0.45, 0.7)) if rng.random() < 0.5 else (rng.uniform(0.3, 0.55), 1.1)
            peak_h = height * rng.uniform(0.2, 0.34)
        else:
            foot = water_y * (0.38 + 0.58 * depth) + rng.uniform(-0.03, 0.03) * height
            extent = (rng.uniform(-0.25, 0.2), rng.uniform(0.8, 1.25))
            peak_h = height * rng.uniform(0.28, 0.5) * (1.25 - 0.55 * depth)
        prof = _mountain_profile(width, rng, int(rng.integers(3, 7)), peak_h, extent)
        if prof.max() < 2:
            continue
        ridge = (foot - prof).astype(np.float32)  # y of the ridge line per column
        fade_len = 0.3
        r0 = max(0, int(ridge.min()) - 2)
        r1 = height if near else min(height, int(foot + fade_len * prof.max()) + 2)
        if r1 - r0 < 2:
            continue
        band = img[r0:r1]
        yy = np.arange(r0, r1, dtype=np.float32)[:, None]
        span = np.maximum(prof, 1.0).astype(np.float32)[None, :]
        rel = (yy - ridge[None, :]) / span  # 0 at the ridge, 1 at the foot
        inside = np.clip((yy - ridge[None, :]) / 1.5, 0, 1) * (prof[None, :] > 0.5)  # anti-aliased edge
        mist = np.ones_like(rel) if near else np.clip((1.0 + fade_len - rel) / fade_len, 0, 1)
        mask = (inside * mist).astype(np.float32)
        # Nearer layers hide what is behind them: restore the bare ground under them first.
        occlusion = (mask * (0.8 + 0.18 * depth))[..., None]
        band += (paper[r0:r1] - band) * occlusion
        atmos = 0.4 + 0.6 * depth  # far layers are paler
        tex = fractal_noise(r1 - r0, width, rng, octaves=5, base_cells=4)
        if colored:
            t = np.clip(rel, 0, 1)[..., None] ** 0.9
            color = np.asarray(pal.top, np.float32) * (1 - t) + np.asarray(pal.foot, np.float32) * t
            # Pigment fades less with distance than ink does: distant peaks stay visibly green/blue.
            alpha = mask * pal.wash_strength * (0.6 + 0.4 * depth) * np.clip(0.85 + 0.25 * tex, 0.4, 1.0)
            _apply_pigment(band, alpha, color, pal.opaque_wash)
            # Accent patches near the tops (azurite in blue-green, indigo in light-colour paintings).
            accent = mask * np.clip((tex - 0.6) * 1.5, 0, 0.8) * (rel < 0.6) * atmos
            _apply_pigment(band, accent, np.asarray(pal.accent, np.float32), pal.opaque_wash)
        # Ink wash: darker near the ridge, mottled by 1/f noise.
        wash = mask * atmos * np.clip(0.12 + 0.28 * (1 - rel) + 0.12 * tex, 0, 0.6)
        if colored:
            wash *= 0.35 if pal.opaque_wash else 0.6
        strokes = _mountain_strokes(r1 - r0, width, r0, rng, ridge, prof, depth, unit)
        strokes *= mist * atmos
        _apply_ink(band, wash + strokes, pal.ink_strength)
        coverage[r0:r1] = np.maximum(coverage[r0:r1], mask)
        if depth > 0.5:
            _draw_trees(img, rng, ridge, prof, pal, unit, count=int(rng.integers(2, 7) * (1 + near)))

    if has_water:
        _draw_water(img, rng, water_y, coverage, pal, unit)
    return (np.clip(img, 0, 1) * 255.0 + 0.5).astype(np.uint8)


def _runs(xs: np.ndarray) -> list[np.ndarray]:
    """Split sorted column indices into runs of consecutive columns (a stroke must not jump a gap)."""
    if len(xs) == 0:
        return []
    return np.split(xs, np.nonzero(np.diff(xs) > 1)[0] + 1)


def _mountain_strokes(band_h: int, width: int, r0: int, rng: np.random.Generator, ridge: np.ndarray,
                      prof: np.ndarray, depth: float, unit: float) -> np.ndarray:
    """Ink density of one mountain's outline, fold lines, texture strokes (cun) and moss dots."""
    canvas = np.zeros((band_h, width), np.float32)
    th = lambda v: max(1, int(round(v * unit)))  # noqa: E731
    shift = np.array([0.0, -r0])
    # Hemp-fibre texture strokes run down the slope from the ridge.
    slope = np.gradient(cv2.GaussianBlur(ridge[None, :].astype(np.float32), (0, 0), sigmaX=6.0)[0])
    n_strokes = int(np.sum(prof) / (150.0 * unit ** 2 + 1e-6) * (0.5 + depth))
    cols = rng.integers(0, width, n_strokes)
    cols = cols[prof[cols] > 4]
    if len(cols):
        y0 = ridge[cols] + rng.uniform(0.0, 0.75, len(cols)) * prof[cols]
        dx = np.clip(slope[cols], -2.0, 2.0) * 0.5
        norm = np.hypot(dx, 1.0)
        length = rng.uniform(8, 34, len(cols)) * unit * (0.6 + 0.6 * depth)
        bend = rng.uniform(-0.3, 0.3, len(cols)) * length * 0.3
        ex, ey = dx / norm * length, 1.0 / norm * length
        pts = np.stack([np.stack([cols, y0], 1), np.stack([cols + ex * 0.5 + bend, y0 + ey * 0.5], 1),
                        np.stack([cols + ex, y0 + ey], 1)], axis=1) + shift
        _polylines(canvas, list(pts), 0.5, th(1.2))
    # Inner fold lines: lowered copies of parts of the ridge.
    folds = []
    for _ in range(int(rng.integers(3, 8))):
        a = int(rng.integers(0, max(1, width - 8)))
        xs = np.arange(a, min(width, a + int(rng.uniform(0.05, 0.25) * width)))
        ys = ridge[xs] + rng.uniform(0.1, 0.5) * prof[xs]
        for run in _runs(xs[prof[xs] > 10]):
            if len(run) >= 4:
                folds.append(np.stack([run, ys[run - a]], axis=1) + shift)
    _polylines(canvas, folds, 0.55, th(1.5))
    # Ridge outline in chunks of varying thickness (a brush, not a pen).
    xs_ridge = np.nonzero(prof > 1)[0]
    if len(xs_ridge) > 2:
        chunk = max(6, int(30 * unit))
        for start in range(int(xs_ridge[0]), int(xs_ridge[-1]), chunk):
            seg = np.arange(start, min(start + chunk + 1, int(xs_ridge[-1]) + 1))
            value, width_px = rng.uniform(0.5, 0.9), th(rng.uniform(1.0, 3.2) * (0.6 + 0.6 * depth))
            runs = [np.stack([r, ridge[r]], axis=1) + shift for r in _runs(seg[prof[seg] > 1]) if len(r) > 1]
            _polylines(canvas, runs, value, width_px)
        # Moss dots along the ridge.
        n_dots = min(len(xs_ridge), int(len(xs_ridge) / max(4.0, 12 * unit) * rng.uniform(0.3, 1.0)))
        for x in rng.choice(xs_ridge, size=n_dots, replace=False):
            cv2.ellipse(canvas, (int(x), int(ridge[x] - r0 + rng.uniform(0, 6) * unit)),
                        (th(rng.uniform(1.5, 3.5)), th(rng.uniform(1.0, 2.0))), float(rng.uniform(0, 180)),
                        0, 360, 0.8, -1, cv2.LINE_AA)
    return cv2.GaussianBlur(canvas, (0, 0), sigmaX=0.6)


def _draw_trees(img: np.ndarray, rng: np.random.Generator, ridge: np.ndarray, prof: np.ndarray,
                pal: _Palette, unit: float, count: int) -> None:
    """Trees standing on a ridge: pines (stacked needle strokes) or leafy trees (clusters of dots)."""
    height, width = img.shape[:2]
    candidates = np.nonzero((prof > 6) & (ridge > 0.1 * height))[0]
    if len(candidates) == 0 or count <= 0:
        return
    xs = rng.choice(candidates, size=min(count, len(candidates)), replace=False)
    tree_hs = rng.uniform(30, 80, len(xs)) * unit
    # Work only inside the trees' bounding box.
    pad = 4 + int(0.5 * tree_hs.max())
    x0, x1 = max(0, int(xs.min()) - pad), min(width, int(xs.max()) + pad)
    y0 = max(0, int((ridge[xs] - tree_hs).min()) - pad)
    y1 = min(height, int(ridge[xs].max() + 8 * unit) + pad)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return
    box = img[y0:y1, x0:x1]
    shift = np.array([-x0, -y0], np.float64)
    ink_canvas = np.zeros(box.shape[:2], np.float32)
    foliage = [np.zeros(box.shape[:2], np.float32) for _ in pal.foliage]
    for x, tree_h in zip(xs, tree_hs):
        base = np.array([float(x), float(ridge[x]) + 3 * unit])
        lean = rng.uniform(-0.25, 0.25)
        top = base + np.array([lean * tree_h, -tree_h])
        mid = (base + top) / 2 + np.array([rng.uniform(-4, 4) * unit, 0])
        _polylines(ink_canvas, [np.stack([base, mid, top]) + shift], 0.85,
                   max(1, int(round(rng.uniform(1.5, 3.5) * unit))))
        if rng.random() < 0.4:  # pine: stacked needle strokes
            needles = []
            for k in range(int(rng.integers(4, 8))):
                y = top[1] + k * tree_h * 0.09
                cx = top[0] - lean * k * tree_h * 0.09
                half = (8 + 3 * k) * unit * rng.uniform(0.7, 1.2)
                needles.append(np.array([[cx - half, y + 2 * unit], [cx, y - 1.5 * unit],
                                         [cx + half, y + 2 * unit]]) + shift)
            _polylines(ink_canvas, needles, 0.8, max(1, int(round(2 * unit))))
            continue
        # Leafy: a cluster of dots (dian), coloured in the coloured styles.
        target = foliage[int(rng.integers(len(foliage)))] if foliage else ink_canvas
        n = int(rng.integers(25, 60))
        r = rng.uniform(0, 1, n) ** 0.5 * tree_h * 0.35
        ang = rng.uniform(0, 2 * math.pi, n)
        cxs = top[0] + r * np.cos(ang) - x0
        cys = top[1] + tree_h * 0.1 + 0.7 * r * np.sin(ang) - y0
        axes = rng.uniform([1.5, 1.0], [4.0, 2.5], (n, 2)) * unit
        for cx, cy, (ax, ay), rot in zip(cxs, cys, axes, rng.uniform(0, 180, n)):
            cv2.ellipse(target, (int(cx), int(cy)), (max(1, int(ax)), max(1, int(ay))), float(rot), 0, 360,
                        0.75 if target is ink_canvas else 1.0, -1, cv2.LINE_AA)
    for colour, blob in zip(pal.foliage, foliage):
        _apply_pigment(box, np.minimum(blob, 1.0) * 0.85, np.asarray(colour, np.float32), pal.opaque_wash)
        ink_canvas += np.minimum(blob, 1.0) * 0.3
    _apply_ink(box, ink_canvas, pal.ink_strength)


def _draw_water(img: np.ndarray, rng: np.random.Generator, water_y: float, coverage: np.ndarray,
                pal: _Palette, unit: float) -> None:
    """Ripple strokes (and maybe a fishing boat) on the water below ``water_y``, behind nothing."""
    height, width = img.shape[:2]
    r0 = int(water_y)
    if height - r0 < 2:
        return
    band = img[r0:]
    ripples = np.zeros(band.shape[:2], np.float32)
    n = int((height - water_y) * width / (900 * unit ** 2 + 1e-6))
    ys = rng.uniform(0, height - water_y, n)
    xs = rng.uniform(0, width, n)
    lengths = rng.uniform(10, 40, n) * unit
    phases = rng.uniform(2, 6, n)
    t = np.linspace(0, 1, 6)
    lines = [np.stack([x + l * t, y + 1.2 * unit * np.sin(t * p)], axis=1)
             for x, y, l, p in zip(xs, ys, lengths, phases)]
    _polylines(ripples, lines, 0.35, max(1, int(round(unit))))
    if rng.random() < 0.6:  # a fishing boat
        bx = rng.uniform(0.2, 0.8) * width
        by = rng.uniform(0.2, 0.9) * (height - water_y)
        s = rng.uniform(14, 26) * unit
        hull = np.array([[bx - s, by - 0.2 * s], [bx - 0.6 * s, by + 0.15 * s], [bx + 0.6 * s, by + 0.15 * s],
                         [bx + s, by - 0.2 * s]])
        _polylines(ripples, [hull, np.array([[bx, by - 0.1 * s], [bx - 0.1 * s, by - 0.9 * s]])], 0.9,
                   max(1, int(round(2 * unit))))
    free = 1.0 - coverage[r0:]
    below = np.clip(np.arange(height - r0, dtype=np.float32)[:, None] / (0.04 * height), 0, 1)
    if pal.water is not None:
        _apply_pigment(band, below * free * 0.35, np.asarray(pal.water, np.float32), False)
    _apply_ink(band, ripples * free * below, pal.ink_strength)


# ----------------------------------------------------------------------------------------------- defects


def _as_rgb_float(rgb: np.ndarray) -> np.ndarray:
    if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected a uint8 RGB array of shape (H, W, 3), got {getattr(rgb, 'shape', None)} "
                         f"{getattr(rgb, 'dtype', type(rgb))}")
    return rgb.astype(np.float32) / 255.0


def _to_uint8(img: np.ndarray) -> np.ndarray:
    return (np.clip(img, 0, 1) * 255.0 + 0.5).astype(np.uint8)


def estimate_ground_tint(rgb: np.ndarray) -> np.ndarray:
    """The silk/paper tint (float32 RGB in [0, 1]): median colour of the brightest quarter of pixels."""
    flat = rgb.reshape(-1, 3).astype(np.float32)
    luma = flat @ np.array([0.299, 0.587, 0.114], np.float32)
    bright = flat[luma >= np.quantile(luma, 0.75)]
    return np.median(bright, axis=0) / 255.0


def _pseudo_glyph(canvas: np.ndarray, x0: float, y0: float, size: float, rng: np.random.Generator,
                  value: float, thickness: int, seal_style: bool = False) -> None:
    """A calligraphy-like character in a ``size`` cell: a few horizontals, verticals, sweeps and dots."""
    strokes = []
    n = int(rng.integers(4, 9))
    for _ in range(n):
        kind = rng.choice(["h", "v", "sweep_l", "sweep_r", "dot"] if not seal_style else ["h", "v", "v", "h", "box"])
        a, b = rng.uniform(0.1, 0.9, 2)
        if kind == "h":
            l, r = sorted(rng.uniform(0.05, 0.95, 2))
            strokes.append([[l, b], [r, b - (0 if seal_style else rng.uniform(0, 0.06))]])
        elif kind == "v":
            t, btm = sorted(rng.uniform(0.05, 0.95, 2))
            strokes.append([[a, t], [a, btm]])
        elif kind == "sweep_l":
            strokes.append([[a, b - 0.3], [a - 0.15, b], [a - 0.35, b + 0.25]])
        elif kind == "sweep_r":
            strokes.append([[a, b - 0.25], [a + 0.2, b + 0.05], [a + 0.4, b + 0.2]])
        elif kind == "box":
            strokes.append([[a - 0.2, b - 0.15], [a + 0.2, b - 0.15], [a + 0.2, b + 0.15], [a - 0.2, b + 0.15],
                            [a - 0.2, b - 0.15]])
        else:
            cv2.circle(canvas, (int(x0 + a * size), int(y0 + b * size)), max(1, thickness), float(value), -1,
                       cv2.LINE_AA)
    lines = [np.clip(np.asarray(s, np.float64), 0.02, 0.98) * size + [x0, y0] for s in strokes]
    _polylines(canvas, lines, value, thickness)


def add_seal(rgb: np.ndarray, rng: np.random.Generator, *, size: int | None = None,
             position: tuple[int, int] | None = None,
             color: tuple[int, int, int] = (200, 40, 30)) -> tuple[np.ndarray, Box]:
    """Stamp a vermilion seal (square with carved seal-script-like characters); returns ``(image, box)``.

    ``position`` is the top-left corner (default: near a lower corner); ``size`` is the side in pixels.
    Randomly a baiwen (white characters cut out of red) or zhuwen (red characters and border) seal.
    """
    img = _as_rgb_float(rgb)
    h, w = img.shape[:2]
    side = int(size if size is not None else max(12, round(min(h, w) * rng.uniform(0.07, 0.11))))
    side = min(side, h, w)
    if position is None:
        margin = int(0.04 * min(h, w))
        x = int(rng.choice([margin, w - side - margin])) if w - side - margin > margin else 0
        y = int(rng.integers(max(0, int(h * 0.55)), max(int(h * 0.55) + 1, h - side - margin)))
    else:
        x, y = int(position[0]), int(position[1])
    x, y = max(0, min(x, w - side)), max(0, min(y, h - side))
    glyphs = np.zeros((side, side), np.float32)
    half = side / 2.0
    pad = side * 0.1
    stroke = max(1, int(round(side / 22)))
    for gx in range(2):
        for gy in range(2):
            _pseudo_glyph(glyphs, pad * 0.6 + gx * (half - pad * 0.2), pad * 0.6 + gy * (half - pad * 0.2),
                          half - pad * 0.4, rng, 1.0, stroke, seal_style=True)
    glyphs = np.clip(glyphs, 0, 1)
    baiwen = rng.random() < 0.5
    if baiwen:
        red = 1.0 - glyphs
    else:
        red = glyphs.copy()
        b = max(1, int(round(side / 14)))
        red[:b, :] = red[-b:, :] = 1.0
        red[:, :b] = red[:, -b:] = 1.0
    # Uneven stamping: paste thins out in patches and specks.
    wear = np.clip(0.92 + 0.12 * fractal_noise(side, side, rng, octaves=3, base_cells=2), 0.55, 1.0)
    wear *= rng.random((side, side)) > 0.04
    alpha = (red * wear * 0.92)[..., None]
    patch = img[y:y + side, x:x + side]
    # Cinnabar paste is opaque but lets the ground's darkness through a little.
    col = np.asarray(color, np.float32) / 255.0
    img[y:y + side, x:x + side] = patch * (1 - alpha) + (col * (0.75 + 0.25 * patch)) * alpha
    return _to_uint8(img), (x, y, x + side, y + side)


def add_inscription(rgb: np.ndarray, rng: np.random.Generator, *, box: Box | None = None,
                    char_size: int | None = None, density: float = 0.9) -> tuple[np.ndarray, Box]:
    """Write a block of dense calligraphy-like characters in vertical columns (right to left).

    ``box`` is the area to fill (default: an upper corner, about 30% x 50% of the picture).
    Returns ``(image, box)`` where ``box`` bounds the written block.
    """
    img = _as_rgb_float(rgb)
    h, w = img.shape[:2]
    if box is None:
        bw, bh = int(w * rng.uniform(0.25, 0.38)), int(h * rng.uniform(0.4, 0.6))
        bx = int(w * 0.05) if rng.random() < 0.5 else w - bw - int(w * 0.05)
        box = (bx, int(h * 0.05), bx + bw, int(h * 0.05) + bh)
    x0, y0, x1, y1 = (int(v) for v in box)
    if not (0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h):
        raise ValueError(f"inscription box {box} does not fit an image of {w}x{h}")
    cell = int(char_size if char_size is not None else max(6, round(min(h, w) * rng.uniform(0.035, 0.05))))
    canvas = np.zeros((h, w), np.float32)
    col_pitch = cell * 1.3
    n_cols = max(1, int((x1 - x0) // col_pitch))
    n_rows = max(1, int((y1 - y0) // (cell * 1.1)))
    stroke = max(1, int(round(cell / 9)))
    bottom = y0
    for c in range(n_cols):
        cx = x1 - (c + 1) * col_pitch + (col_pitch - cell) / 2
        rows = n_rows if c < n_cols - 1 else int(rng.integers(max(1, n_rows // 3), n_rows + 1))
        for r in range(rows):
            if rng.random() > density:
                continue
            cy = y0 + r * cell * 1.1
            _pseudo_glyph(canvas, cx, cy, cell, rng, rng.uniform(0.75, 0.95), stroke)
            bottom = max(bottom, int(cy + cell))
    canvas = cv2.GaussianBlur(canvas, (0, 0), sigmaX=0.5)
    _apply_ink(img, canvas, 1.0)
    written_x0 = int(max(0, x1 - n_cols * col_pitch))
    return _to_uint8(img), (written_x0, y0, x1, min(h, bottom))


def add_watermark(rgb: np.ndarray, rng: np.random.Generator, *, text: str | None = None,
                  alpha: float = 0.3, color: tuple[int, int, int] = (255, 255, 255),
                  angle: float | None = None) -> tuple[np.ndarray, Box]:
    """Overlay a repeated, rotated, semi-transparent site-logo text (with a faint dark shadow).

    Returns ``(image, box)``; the box is the whole image because the pattern tiles it.
    """
    img = _as_rgb_float(rgb)
    h, w = img.shape[:2]
    text = text or str(rng.choice(["paintings-stock.example", "(c) artprints.example", "IMAGESITE.example"]))
    angle = float(angle if angle is not None else rng.uniform(-35, -15))
    diag = int(math.hypot(h, w)) + 4
    layer = np.zeros((diag, diag), np.uint8)  # putText draws on 8-bit images only
    shadow = np.zeros((diag, diag), np.uint8)
    font_scale = max(0.3, min(h, w) / 420.0)
    thick = max(1, int(round(font_scale * 2)))
    (tw, tht), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, thick)
    off = max(1, thick)
    for row, y in enumerate(range(tht + 4, diag, int(tht * 4.5))):
        for x in range(-(row % 2) * tw // 2, diag, int(tw * 1.4)):
            cv2.putText(layer, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, font_scale, 255, thick, cv2.LINE_AA)
            cv2.putText(shadow, text, (x + off, y + off), cv2.FONT_HERSHEY_SIMPLEX, font_scale, 255, thick,
                        cv2.LINE_AA)
    rot = cv2.getRotationMatrix2D((diag / 2, diag / 2), angle, 1.0)
    rot[:, 2] -= [(diag - w) / 2, (diag - h) / 2]
    layer = cv2.warpAffine(layer.astype(np.float32) / 255.0, rot, (w, h), flags=cv2.INTER_LINEAR)
    shadow = cv2.warpAffine(shadow.astype(np.float32) / 255.0, rot, (w, h), flags=cv2.INTER_LINEAR)
    img *= 1.0 - (shadow * alpha * 0.6)[..., None]
    a = (layer * alpha)[..., None]
    img = img * (1 - a) + (np.asarray(color, np.float32) / 255.0) * a
    return _to_uint8(img), (0, 0, w, h)


def _edge_band(h: int, w: int, side: str, size: int) -> Box:
    if side == "top":
        return (0, 0, w, size)
    if side == "bottom":
        return (0, h - size, w, h)
    if side == "left":
        return (0, 0, size, h)
    if side == "right":
        return (w - size, 0, w, h)
    raise ValueError(f"side must be top|bottom|left|right, got {side!r}")


def add_padding_bar(rgb: np.ndarray, rng: np.random.Generator, *, side: str | None = None,
                    fraction: float | None = None, value: int | None = None) -> tuple[np.ndarray, Box]:
    """Overwrite a band along one edge with one flat grey value (scanner/letterbox padding).

    Returns ``(image, box)``; every pixel in the box equals ``(value, value, value)`` exactly.
    """
    _as_rgb_float(rgb)  # validation only
    h, w = rgb.shape[:2]
    side = side or str(rng.choice(["top", "bottom", "left", "right"]))
    fraction = float(fraction if fraction is not None else rng.uniform(0.12, 0.2))
    extent = h if side in ("top", "bottom") else w
    size = max(1, min(extent, int(round(extent * fraction))))
    value = int(value if value is not None else rng.integers(96, 200))
    x0, y0, x1, y1 = _edge_band(h, w, side, size)
    out = rgb.copy()
    out[y0:y1, x0:x1] = value
    return out, (x0, y0, x1, y1)


def add_blank_margin(rgb: np.ndarray, rng: np.random.Generator, *, side: str | None = None,
                     fraction: float | None = None,
                     tint: tuple[float, float, float] | None = None) -> tuple[np.ndarray, Box]:
    """Replace a large band along one edge with bare textured ground, fading softly into the painting.

    ``tint`` (RGB in [0, 1]) defaults to the image's own ground tint. Returns ``(image, box)`` for the
    fully blank part (the soft transition lies just inside the box's inner edge, outside it).
    """
    img = _as_rgb_float(rgb)
    h, w = img.shape[:2]
    side = side or str(rng.choice(["top", "bottom", "left", "right"]))
    fraction = float(fraction if fraction is not None else rng.uniform(0.3, 0.45))
    extent = h if side in ("top", "bottom") else w
    size = max(1, min(extent, int(round(extent * fraction))))
    tint_rgb = tuple(float(v) for v in (tint if tint is not None else estimate_ground_tint(rgb)))
    ground = render_ground(h, w, rng, tint_rgb)
    # Ground renders with vignetting centred on the picture; lift it to the tint's level where it is used.
    ground *= np.asarray(tint_rgb, np.float32) / np.maximum(np.median(ground.reshape(-1, 3), axis=0), 1e-6)
    fade = max(1, int(0.05 * extent))
    pos = np.arange(extent, dtype=np.float32)
    dist = pos if side in ("top", "left") else (extent - 1 - pos)  # distance from the edge
    weight = np.clip((size + fade - dist) / fade, 0.0, 1.0)
    weight = weight[:, None] if side in ("top", "bottom") else weight[None, :]
    img = img * (1 - weight[..., None]) + ground * weight[..., None]
    return _to_uint8(img), _edge_band(h, w, side, size)


# ----------------------------------------------------------------------------------------------- the set

_PLANTERS = {
    "seal": add_seal,
    "inscription": add_inscription,
    "watermark": add_watermark,
    "blank_margin": add_blank_margin,
    "padding_bar": add_padding_bar,
}


def _encode(rgb_or_gray: np.ndarray, suffix: str) -> bytes:
    arr = rgb_or_gray if rgb_or_gray.ndim == 2 else cv2.cvtColor(rgb_or_gray, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(suffix, arr, _JPEG_PARAMS if suffix == ".jpg" else _PNG_PARAMS)
    if not ok:
        raise RuntimeError(f"OpenCV could not encode a {suffix} image")
    return buf.tobytes()


def _decode(data: bytes) -> np.ndarray:
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _pick_size(rng: np.random.Generator, scale: float) -> tuple[int, int]:
    shape = rng.choice(["portrait", "landscape", "square"], p=[0.45, 0.35, 0.2])
    if shape == "portrait":
        h, w = rng.integers(860, 1025), rng.integers(560, 721)
    elif shape == "landscape":
        h, w = rng.integers(600, 721), rng.integers(860, 1025)
    else:
        h = rng.integers(680, 861)
        w = h + rng.integers(-40, 41)
    return max(32, int(round(h * scale))), max(32, int(round(w * scale)))


_MEDIUM = {
    "blue_green": "ink and mineral color on silk",
    "ochre": "ink and light color on paper",
    "ink_paper": "ink on paper",
    "ink_silk": "ink on silk",
}
_PLACES = ["Autumn Mountains", "Streams and Pines", "Misty River", "Spring Dawn", "Layered Peaks",
           "Fishing Village", "Cloudy Ridges", "Quiet Valley", "Snowless Winter", "Distant Shores"]


def generate_demo_paintings(out_dir: str | os.PathLike, *, seed: int = 0, n_colored: int = 14, n_ink: int = 6,
                            scale: float = 1.0, with_defects: bool = True) -> pd.DataFrame:
    """Write the demo set into ``out_dir`` and return its ground-truth table.

    Files: ``n_colored`` coloured and ``n_ink`` ink paintings, then (``with_defects``) one painting per
    planted defect (seal, inscription, watermark, blank_margin, padding_bar) and near-duplicates of
    coloured paintings (a resized JPEG recompression, a slightly cropped copy, a grayscale copy), plus
    ``metadata.csv`` (file, title, artist, date, medium, license, kind; kind only for some files) and a
    completion marker written last. Returns columns: file, kind, style, defect, width, height,
    defect_box, with defect ``""`` or e.g. ``"seal"``, ``"near_duplicate_of:painting_03.png|grayscale"``
    and defect_box the planted defect's ``(x0, y0, x1, y1)`` (None for clean paintings and duplicates).
    The grayscale copy's true kind is ``"ink"`` (it has no colour left).

    Steps: plan the base paintings (:func:`_plan`), render them (:func:`_render_planned`), derive the
    near-duplicates (:func:`_near_duplicates`), describe every file (:func:`_metadata_rows`), write the set
    (:func:`_write_set`). Each painting draws from its own random stream (:func:`_stream`).
    """
    if n_colored < 0 or n_ink < 0:
        raise ValueError(f"n_colored and n_ink must be >= 0, got {n_colored} and {n_ink}")
    if not (0.05 <= scale <= 4.0):
        raise ValueError(f"scale must be within [0.05, 4], got {scale}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    marker = out / MARKER_NAME
    previous_files = read_json_object(marker).get("files", [])
    if marker.exists():
        marker.unlink()  # the set is incomplete until the marker is rewritten at the end
    rows, images = _render_planned(_plan(n_colored, n_ink, with_defects), seed, scale)
    if with_defects:
        _near_duplicates(rows, images, _stream(seed, 2))
    _write_set(out, images, _metadata_rows(rows), previous_files,
               _marker_payload(seed, n_colored, n_ink, scale, with_defects, list(images)))
    return pd.DataFrame(rows, columns=["file", "kind", "style", "defect", "width", "height", "defect_box"])


def _stream(seed: int, *key: int) -> np.random.Generator:
    """One independent random stream per painting, so a painting does not change when the counts change."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), GENERATOR_VERSION, *key]))


def _plan(n_colored: int, n_ink: int, with_defects: bool) -> list[dict]:
    """(kind, style, defect) of each base painting, in file order: coloured, ink, then one per defect."""
    plan = [{"kind": "colored", "style": COLORED_STYLES[i % 2], "defect": ""} for i in range(n_colored)]
    plan += [{"kind": "ink", "style": INK_STYLES[i % 2], "defect": ""} for i in range(n_ink)]
    if with_defects:
        defect_styles = ["blue_green", "ink_paper", "ochre", "ink_silk", "blue_green"]
        plan += [{"kind": "colored" if style in COLORED_STYLES else "ink", "style": style, "defect": defect}
                 for defect, style in zip(DEFECT_KINDS, defect_styles)]
    return plan


def _render_planned(plan: list[dict], seed: int, scale: float) -> tuple[list[dict], dict[str, bytes]]:
    """Render (and plant the defect of) every planned painting: its table rows and encoded files by name."""
    rows: list[dict] = []
    images: dict[str, bytes] = {}
    for index, item in enumerate(plan):
        rng = _stream(seed, 0 if item["kind"] == "colored" and not item["defect"] else 1, index)
        height, width = _pick_size(rng, scale)
        rgb = render_landscape(height, width, rng, item["style"])
        defect = item["defect"]
        box = None
        if defect:
            rgb, box = _PLANTERS[defect](rgb, rng)
        # PNG keeps flat padding exactly flat; otherwise alternate formats like a real mixed collection.
        suffix = ".png" if defect == "padding_bar" or index % 3 == 1 else ".jpg"
        name = f"painting_{index:02d}{suffix}"
        images[name] = _encode(rgb, suffix)
        rows.append({"file": name, "kind": item["kind"], "style": item["style"], "defect": defect,
                     "width": width, "height": height, "defect_box": box})
    return rows, images


def _near_duplicates(rows: list[dict], images: dict[str, bytes], rng: np.random.Generator) -> None:
    """Append three near-duplicates of the first clean coloured paintings (in place): a resized JPEG
    recompression, a slightly cropped copy and a grayscale copy (true kind ink)."""
    colored_files = [r["file"] for r in rows if r["kind"] == "colored" and not r["defect"]]
    if not colored_files:
        return
    sources = [colored_files[k % len(colored_files)] for k in (0, 1, 2)]
    copies = [(_resized_jpeg_copy, "colored", "resized_jpeg_copy", ".jpg", ""),
              (_cropped_copy, "colored", "cropped_copy", ".png", ""),
              (_grayscale_copy, "ink", "grayscale_copy", ".jpg", "|grayscale")]
    for source, (make, copy_kind, style, suffix, note) in zip(sources, copies):
        data, (width, height) = make(_decode(images[source]), rng)
        name = f"painting_{len(rows):02d}{suffix}"
        images[name] = data
        rows.append({"file": name, "kind": copy_kind, "style": style,
                     "defect": f"near_duplicate_of:{source}{note}", "width": width, "height": height,
                     "defect_box": None})


def _resized_jpeg_copy(src: np.ndarray, rng: np.random.Generator) -> tuple[bytes, tuple[int, int]]:
    """Resized to 60-80 % and recompressed as JPEG quality 70."""
    f = rng.uniform(0.6, 0.8)
    small = cv2.resize(src, (max(16, int(src.shape[1] * f)), max(16, int(src.shape[0] * f))),
                       interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(small, cv2.COLOR_RGB2BGR),
                           [int(cv2.IMWRITE_JPEG_QUALITY), 70, int(cv2.IMWRITE_JPEG_OPTIMIZE), 0])
    if not ok:
        raise RuntimeError("OpenCV could not encode a .jpg image")
    return buf.tobytes(), (small.shape[1], small.shape[0])


def _cropped_copy(src: np.ndarray, rng: np.random.Generator) -> tuple[bytes, tuple[int, int]]:
    """3-6 % cut off each side, as PNG."""
    hh, ww = src.shape[:2]
    t, b, l, r = (int(rng.uniform(0.03, 0.06) * v) for v in (hh, hh, ww, ww))
    crop = np.ascontiguousarray(src[t:hh - b, l:ww - r])
    return _encode(crop, ".png"), (crop.shape[1], crop.shape[0])


def _grayscale_copy(src: np.ndarray, rng: np.random.Generator) -> tuple[bytes, tuple[int, int]]:
    """A single-channel JPEG (draws nothing from ``rng``)."""
    gray = cv2.cvtColor(src, cv2.COLOR_RGB2GRAY)
    return _encode(gray, ".jpg"), (gray.shape[1], gray.shape[0])


def _metadata_rows(rows: list[dict]) -> list[dict]:
    """metadata.csv's rows: a title, a date and a medium per file; only every third file declares its kind
    (the rest exercise the image rule)."""
    meta_rows = []
    for i, row in enumerate(rows):
        medium = _MEDIUM.get(row["style"], "ink and color on silk" if row["kind"] == "colored" else "ink on paper")
        meta_rows.append({
            "file": row["file"],
            "title": f"{_PLACES[i % len(_PLACES)]} (demo {i:02d})",
            "artist": "lpd-pipeline procedural demo",
            "date": f"{1400 + 37 * i % 500}",
            "medium": medium,
            "license": "CC0-1.0",
            "kind": row["kind"] if i % 3 == 0 else "",
        })
    return meta_rows


def _write_set(out: Path, images: dict[str, bytes], meta_rows: list[dict], previous_files: list,
               marker_payload: dict) -> None:
    """Files (atomically), metadata.csv, removal of an earlier larger set's extra files, then the marker."""
    for name, data in images.items():
        write_bytes_atomic(out / name, data)
    write_text_atomic(out / METADATA_NAME, pd.DataFrame(meta_rows).to_csv(index=False, lineterminator="\n"))
    for stale in set(previous_files) - set(images):  # files of an earlier, larger set
        if "/" not in stale and (out / stale).is_file():
            (out / stale).unlink()
    write_text_atomic(out / MARKER_NAME, json.dumps(marker_payload, sort_keys=True))


def _marker_payload(seed: int, n_colored: int, n_ink: int, scale: float, with_defects: bool,
                    files: list[str]) -> dict:
    return {"seed": int(seed), "n_colored": int(n_colored), "n_ink": int(n_ink), "scale": float(scale),
            "with_defects": bool(with_defects), "version": GENERATOR_VERSION, "files": sorted(files)}


def ensure_demo_paintings(out_dir: str | os.PathLike, seed: int = 0, *, n_colored: int = 14, n_ink: int = 6,
                          scale: float = 1.0, with_defects: bool = True) -> Path:
    """Generate the demo set into ``out_dir`` unless a complete set with the same parameters is there."""
    out = Path(out_dir)
    marker = out / MARKER_NAME
    payload = read_json_object(marker)
    files = payload.get("files")
    if isinstance(files, list):
        expected = _marker_payload(seed, n_colored, n_ink, scale, with_defects, files)
        if payload == expected and (out / METADATA_NAME).is_file() and all((out / f).is_file() for f in files):
            return out
    generate_demo_paintings(out, seed=seed, n_colored=n_colored, n_ink=n_ink, scale=scale,
                            with_defects=with_defects)
    return out
