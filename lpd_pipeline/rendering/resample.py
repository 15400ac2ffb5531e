"""Changing resolution: gray paintings down (area averaging), chroma maps back up (bilinear, row block by block).

The rule: pixel centres are aligned (``x_src = (x + 0.5) * src / dst - 0.5``, clamped at the borders), so a map
computed at a reduced scale lands on the full-resolution pixels it describes; upsampling works on any block of
output rows from the small map alone, so the full-resolution chroma is never held whole.
"""

from __future__ import annotations

import cv2
import numpy as np


def downscale(gray: np.ndarray, height: int, width: int) -> np.ndarray:
    """``gray`` (uint8, H x W) resized to ``height`` x ``width`` by area averaging (no aliasing)."""
    height, width = max(1, int(height)), max(1, int(width))
    if (height, width) == gray.shape:
        return gray
    return cv2.resize(gray, (width, height), interpolation=cv2.INTER_AREA)


def _taps(dst: int, src: int, start: int, stop: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    centres = (np.arange(start, stop, dtype=np.float64) + 0.5) * (src / dst) - 0.5
    centres = np.clip(centres, 0.0, src - 1)
    low = np.floor(centres).astype(np.int64)
    high = np.minimum(low + 1, src - 1)
    return low, high, (centres - low).astype(np.float32)


def upsample_rows(small: np.ndarray, height: int, width: int, y0: int, y1: int) -> np.ndarray:
    """Rows ``[y0, y1)`` of ``small`` (``[C, h, w]``) bilinearly resized to ``height`` x ``width``; float32."""
    _, h, w = small.shape
    low, high, frac = _taps(height, h, y0, y1)
    rows = small[:, low].astype(np.float32) * (1.0 - frac)[None, :, None] \
        + small[:, high].astype(np.float32) * frac[None, :, None]
    low, high, frac = _taps(width, w, 0, width)
    return rows[:, :, low] * (1.0 - frac) + rows[:, :, high] * frac
