"""Paired metrics of generated vs real images of the same tiles: LPIPS, CIEDE2000 ΔE, PSNR, SSIM.

Rule: each metric is computed per pair, then averaged over pairs (every pair weighs the same; for equal-size
tiles the ΔE mean over pairs equals the mean over all pixels).

- LPIPS (alex, v0.1; lower is better): learned perceptual distance, :meth:`MetricModels.lpips`.
- ΔE (CIEDE2000, lower is better): sRGB (D65) -> CIELAB with scikit-image, ``deltaE_ciede2000`` per pixel
  (checked against Sharma, Wu & Dalal 2005's 34-pair test table to 1e-4).
- PSNR (dB, higher is better): 10 log10(255^2 / MSE) over the three channels; identical images give +inf.
- SSIM (higher is better, 1 = identical): Wang et al. 2004's settings (11x11 Gaussian window, sigma 1.5,
  population covariances, data range 255), per channel, averaged over channels.
"""

from __future__ import annotations

import numpy as np
from skimage.color import deltaE_ciede2000, rgb2lab
from skimage.metrics import structural_similarity

from lpd_pipeline.metrics.models import MetricModels, check_images


def _check_pairs(real: np.ndarray, fake: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    real, fake = check_images(real, "real images"), check_images(fake, "fake images")
    if real.shape != fake.shape:
        raise ValueError(f"real and fake images differ in shape: {real.shape} vs {fake.shape}")
    if len(real) == 0:
        raise ValueError("no image pairs")
    return real, fake


def delta_e_per_pair(real: np.ndarray, fake: np.ndarray) -> np.ndarray:
    """Mean CIEDE2000 ΔE over the pixels of each pair -> ``[N]``."""
    real, fake = _check_pairs(real, fake)
    return np.array([float(deltaE_ciede2000(rgb2lab(r), rgb2lab(f)).mean()) for r, f in zip(real, fake)])


def psnr_per_pair(real: np.ndarray, fake: np.ndarray) -> np.ndarray:
    """PSNR in dB of each pair (peak 255) -> ``[N]``; +inf where a pair is identical."""
    real, fake = _check_pairs(real, fake)
    mse = np.array([np.mean((r.astype(np.float64) - f.astype(np.float64)) ** 2) for r, f in zip(real, fake)])
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(255.0**2 / mse)


def ssim_per_pair(real: np.ndarray, fake: np.ndarray) -> np.ndarray:
    """SSIM of each pair (Wang et al. settings, mean over RGB channels) -> ``[N]``."""
    real, fake = _check_pairs(real, fake)
    return np.array([float(structural_similarity(r, f, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                                 data_range=255, channel_axis=-1)) for r, f in zip(real, fake)])


def paired_metrics(real: np.ndarray, fake: np.ndarray, models: MetricModels) -> dict:
    """``lpips, delta_e, psnr, ssim``: means over the pairs ``real[i], fake[i]`` (uint8 RGB ``[N, H, W, 3]``)."""
    real, fake = _check_pairs(real, fake)
    return {
        "lpips": float(np.mean(models.lpips(real, fake))),
        "delta_e": float(np.mean(delta_e_per_pair(real, fake))),
        "psnr": float(np.mean(psnr_per_pair(real, fake))),
        "ssim": float(np.mean(ssim_per_pair(real, fake))),
    }
