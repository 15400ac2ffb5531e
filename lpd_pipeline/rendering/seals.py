"""Seals kept: the input painting's seal paste keeps its own colour in the colorized output.

The rule: seal paste is the colour of ``imaging.vermilion`` (the seal filter's colour test: vermilion/cinnabar,
also faded). Its pixels are joined by a 5 x 5 closing (a stamp's carved strokes and the paper showing through
them become one area); an area holding fewer than ``MIN_RED_PIXELS`` paste pixels is dropped (scan specks, and
the broken fragments of a faint outline, which kept alone would be red dots); what remains, with its one-pixel rim
(a 3 x 3 dilation: the paste's soft edge), is written with the input's RGB exactly, and every other pixel is the
model's. The models see only lightness, so without this a red seal on an ink painting, often its only colour and
part of its history, comes back in whatever hue the model paints there. The kept pixels are held sparsely (index
and colour), found in blocks of rows that see ``MARGIN`` rows of their neighbours: memory follows the seal area,
not the painting's.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from lpd_pipeline.imaging import lab_planes, vermilion

MIN_RED_PIXELS = 40
MARGIN = 48  # rows of the neighbouring blocks a block sees (a stamp's area counted across a block edge)
_CLOSE = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))


def seal_mask(rgb: np.ndarray) -> np.ndarray:
    """Boolean ``(H, W)``: the pixels of uint8 RGB ``(H, W, 3)`` that the rule keeps."""
    red = vermilion(*lab_planes(rgb)).astype(np.uint8)
    if not red.any():
        return np.zeros(red.shape, bool)
    closed = cv2.morphologyEx(red, cv2.MORPH_CLOSE, _CLOSE)
    count, labels = cv2.connectedComponents(closed, connectivity=8)
    reds = np.bincount(labels.ravel(), weights=red.ravel(), minlength=count)
    keep = reds >= MIN_RED_PIXELS
    keep[0] = False  # the background
    return cv2.dilate(keep[labels].astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)


@dataclass
class KeptPixels:
    """Flat indices (row-major, into the ``width``-wide painting) of the kept pixels and their input RGB."""

    width: int
    index: np.ndarray
    rgb: np.ndarray

    @classmethod
    def find(cls, rgb: np.ndarray, block_rows: int = 256) -> "KeptPixels":
        """The kept pixels of a whole uint8 RGB painting, ``block_rows`` rows at a time, each block seeing
        ``MARGIN`` rows of its neighbours (the same as :func:`seal_mask` of the whole unless a stamp is taller
        than the margin and straddles a block edge with few paste pixels on one side)."""
        height, width = rgb.shape[:2]
        indices, colours = [], []
        for start in range(0, height, block_rows):
            top, bottom = max(0, start - MARGIN), min(height, start + block_rows + MARGIN)
            mask = seal_mask(rgb[top:bottom])[start - top:start - top + min(block_rows, height - start)]
            rows, cols = np.nonzero(mask)
            indices.append((rows + start).astype(np.int64) * width + cols)
            colours.append(rgb[rows + start, cols])
        return cls(width, np.concatenate(indices), np.concatenate(colours).reshape(-1, 3))

    @property
    def count(self) -> int:
        return int(self.index.size)

    def apply(self, y0: int, rows: np.ndarray) -> np.ndarray:
        """Output rows ``y0 .. y0 + len(rows)`` (uint8 RGB, changed in place and returned) with the kept
        pixels among them set to the input's colour."""
        lo, hi = np.searchsorted(self.index, [y0 * self.width, (y0 + rows.shape[0]) * self.width])
        if hi > lo:
            row, col = np.divmod(self.index[lo:hi] - y0 * self.width, self.width)
            rows[row, col] = self.rgb[lo:hi]
        return rows
