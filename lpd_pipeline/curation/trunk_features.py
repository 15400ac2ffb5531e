"""ImageNet features of a tile for the learned filter's linear heads (issue 12, ninth pass).

Rule: the tile, area-downscaled to 128 px (as the watermark CNN sees it, ``watermark_net.network_input``), goes
through the first :data:`STAGES` ReLU stages of the frozen ImageNet AlexNet (:mod:`lpd_pipeline.metrics.alexnet`,
the trunk LPIPS reads); of each stage, the mean and the standard deviation over positions of every channel:
2 x (64 + 192 + 384) = :data:`FEATURE_COUNT` numbers, stage by stage, means before stds. They say what
hand-made features cannot name (brushwork against print, stamp against leaf, text strokes, the texture of bare
silk); :mod:`tile_model` reads them through one logistic head per class, averaged with the stumps.

The weights come with the metric weights (``python -m lpd_pipeline.metrics.weights``); without them the tile model
keeps its stumps and their own thresholds (``tile_model.resolve_model``). Cost on one core: ~4 ms a tile (idle, batches of 16).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from lpd_pipeline.metrics.alexnet import STAGE_CHANNELS

STAGES = 3
FEATURE_COUNT = 2 * sum(STAGE_CHANNELS[:STAGES])
NAME = f"alexnet{STAGES}-128"  # what a model file's heads were fitted on
BATCH = 16


def feature_names() -> tuple[str, ...]:
    names = []
    for stage, channels in enumerate(STAGE_CHANNELS[:STAGES], 1):
        names += [f"trunk{stage}_{stat}{c}" for stat in ("mean", "std") for c in range(channels)]
    return tuple(names)


class TrunkFeatures:
    """The loaded trunk; ``features(tiles)`` -> (n, FEATURE_COUNT) float64. ``path``: the AlexNet weights
    (default: the metric-weight cache); :class:`~lpd_pipeline.metrics.alexnet.AlexNetWeightsMissing` when absent."""

    def __init__(self, path: Path | None = None) -> None:
        from lpd_pipeline.metrics.alexnet import AlexNetTrunk

        self.trunk = AlexNetTrunk(STAGES, path, needed_by="the learned tile filter's linear heads")
        self.path = self.trunk.path

    def features(self, tiles: Sequence[np.ndarray], batch: int = BATCH) -> np.ndarray:
        import torch

        from lpd_pipeline.curation.watermark_net import network_input

        out = []
        with torch.inference_mode():
            for start in range(0, len(tiles), batch):
                stages = self.trunk(network_input(list(tiles[start:start + batch])))
                out.append(torch.cat([t for x in stages for t in (x.mean((2, 3)), x.std((2, 3)))], 1).double().numpy())
        return np.concatenate(out) if out else np.zeros((0, FEATURE_COUNT))
