"""Cheap remedies against washed-out colour, as training options (all off by default; docs/QUALITY.md).

The rules:

- ink-domain augmentation (``ink_augment``): the training inputs are the gray of coloured paintings, the product
  colours real ink paintings (darker or lighter paper, thinner or denser ink, other contrast). Each gray input
  gets a random tone curve ``lo + (hi - lo) * g ** gamma`` (gamma in [0.7, 1.4]; paper level ``hi`` in
  [0.65, 1.1], above 1 a paper tint removed, below 1 one added; ink density ``lo`` in [0, 0.12]) with
  probability 0.8, drawn from (seed, epoch, index) alone so resume and DDP see the same inputs. The target
  is untouched: the colour is the painting's, whatever the scan did to its gray.
- colourfulness loss (``lambda_colorfulness``): |C(output) - C(target)| / 100 per image, C the Hasler–Süsstrunk
  colourfulness (0..~150 on 0..255 RGB), differentiable, on the decoded sRGB output; with ``colorfulness_scale``
  s > 1 both images are first averaged over s x s blocks, so only regional colour counts: per pixel, a generator
  can match the target's colourfulness with high-frequency chroma stripes (seen on the ladder: horizontal red and
  blue lines when the class rebalancing is off), which block averages cancel.
- saturated targets (``target_saturation``): the target's a*b* scaled by s (out-of-gamut colours clipped).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from lpd_pipeline.models.colorspace import AB_SCALE, L_SCALE, lab_to_rgb, rgb_to_lab

AUGMENT_PROBABILITY = 0.8
GAMMA_RANGE = (0.7, 1.4)
PAPER_RANGE = (0.65, 1.1)
INK_RANGE = (0.0, 0.12)


def augment_ink(gray: np.ndarray, generator: torch.Generator) -> np.ndarray:
    """A uint8 gray tile through a random tone curve (see the module rule); the same draw for the same seed."""
    draws = torch.rand(4, generator=generator, dtype=torch.float64).tolist()
    if draws[0] >= AUGMENT_PROBABILITY:
        return gray
    gamma = GAMMA_RANGE[0] + (GAMMA_RANGE[1] - GAMMA_RANGE[0]) * draws[1]
    hi = PAPER_RANGE[0] + (PAPER_RANGE[1] - PAPER_RANGE[0]) * draws[2]
    lo = INK_RANGE[0] + (INK_RANGE[1] - INK_RANGE[0]) * draws[3]
    curve = lo + (hi - lo) * (np.arange(256, dtype=np.float64) / 255.0) ** gamma
    table = np.clip(np.rint(curve * 255.0), 0, 255).astype(np.uint8)
    return table[gray]


def colorfulness(rgb01: torch.Tensor) -> torch.Tensor:
    """Hasler–Süsstrunk colourfulness per image of sRGB ``[N, 3, H, W]`` in [0, 1] (0..255 scale), differentiable."""
    rgb = rgb01.float() * 255.0
    rg = rgb[:, 0] - rgb[:, 1]
    yb = 0.5 * (rgb[:, 0] + rgb[:, 1]) - rgb[:, 2]
    spread = (rg.var(dim=(1, 2), unbiased=False) + yb.var(dim=(1, 2), unbiased=False) + 1e-6).sqrt()
    centre = (rg.mean(dim=(1, 2)) ** 2 + yb.mean(dim=(1, 2)) ** 2 + 1e-6).sqrt()
    return spread + 0.3 * centre


def to_rgb01(inputs: torch.Tensor, outputs: torch.Tensor, space: str) -> torch.Tensor:
    """Differentiable sRGB ``[N, 3, H, W]`` in [0, 1] of encoded generator inputs and (decoded) outputs."""
    if space == "rgb":
        return (outputs.float().clamp(-1.0, 1.0) + 1.0) / 2.0
    lightness = (inputs.float() + 1.0) * L_SCALE
    return lab_to_rgb(torch.cat([lightness, outputs.float().clamp(-1.0, 1.0) * AB_SCALE], dim=1))


def colorfulness_loss(inputs: torch.Tensor, fake: torch.Tensor, real: torch.Tensor, space: str,
                      scale: int = 1) -> torch.Tensor:
    """Mean |C(fake) - C(real)| / 100 over the batch, both images first averaged over ``scale`` x ``scale`` pixel
    blocks (1: per pixel, the metric's colourfulness)."""
    fake_rgb, real_rgb = to_rgb01(inputs, fake, space), to_rgb01(inputs, real, space)
    if scale > 1:
        fake_rgb, real_rgb = F.avg_pool2d(fake_rgb, scale), F.avg_pool2d(real_rgb, scale)
    return (colorfulness(fake_rgb) - colorfulness(real_rgb)).abs().mean() / 100.0


def saturate_targets(targets: torch.Tensor, space: str, factor: float) -> torch.Tensor:
    """Encoded targets with their a*b* scaled by ``factor`` (rgb targets through Lab and back, gamut-clipped)."""
    if factor == 1.0:
        return targets
    if space != "rgb":
        return (targets * factor).clamp(-1.0, 1.0)
    lab = rgb_to_lab((targets.float() + 1.0) / 2.0)
    lab = torch.cat([lab[:, :1], lab[:, 1:] * factor], dim=1)
    return lab_to_rgb(lab) * 2.0 - 1.0
