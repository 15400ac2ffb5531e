"""Sliding-window inference over a whole gray painting, assembled strip by strip.

The rule (after MONAI's sliding-window inference): tiles on the regular grid of ``rendering.grid`` go through
the model in batches, one row of tiles at a time; each prediction is weighted by the 2-D window and added to an
accumulator that spans only one tile height of padded rows. When a row of tiles is done, the rows no later tile
touches (``stride`` of them, all remaining ones after the last row) are divided by the summed weights and handed
on, and the accumulator moves down. Memory is therefore one tile height x the painting's width, whatever its
height. Tile pixels are gathered from the painting through reflected indices, so no padded copy of the painting
is ever made. Per-tile hooks (colour anchoring, consistency statistics) see each prediction before it is blended.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator, Protocol

import numpy as np

from lpd_pipeline.rendering.grid import AxisGrid, axis_grid, summed_weight


@dataclass(frozen=True)
class TilePlace:
    """Where one tile lies: padded origin, and its part inside the image (image rows/cols, tile rows/cols)."""

    y: int
    x: int
    image_rows: slice
    image_cols: slice
    tile_rows: slice
    tile_cols: slice


class TileHook(Protocol):
    def __call__(self, prediction: np.ndarray, place: TilePlace) -> None: ...


@dataclass(frozen=True)
class Strip:
    """Finished image rows ``[y0, y0 + values.shape[1])``: blended float32 values ``[C, rows, W]``."""

    y0: int
    values: np.ndarray


def _inside(grid: AxisGrid, origin: int) -> tuple[slice, slice]:
    """(image slice, tile slice) of the part of a tile at padded ``origin`` that lies inside the image."""
    start = max(origin, grid.margin)
    stop = min(origin + grid.tile, grid.margin + grid.length)
    return slice(start - grid.margin, stop - grid.margin), slice(start - origin, stop - origin)


def tile_count(height: int, width: int, tile: int, stride: int) -> int:
    return axis_grid(height, tile, stride).count * axis_grid(width, tile, stride).count


def sliding_window(
    gray: np.ndarray,
    predict: Callable[[np.ndarray], np.ndarray],
    *,
    tile: int,
    stride: int,
    window: np.ndarray,
    channels: int,
    batch_size: int = 8,
    hooks: tuple[TileHook, ...] = (),
    progress: Callable[[int], None] | None = None,
) -> Iterator[Strip]:
    """Blend ``predict`` (uint8 ``[N, T, T]`` -> float32 ``[N, >= channels, T, T]``) over the uint8 ``gray``
    ``(H, W)``; yields the finished strips top to bottom (their row counts sum to H)."""
    if gray.ndim != 2 or gray.dtype != np.uint8:
        raise ValueError(f"sliding_window expects a uint8 (H, W) gray image, got {gray.dtype} {gray.shape}")
    if window.shape != (tile,):
        raise ValueError(f"window must have {tile} weights, got shape {window.shape}")
    height, width = gray.shape
    gy, gx = axis_grid(height, tile, stride), axis_grid(width, tile, stride)
    row_source, col_source = gy.source_index(), gx.source_index()
    norm_rows = summed_weight(gy, window).astype(np.float32)
    norm_cols = summed_weight(gx, window)[gx.margin:gx.margin + width].astype(np.float32)
    window_2d = np.outer(window, window).astype(np.float32)
    acc = np.zeros((channels, tile, gx.padded), dtype=np.float32)
    col_places = [_inside(gx, x) for x in gx.origins()]

    for row, y in enumerate(gy.origins()):
        # The tile row's pixels, reflected at the borders: (tile, padded width), uint8.
        band = gray[row_source[y:y + tile]][:, col_source]
        image_rows, tile_rows = _inside(gy, y)
        origins = gx.origins()
        for start in range(0, len(origins), batch_size):
            chunk = origins[start:start + batch_size]
            tiles = np.stack([band[:, x:x + tile] for x in chunk])
            predictions = predict(tiles)
            for k, x in enumerate(chunk):
                prediction = predictions[k, :channels]
                image_cols, tile_cols = col_places[start + k]
                place = TilePlace(y, x, image_rows, image_cols, tile_rows, tile_cols)
                for hook in hooks:
                    hook(prediction, place)
                acc[:, :, x:x + tile] += prediction * window_2d
            if progress is not None:
                progress(len(chunk))
        last = row == gy.count - 1
        done = tile if last else stride
        # Padded rows [y, y + done) are final; keep those inside the image.
        first = max(y, gy.margin)
        stop = min(y + done, gy.margin + height)
        if stop > first:
            values = np.divide(acc[:, first - y:stop - y, gx.margin:gx.margin + width],
                               norm_rows[first:stop, None])  # one new array; the next division is in place
            values /= norm_cols[None, :]
            yield Strip(first - gy.margin, values)
        if not last:
            acc[:, :tile - stride] = acc[:, stride:]
            acc[:, tile - stride:] = 0.0


def collect(strips: Iterator[Strip], channels: int, height: int, width: int,
            dtype: np.dtype = np.float32) -> np.ndarray:
    """All strips as one ``[C, H, W]`` array (for small images: anchor maps, reduced-scale passes, tests)."""
    out = np.empty((channels, height, width), dtype=dtype)
    filled = 0
    for strip in strips:
        rows = strip.values.shape[1]
        out[:, strip.y0:strip.y0 + rows] = strip.values
        filled += rows
    if filled != height:
        raise RuntimeError(f"sliding window produced {filled} rows for an image of {height}")
    return out
