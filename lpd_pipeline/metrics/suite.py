"""Every metric of one generated set against its real counterpart, in one dict (assets and CLI share it).

Rule: ``n`` pairs ``real[i] <-> fake[i]`` (uint8 RGB, same shape); paired metrics on the pairs, FID/KID on the
Inception features of the two sets (real features may come from a cache), colourfulness of each set and
ΔCF = |difference|. Inception and LPIPS run once per image; nothing is computed twice.
"""

from __future__ import annotations

import numpy as np

from lpd_pipeline.metrics.color import colorfulness
from lpd_pipeline.metrics.distribution import distribution_metrics
from lpd_pipeline.metrics.models import MetricModels
from lpd_pipeline.metrics.paired import paired_metrics

KEYS = ("n", "fid", "fid_lo", "fid_hi", "kid", "kid_lo", "kid_hi", "lpips", "delta_e", "psnr", "ssim",
        "colorfulness_real", "colorfulness_fake", "delta_cf")


def all_metrics(real: np.ndarray, fake: np.ndarray, models: MetricModels, *, real_features: np.ndarray | None = None,
                bootstrap: int = 200, seed: int = 0) -> dict:
    """``n``, FID/KID with intervals, LPIPS, ΔE, PSNR, SSIM, colourfulness of both sets and ΔCF (see :data:`KEYS`)."""
    if real_features is not None and len(real_features) != len(real):
        raise ValueError(f"real_features has {len(real_features)} rows for {len(real)} real images")
    result: dict = {"n": int(len(real))}
    result.update(paired_metrics(real, fake, models))
    if real_features is None:
        real_features = models.inception_features(real)
    result.update(distribution_metrics(real_features, models.inception_features(fake), bootstrap=bootstrap,
                                       seed=seed))
    result["colorfulness_real"] = colorfulness(real)
    result["colorfulness_fake"] = colorfulness(fake)
    result["delta_cf"] = abs(result["colorfulness_real"] - result["colorfulness_fake"])
    return {key: result[key] for key in KEYS}
