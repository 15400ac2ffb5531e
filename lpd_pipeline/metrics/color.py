"""Colourfulness (Hasler & Süsstrunk 2003) of uint8 RGB images, and ΔCF between two sets.

Rule: per image, rg = R - G and yb = (R + G) / 2 - B on 0..255 values; M = sqrt(std_rg^2 + std_yb^2)
+ 0.3 sqrt(mean_rg^2 + mean_yb^2) (population std over the pixels); the set's value is the mean over images.
Gray images score 0; the paper's scale reads ~15 "slightly", ~33 "moderately", ~59 "quite", ~82+ "highly"
colourful. ΔCF = |colourfulness(real) - colourfulness(fake)|: lower means the generated tiles are as colourful
as the real ones (neither washed out nor garish).
"""

from __future__ import annotations

import numpy as np

from lpd_pipeline.metrics.models import check_images


def colorfulness_per_image(images: np.ndarray) -> np.ndarray:
    """Hasler–Süsstrunk colourfulness of each image -> ``[N]``."""
    images = check_images(images)
    out = np.empty(len(images))
    for i, image in enumerate(images):
        rgb = image.astype(np.float64)
        rg = rgb[..., 0] - rgb[..., 1]
        yb = 0.5 * (rgb[..., 0] + rgb[..., 1]) - rgb[..., 2]
        out[i] = np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean())
    return out


def colorfulness(images: np.ndarray) -> float:
    """Mean Hasler–Süsstrunk colourfulness over ``images`` (uint8 RGB ``[N, H, W, 3]``)."""
    values = colorfulness_per_image(images)
    if len(values) == 0:
        raise ValueError("colorfulness of an empty set")
    return float(values.mean())
