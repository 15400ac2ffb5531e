"""A tiny CNN that tells overlay text (site logos, URLs, studio names) from painting, for the watermark filter.

Rule: the network sees the whole tile at 128 px (area-downscaled RGB), five blocks of 3x3 convolution,
BatchNorm (eval statistics), ReLU and 2x2 max pooling (max pooling keeps thin bright or dark strokes; strided
convolutions alone did not learn; for inference each BatchNorm is folded into its convolution,
:func:`inference_body`), then the max and mean of its last feature map: a mark in a corner counts as
much as one across the middle. It outputs P(watermark). Trained by ``bench/train_watermark_net.py`` on
generated overlays (:mod:`lpd_pipeline.curation.synthetic_watermarks`) over tiles of the hand labels'
train-fold paintings, against the same tiles clean, every labelled non-watermark tile (inscriptions and
seals are text and marks too) and the real textures a first network took for marks (mined hard negatives:
pine needles, rock texture strokes, branches on brown silk). Weights: :data:`BUNDLED_WEIGHTS` (a plain
``state_dict``, loaded with ``weights_only=True``); absent, the watermark rule decides. Torch is imported only
when a model is loaded.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import cv2
import numpy as np

BUNDLED_WEIGHTS = Path(__file__).with_name("watermark_net.pt")
INPUT_SIDE = 128
CHANNELS = (3, 16, 24, 32, 48, 48)


def build_network(channels: tuple[int, ...] = CHANNELS):
    """The network (untrained): 128 px RGB in, one logit out (torch imported here, not with the module).
    ``channels``: input and per-block widths (the text detector, :mod:`text_net`, is a narrower one)."""
    import torch
    import torch.nn as nn

    class WatermarkCNN(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            layers: list[nn.Module] = []
            for c_in, c_out in zip(channels[:-1], channels[1:]):
                layers += [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(),
                           nn.MaxPool2d(2)]
            self.body = nn.Sequential(*layers)
            self.head = nn.Linear(2 * channels[-1], 1)
            # The decision threshold on P(watermark), calibrated by the training script, saved with the weights.
            self.register_buffer("threshold", torch.tensor(0.5))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.readout(self.body(x))

        def readout(self, h: torch.Tensor) -> torch.Tensor:
            """The logit from the last feature map: its max and mean per channel, then the linear head."""
            return self.head(torch.cat([h.amax(dim=(2, 3)), h.mean(dim=(2, 3))], dim=1))[:, 0]

    return WatermarkCNN()


def network_input(tiles: list[np.ndarray]):
    """A float tensor (n, 3, 128, 128) in [0, 1] from uint8 RGB tiles of any size >= 32."""
    import torch

    small = [cv2.resize(t, (INPUT_SIDE, INPUT_SIDE), interpolation=cv2.INTER_AREA) for t in tiles]
    return torch.from_numpy(np.stack(small)).permute(0, 3, 1, 2).float().div_(255.0)


def inference_body(network):
    """The network's body for inference, same function, ~1.5x cheaper: each convolution and its BatchNorm (eval
    statistics) folded into one convolution with a bias, and ReLU after max pooling (they commute: the max of
    ReLUs is the ReLU of the max, on a quarter of the values). Outputs differ from ``network.body`` by float
    rounding only (< 1e-6 in P(watermark) on the labelled tiles; no decision changes)."""
    import torch
    import torch.nn as nn

    layers: list[nn.Module] = []
    blocks = list(network.body)
    with torch.no_grad():
        for conv, norm in zip(blocks[0::4], blocks[1::4]):
            scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)
            folded = nn.Conv2d(conv.in_channels, conv.out_channels, 3, padding=1, bias=True)
            folded.weight.copy_(conv.weight * scale[:, None, None, None])
            folded.bias.copy_(norm.bias - norm.running_mean * scale)
            layers += [folded, nn.MaxPool2d(2), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers).eval()


class WatermarkNet:
    """Loaded weights and the probability of a watermark per tile (subclasses: other widths, other marks)."""

    CHANNELS = CHANNELS
    WHAT = "watermark"

    # Tiles per forward pass: on one CPU core 8 cost ~1.5 ms a tile, 64 twice that (the activations of a large
    # batch leave the cache), and one alone ~2.5 ms.
    BATCH = 8

    def __init__(self, path: Path | str = BUNDLED_WEIGHTS) -> None:
        import torch

        self.path = Path(path)
        self.network = build_network(self.CHANNELS)
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=True)
            self.network.load_state_dict(state)
        except (OSError, RuntimeError, KeyError, ValueError, AttributeError, pickle.UnpicklingError) as error:
            raise ValueError(f"{self.path}: cannot load the {self.WHAT} network ({error})") from None
        self.network.eval()
        self.threshold = float(self.network.threshold)
        self.body = inference_body(self.network)

    def probabilities(self, tiles: list[np.ndarray], batch: int = BATCH) -> np.ndarray:
        """P(watermark) (or the subclass's mark) per tile, in batches of ``batch`` tiles."""
        import torch

        out = []
        with torch.inference_mode():
            for start in range(0, len(tiles), batch):
                logit = self.network.readout(self.body(network_input(tiles[start:start + batch])))
                out.append(torch.sigmoid(logit).numpy())
        return np.concatenate(out).astype(np.float64) if out else np.zeros(0)
