"""Colour consistency across a painting: a measure (spread between overlapping predictions) and a remedy (anchor).

Measure: the image is cut into the cells that tile borders make (at 50 % overlap, stride x stride squares each
covered by four tiles). For every cell covered by two or more tiles, each tile's mean a*b* over the cell is one
"opinion"; the cell's spread is the RMS distance (in CIE a*b* units, i.e. Delta-E of chroma) of those opinions
from their average. Smooth blending hides a disagreement as a gradual hue drift but does not remove it; the
spread sees it. Reported: mean and 95th percentile over cells.

Remedy ("anchor"): one low-resolution pass over the whole painting (short side ``anchor_size``, by default one
tile, so each low-resolution tile sees far more of the painting than a full-resolution tile does) gives a coarse
chroma map; every full-resolution tile's prediction is then shifted so that its mean a*b* over its part of the
image equals the map's mean there. Tiles keep their own detail; their common colour comes from one coherent
view of the painting, so neighbouring tiles of one wash agree.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lpd_pipeline.rendering.grid import AxisGrid
from lpd_pipeline.rendering.sliding import TilePlace


class AnchorMap:
    """A coarse a*b* map (``[2, h, w]``) of a painting of ``height`` x ``width`` pixels; exact region means."""

    def __init__(self, chroma: np.ndarray, height: int, width: int) -> None:
        self.chroma = chroma[:2].astype(np.float64)
        self.height, self.width = height, width
        _, h, w = self.chroma.shape
        # Summed-area table with a zero row/column in front: table[:, i, j] = sum of chroma[:, :i, :j].
        table = np.zeros((2, h + 1, w + 1), dtype=np.float64)
        table[:, 1:, 1:] = self.chroma.cumsum(axis=1).cumsum(axis=2)
        self._table = table
        self._sy, self._sx = h / height, w / width

    def _integral(self, y: float, x: float) -> np.ndarray:
        """Integral of the (piecewise constant) map over [0, y) x [0, x) in map pixels: bilinear in the table."""
        h, w = self.chroma.shape[1:]
        y, x = min(max(y, 0.0), h), min(max(x, 0.0), w)
        i, j = min(int(y), h - 1), min(int(x), w - 1)
        fy, fx = y - i, x - j
        t = self._table
        return ((1 - fy) * (1 - fx) * t[:, i, j] + (1 - fy) * fx * t[:, i, j + 1]
                + fy * (1 - fx) * t[:, i + 1, j] + fy * fx * t[:, i + 1, j + 1])

    def mean(self, rows: slice, cols: slice) -> np.ndarray:
        """Mean a*b* over image rows/cols (full-resolution coordinates)."""
        y0, y1 = rows.start * self._sy, rows.stop * self._sy
        x0, x1 = cols.start * self._sx, cols.stop * self._sx
        total = self._integral(y1, x1) - self._integral(y0, x1) - self._integral(y1, x0) + self._integral(y0, x0)
        area = (y1 - y0) * (x1 - x0)
        return total / area if area > 0 else np.zeros(2)

    def __call__(self, prediction: np.ndarray, place: TilePlace) -> None:
        """Tile hook: shift the tile's a*b* so their mean over its in-image part matches the map's."""
        inside = prediction[:2, place.tile_rows, place.tile_cols]
        own = inside.mean(axis=(1, 2), dtype=np.float64)
        shift = self.mean(place.image_rows, place.image_cols) - own
        prediction[:2] += shift.astype(np.float32)[:, None, None]


def _cell_edges(grid: AxisGrid) -> np.ndarray:
    """Cell boundaries in padded coordinates (every tile start and end), clipped to the image."""
    edges = {o for o in grid.origins()} | {o + grid.tile for o in grid.origins()}
    edges |= {grid.margin, grid.margin + grid.length}
    inside = [e for e in edges if grid.margin <= e <= grid.margin + grid.length]
    return np.array(sorted(inside), dtype=np.int64)


@dataclass
class SpreadSummary:
    cells: int  # cells covered by two or more tiles
    mean: float  # mean spread over those cells (a*b* units); NaN when there are none
    p95: float
    mean_chroma: float  # mean |a*b*| of the blended predictions (colourfulness, to see a remedy does not grey)

    def as_dict(self) -> dict:
        return {"cells": self.cells, "spread_mean": self.mean, "spread_p95": self.p95,
                "mean_chroma": self.mean_chroma}


class OverlapSpread:
    """Tile hook collecting, per cell, the tiles' mean a*b* (count, sum, sum of squares)."""

    def __init__(self, grid_y: AxisGrid, grid_x: AxisGrid) -> None:
        self.ey, self.ex = _cell_edges(grid_y), _cell_edges(grid_x)
        ny, nx = len(self.ey) - 1, len(self.ex) - 1
        self.count = np.zeros((ny, nx), dtype=np.int64)
        self.total = np.zeros((2, ny, nx), dtype=np.float64)
        self.squares = np.zeros((ny, nx), dtype=np.float64)
        self.chroma_sum = 0.0
        self.chroma_pixels = 0

    def _cells(self, edges: np.ndarray, origin: int, tile: int) -> tuple[int, int]:
        first = int(np.searchsorted(edges, origin, side="left"))
        last = int(np.searchsorted(edges, origin + tile, side="right")) - 1
        return first, last  # cells first .. last - 1

    def __call__(self, prediction: np.ndarray, place: TilePlace) -> None:
        tile = prediction.shape[-1]
        cy0, cy1 = self._cells(self.ey, place.y, tile)
        cx0, cx1 = self._cells(self.ex, place.x, tile)
        if cy1 <= cy0 or cx1 <= cx0:
            return
        ys = self.ey[cy0:cy1 + 1] - place.y
        xs = self.ex[cx0:cx1 + 1] - place.x
        means = _cell_means(prediction[:2].astype(np.float64), ys, xs)
        self.count[cy0:cy1, cx0:cx1] += 1
        self.total[:, cy0:cy1, cx0:cx1] += means
        self.squares[cy0:cy1, cx0:cx1] += (means ** 2).sum(axis=0)

    def add_output(self, values: np.ndarray) -> None:
        """Count the colourfulness of blended output chroma ``[>=2, rows, W]``."""
        self.chroma_sum += float(np.hypot(values[0], values[1]).sum(dtype=np.float64))
        self.chroma_pixels += values.shape[1] * values.shape[2]

    def summary(self) -> SpreadSummary:
        shared = self.count >= 2
        mean_chroma = self.chroma_sum / self.chroma_pixels if self.chroma_pixels else float("nan")
        if not shared.any():
            return SpreadSummary(0, float("nan"), float("nan"), mean_chroma)
        n = self.count[shared]
        centre = self.total[:, shared] / n
        variance = np.maximum(self.squares[shared] / n - (centre ** 2).sum(axis=0), 0.0)
        spread = np.sqrt(variance)
        return SpreadSummary(int(shared.sum()), float(spread.mean()), float(np.percentile(spread, 95)),
                             mean_chroma)


def _cell_means(ab: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """Mean of ``ab`` ([2, T, T]) over each cell between consecutive edges ``ys`` x ``xs`` (tile coordinates)."""
    cut = ab[:, ys[0]:ys[-1], xs[0]:xs[-1]]
    sums = np.add.reduceat(np.add.reduceat(cut, ys[:-1] - ys[0], axis=1), xs[:-1] - xs[0], axis=2)
    return sums / np.outer(np.diff(ys), np.diff(xs))
