"""Seam measure: does the colour jump where tile borders fall?

The rule: the chroma step between neighbouring columns (the a*b* difference averaged over each tile-high block
of rows, its Euclidean length averaged over the blocks) is folded by the tile period: phase ``(x + 1 - offset) mod period`` for the step between columns x and x + 1, so
phase 0 is the step across a tile border. A stitched (naive) rendering shows a spike at phase 0; a blended one
does not. ``spike`` = step at phase 0 / median step of the other phases (1 = no seam). Rows likewise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from lpd_pipeline.models.colorspace import rgb_to_lab


def chroma_of(rgb: np.ndarray) -> np.ndarray:
    """a*b* ``[2, H, W]`` (float32) of a uint8 RGB image."""
    lab = rgb_to_lab(torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float() / 255.0)
    return lab[1:].numpy()


def folded_steps(ab: np.ndarray, axis: int, period: int, offset: int = 0) -> np.ndarray:
    """Mean chroma step per phase (``period`` values) along ``axis`` (2: between columns, 1: between rows).

    The signed a*b* difference is first averaged over blocks of ``period`` lines across the other axis (aligned
    with the tile grid), so pixel noise cancels while a colour offset between two tiles stays; its magnitude
    is then averaged over the blocks.
    """
    steps = np.diff(ab.astype(np.float64), axis=axis)  # [2, H, W-1] or [2, H-1, W]
    if axis == 1:
        steps = steps.transpose(0, 2, 1)  # always [2, lines across, steps along]
    lines = steps.shape[1]
    starts = sorted({0, *range(offset % period, lines, period)})
    blocks = np.add.reduceat(steps, starts, axis=1) / np.diff([*starts, lines])[None, :, None]
    profile = np.sqrt((blocks ** 2).sum(axis=0)).mean(axis=0)
    phase = (np.arange(profile.size) + 1 - offset) % period
    sums = np.bincount(phase, weights=profile, minlength=period)
    counts = np.bincount(phase, minlength=period)
    return sums / np.maximum(counts, 1)


@dataclass
class SeamReport:
    columns: float  # spike ratio across vertical tile borders
    rows: float  # spike ratio across horizontal tile borders

    @property
    def worst(self) -> float:
        return max(self.columns, self.rows)


def seam_spike(rgb: np.ndarray, period: int, offset: int = 0) -> SeamReport:
    """Spike ratios of ``rgb`` for tile borders every ``period`` pixels starting at ``offset``."""
    ab = chroma_of(rgb)

    def ratio(axis: int) -> float:
        folded = folded_steps(ab, axis, period, offset)
        rest = float(np.median(folded[1:])) if period > 1 else float("nan")
        return float(folded[0] / max(rest, 1e-6))

    return SeamReport(columns=ratio(2), rows=ratio(1))
