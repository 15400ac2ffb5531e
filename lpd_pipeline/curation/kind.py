"""Coloured vs ink: chroma measured away from the paper-tint axis.

Mean HSV saturation is useless here: aged silk and paper are strongly tinted (yellow-brown) yet the painting
is ink only. Ink on tinted ground stays on one hue line in CIELAB a*b* (from neutral ink to the tint), while
mineral and vegetable colours (azurite, malachite, indigo, cinnabar) leave that line. So we estimate the tint
axis as the dominant a*b* direction of the image, measure each pixel's distance from that axis, and score an
image by the fraction of pixels that are clearly off it.

Tuned on the 580 labelled paintings in ``../shared/paintings`` (see ``bench/kind_agreement.py``).
Measured there: agreement 509/580 = 0.878 (coloured 72/130, ink 437/450); a 2-fold split check (tune on even
rows, test on odd, and back) gives 0.883 / 0.869 held out. Known miss: pale blue-green washes whose a*b*
offset (~4-7) is no larger than silk-grain noise. Blurring a*b*, signed (green-side / beyond-neutral) axes,
an L-dependent expected-tint model and per-image noise normalisation were all tried and did not beat 0.884
in-sample or 0.876 held out, so the simple rule stays.

Stratified 5-fold cross-validation repeated with 3 seeds (``bench/kind_agreement.py --cv``; the rule's
chroma and fraction thresholds refitted on each training fold) gives the rule 0.878 held out (coloured recall
0.564, ink recall 0.968). A logistic regression over 12 interpretable per-image features (off-axis chroma
quantiles and fractions, connected-region coherence, 9x9-blurred off-axis chroma, hue spread, tint
magnitude, green-vs-red side share, 8x8 region colour spread, off-axis distance from a lightness-binned
ground colour, hue drift with lightness) scored 0.879 (0.574 / 0.967) the same way, at ~3x the cost per
painting; in exploration even ~70 such features (plus log-RGB chromaticity-line features) reached only
0.891 held out (0.90-0.92 in-sample), short of the +3 points needed to justify a learned model, so the rule
stays. The residual errors look like a ceiling of global colour statistics (and perhaps label noise):
pale blue-green washes on cream paper are as far off-axis as dilute cool ink, and ink on strongly toned silk
drifts olive in the shadows.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from lpd_pipeline.curation.order_stats import median

KIND_COLORED = "colored"
KIND_INK = "ink"
KINDS = (KIND_COLORED, KIND_INK)

# Work size (longest side): enough for washes to be many pixels, small enough to be fast; area averaging
# also removes most JPEG chroma noise. A 3x3 median then drops silk-weave and compression speckle.
ANALYSIS_SIZE = 256
_MEDIAN_KSIZE = 3
# Below this a*b* magnitude the ground is effectively neutral and has no reliable hue direction.
_MIN_TINT_CHROMA = 1.5


@dataclass(frozen=True)
class KindRule:
    """An image is coloured when more than ``fraction_threshold`` of its pixels are further than
    ``chroma_threshold`` (CIELAB a*b* units) from the paper-tint axis."""

    chroma_threshold: float = 8.0
    fraction_threshold: float = 0.02


def analysis_lab(rgb: np.ndarray) -> np.ndarray:
    """CIELAB (float32, L in 0..100) of the image downscaled to :data:`ANALYSIS_SIZE` and median-filtered."""
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected uint8 RGB (H, W, 3), got {rgb.dtype} {rgb.shape}")
    height, width = rgb.shape[:2]
    scale = ANALYSIS_SIZE / max(height, width)
    if scale < 1.0:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    lab = cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    if min(lab.shape[:2]) >= _MEDIAN_KSIZE:
        lab = cv2.medianBlur(lab, _MEDIAN_KSIZE)
    return lab


def tint_direction(ab: np.ndarray) -> np.ndarray | None:
    """Unit a*b* vector of the paper/silk tint (the median a*b* of the image), or None for a neutral ground.

    The median over all pixels, not just the bright ones: fan paintings on a pale mount would otherwise
    take the mount's tint instead of the silk's.
    """
    # Per channel (numpy's median along axis 0 of an (N, 2) array is ~3x slower), by order_stats: numpy's value.
    tint = np.array([median(ab[..., 0]), median(ab[..., 1])])
    norm = float(np.hypot(tint[0], tint[1]))
    if norm < _MIN_TINT_CHROMA:
        return None
    return tint / norm


def off_axis_chroma(rgb: np.ndarray) -> np.ndarray:
    """Per-pixel distance (a*b* units) from the image's paper-tint axis, on the downscaled analysis grid.

    Returns a float32 (h, w) array with h, w = the image scaled so its longest side is at most
    :data:`ANALYSIS_SIZE`. With a neutral ground the axis degenerates to a point and this is plain chroma.
    """
    lab = analysis_lab(rgb)
    ab = lab[..., 1:]
    axis = tint_direction(ab)
    if axis is None:
        return np.hypot(ab[..., 0], ab[..., 1]).astype(np.float32)
    perpendicular = np.array([-axis[1], axis[0]], dtype=np.float32)
    return np.abs(ab @ perpendicular).astype(np.float32)


def colorfulness_score(rgb: np.ndarray, chroma_threshold: float = KindRule.chroma_threshold) -> float:
    """Fraction of pixels further than ``chroma_threshold`` from the paper-tint axis (0 = pure ink)."""
    return float((off_axis_chroma(rgb) > chroma_threshold).mean())


def classify_kind(rgb: np.ndarray, rule: KindRule = KindRule()) -> tuple[str, float]:
    """``(kind, colorfulness)`` for one painting, kind being :data:`KIND_COLORED` or :data:`KIND_INK`."""
    score = colorfulness_score(rgb, rule.chroma_threshold)
    return kind_of_score(score, rule), score


def kind_of_score(score: float, rule: KindRule = KindRule()) -> str:
    """The kind a colourfulness score means under ``rule`` (also for scores cached from earlier runs)."""
    return KIND_COLORED if score > rule.fraction_threshold else KIND_INK
