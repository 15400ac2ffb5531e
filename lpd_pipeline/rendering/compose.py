"""Final pixels: the painting's own lightness with the model's chroma, converted to sRGB row block by row block.

The rule: with ``keep_luminance`` (default) a pixel's CIE L* is the L* of the input gray at full resolution (the
same L* the lab models are fed, from ``models.colorspace``) and only a*b* come from the blended predictions, so
every ink line is exactly as sharp as in the original; without it, rgb models' blended L* is used (lab models
predict no lightness, so theirs is always the input's). Conversion runs in blocks of rows to bound memory.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from lpd_pipeline.models.colorspace import lab_to_rgb, rgb_to_lab

_ROWS_PER_BLOCK = 32


@functools.cache
def gray_lightness_table() -> np.ndarray:
    """CIE L* (float32) of each gray level 0..255 read as the neutral colour R = G = B."""
    ramp = torch.arange(256, dtype=torch.float32).view(1, 1, 256) / 255.0
    return rgb_to_lab(ramp.expand(3, 1, 256))[0, 0].numpy().astype(np.float32)


def compose_rgb(gray_rows: np.ndarray, chroma: np.ndarray, *, keep_luminance: bool = True) -> np.ndarray:
    """uint8 RGB ``(rows, W, 3)`` from uint8 gray ``(rows, W)`` and chroma ``[C, rows, W]`` (a*, b*[, L*])."""
    if chroma.shape[1:] != gray_rows.shape:
        raise ValueError(f"chroma {chroma.shape} does not match gray rows {gray_rows.shape}")
    if not keep_luminance and chroma.shape[0] < 3:
        raise ValueError("keep_luminance=False needs the model's own lightness (chroma with 3 channels)")
    table = gray_lightness_table()
    out = np.empty(gray_rows.shape + (3,), dtype=np.uint8)
    for start in range(0, gray_rows.shape[0], _ROWS_PER_BLOCK):
        stop = start + _ROWS_PER_BLOCK
        lightness = table[gray_rows[start:stop]] if keep_luminance else chroma[2, start:stop]
        lab = torch.from_numpy(np.stack([lightness, chroma[0, start:stop], chroma[1, start:stop]]))
        rgb01 = lab_to_rgb(lab)
        out[start:stop] = (rgb01 * 255.0).round_().clamp_(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
    return out
