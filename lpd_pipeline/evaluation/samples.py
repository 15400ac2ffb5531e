"""The sample sheet of one checkpoint: the visual check the method did by eye, on the same tiles every time.

Layout: a title strip (variant, epoch), then the fixed test_color tiles as triplets gray | generated | real (two
per row), then the fixed test_ink tiles as pairs ink | generated (three per row). Every cell is labelled.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from lpd_pipeline.curation.previews import BACKGROUND, contact_sheet

THUMB = 160
TITLE_HEIGHT = 24


def _strip(text: str, width: int) -> np.ndarray:
    strip = np.full((TITLE_HEIGHT, width, 3), BACKGROUND, dtype=np.uint8)
    cv2.putText(strip, text, (6, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return strip


def _pad_width(image: np.ndarray, width: int) -> np.ndarray:
    if image.shape[1] >= width:
        return image
    pad = np.full((image.shape[0], width - image.shape[1], 3), BACKGROUND, dtype=np.uint8)
    return np.concatenate([image, pad], axis=1)


def sample_sheet(title: str, color_ids: Sequence[str], gray: np.ndarray, generated: np.ndarray, real: np.ndarray,
                 ink_ids: Sequence[str] = (), ink_gray: np.ndarray | None = None,
                 ink_generated: np.ndarray | None = None) -> np.ndarray:
    """RGB uint8 sheet. ``gray``/``generated``/``real`` hold the sampled test_color tiles in ``color_ids`` order,
    ``ink_gray``/``ink_generated`` the sampled test_ink tiles."""
    sections: list[np.ndarray] = []
    images, captions = [], []
    for i, tile_id in enumerate(color_ids):
        images += [gray[i], generated[i], real[i]]
        captions += [f"gray {tile_id}", "generated", "real"]
    if images:
        sections += [("test_color: gray | generated | real", contact_sheet(images, captions, thumb=THUMB, columns=6))]
    images, captions = [], []
    for i, tile_id in enumerate(ink_ids):
        images += [ink_gray[i], ink_generated[i]]
        captions += [f"ink {tile_id}", "generated"]
    if images:
        sections += [("test_ink: ink | generated (no ground truth)",
                      contact_sheet(images, captions, thumb=THUMB, columns=6))]
    width = max([s.shape[1] for _, s in sections], default=6 * THUMB)
    parts = [_strip(title, width)]
    for heading, sheet in sections:
        parts += [_strip(heading, width), _pad_width(sheet, width)]
    return np.concatenate(parts, axis=0)
