"""Where the tiles of a whole painting fall, how borders are padded, and each tile pixel's blending weight.

The rule: along each axis the painting is padded by reflection with a margin of ``(tile - stride) // 2`` pixels
before the first tile and at least as much after the last one, and tiles start every ``stride`` pixels from 0
in padded coordinates, the last one flush with the padded end (a regular grid: every tile border repeats with
the period ``stride``). So every image pixel, also at the painting's edge, is seen away from a tile's border by
at least one tile when tiles overlap. A tile's weight is a separable window (Hann or Gaussian) lifted to a
``floor`` at the tile's edge; as the grid is regular, the summed weight of all tiles is separable too and is
computed per row and per column, never stored per pixel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class AxisGrid:
    """Tiles along one axis: ``length`` image pixels, ``margin`` padded pixels before them, ``count`` tiles."""

    length: int
    tile: int
    stride: int
    margin: int
    count: int

    @property
    def padded(self) -> int:
        return (self.count - 1) * self.stride + self.tile

    def origins(self) -> list[int]:
        """Tile starts in padded coordinates."""
        return [i * self.stride for i in range(self.count)]

    def source_index(self) -> np.ndarray:
        """For each padded coordinate, the image pixel it copies (reflection at both ends)."""
        return reflect_index(np.arange(self.padded) - self.margin, self.length)


def axis_grid(length: int, tile: int, stride: int) -> AxisGrid:
    """The regular grid of ``tile``-pixel tiles every ``stride`` pixels over ``length`` image pixels."""
    if length < 1 or tile < 1 or not 1 <= stride <= tile:
        raise ValueError(f"need length >= 1 and 1 <= stride <= tile, got length={length} tile={tile} "
                         f"stride={stride}")
    margin = (tile - stride) // 2
    needed = length + 2 * margin  # padded pixels the tiles must cover at least
    count = 1 if needed <= tile else math.ceil((needed - tile) / stride) + 1
    return AxisGrid(length=length, tile=tile, stride=stride, margin=margin, count=count)


def reflect_index(index: np.ndarray, length: int) -> np.ndarray:
    """Reflect indices into ``[0, length)`` without repeating the edge pixel (as ``numpy.pad(mode='reflect')``)."""
    index = np.asarray(index, dtype=np.int64)
    if length == 1:
        return np.zeros_like(index)
    period = 2 * (length - 1)
    folded = np.mod(index, period)
    return np.where(folded < length, folded, period - folded)


def window_1d(size: int, kind: str = "hann", floor: float = 0.01) -> np.ndarray:
    """A symmetric window over ``size`` pixels, 1 in the middle, ``floor`` at the edges (float64).

    hann: ``sin^2(pi (i + 0.5) / size)``; gaussian: sigma = size / 8 (MONAI's default, sigma_scale 0.125).
    Both are mapped linearly onto ``[floor, 1]``.
    """
    if size < 1:
        raise ValueError(f"window size must be >= 1, got {size}")
    if not 0.0 < floor <= 1.0:
        raise ValueError(f"window floor must be in (0, 1], got {floor}")
    centre = np.arange(size, dtype=np.float64) + 0.5
    if kind == "hann":
        shape = np.sin(np.pi * centre / size) ** 2
    elif kind == "gaussian":
        sigma = size / 8.0
        shape = np.exp(-0.5 * ((centre - size / 2.0) / sigma) ** 2)
    else:
        raise ValueError(f"unknown window {kind!r}; expected 'hann' or 'gaussian'")
    low, high = float(shape.min()), float(shape.max())
    shape = (shape - low) / (high - low) if high > low else np.ones_like(shape)
    return floor + (1.0 - floor) * shape


def summed_weight(grid: AxisGrid, window: np.ndarray) -> np.ndarray:
    """The sum of all tiles' 1-D window weights at each padded coordinate (positive everywhere)."""
    total = np.zeros(grid.padded, dtype=np.float64)
    for origin in grid.origins():
        total[origin:origin + grid.tile] += window
    return total
