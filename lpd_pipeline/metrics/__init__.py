"""Image-quality metrics for colourised tiles: FID, KID, LPIPS, CIEDE2000 ΔE, PSNR, SSIM, colourfulness.

No Dagster here. Weights are provisioned offline (:mod:`.weights`); see docs/METRICS.md for what each metric
says. ``python -m lpd_pipeline.metrics REAL_DIR FAKE_DIR`` prints them as JSON.

The names below are imported on first use (PEP 562), so ``import lpd_pipeline.metrics`` costs nothing (no torch,
no scikit-image) and ``python -m lpd_pipeline.metrics.weights`` runs its module once.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "KEYS": "suite", "all_metrics": "suite",
    "MetricModels": "models",
    "cached_features": "cache", "features_key": "cache",
    "colorfulness": "color", "colorfulness_per_image": "color",
    "distribution_metrics": "distribution", "frechet_distance": "distribution",
    "kernel_inception_distance": "distribution",
    "paired_metrics": "paired", "delta_e_per_pair": "paired", "psnr_per_pair": "paired", "ssim_per_pair": "paired",
    "ensure_weights": "weights",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
