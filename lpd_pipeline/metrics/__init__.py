"""Image-quality metrics for colourised tiles: FID, KID, LPIPS, CIEDE2000 ΔE, PSNR, SSIM, colourfulness.

No Dagster here. Weights are provisioned offline (:mod:`.weights`); see docs/METRICS.md for what each metric
says. ``python -m lpd_pipeline.metrics REAL_DIR FAKE_DIR`` prints them as JSON.
"""

from lpd_pipeline.metrics.cache import cached_features, features_key
from lpd_pipeline.metrics.color import colorfulness, colorfulness_per_image
from lpd_pipeline.metrics.distribution import distribution_metrics, frechet_distance, kernel_inception_distance
from lpd_pipeline.metrics.models import MetricModels
from lpd_pipeline.metrics.paired import delta_e_per_pair, paired_metrics, psnr_per_pair, ssim_per_pair
from lpd_pipeline.metrics.suite import KEYS, all_metrics
from lpd_pipeline.metrics.weights import ensure_weights

__all__ = [
    "KEYS", "MetricModels", "all_metrics", "cached_features", "colorfulness", "colorfulness_per_image",
    "delta_e_per_pair", "distribution_metrics", "ensure_weights", "features_key", "frechet_distance",
    "kernel_inception_distance", "paired_metrics", "psnr_per_pair", "ssim_per_pair",
]
