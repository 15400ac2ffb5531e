"""A tiny CNN that sees columns of handwritten characters: P(inscription) of a tile, a feature of the learned
filter's stumps (issue 12, sixth pass).

Rule: the watermark CNN's architecture (:mod:`watermark_net`: the tile at 128 px, five blocks of 3x3
convolution, BatchNorm, ReLU and max pooling, the max and mean of the last map, one logit), narrower
(:data:`CHANNELS`, ~21k weights, 0.43x the watermark CNN's multiply-adds). Trained by
``bench/train_text_net.py`` on generated inscriptions (:mod:`synthetic_inscriptions`: Kai-font columns
multiplied onto the tile) over grid tiles of the hand labels' train-fold paintings, against the same tiles
clean; it never sees a labelled tile, so its score on them is out of sample and the stumps' cross-validation
stays honest. Its probability is the feature ``text_net`` of :mod:`tile_model` (appended to the hand-made
features); the stumps decide. Weights: :data:`BUNDLED_WEIGHTS` (a plain ``state_dict``, ``weights_only=True``);
absent, every class whose stumps read ``text_net`` falls back to its rule.
"""

from __future__ import annotations

from pathlib import Path

from lpd_pipeline.curation.watermark_net import WatermarkNet

BUNDLED_WEIGHTS = Path(__file__).with_name("text_net.pt")
CHANNELS = (3, 8, 16, 24, 32, 32)
FEATURE = "text_net"


class TextNet(WatermarkNet):
    """Loaded weights and P(inscription) per tile (``probabilities``); ``threshold``: the P that 2 % of the
    clean training tiles exceed (for looking at candidates; the stumps choose their own split)."""

    CHANNELS = CHANNELS
    WHAT = "text"

    def __init__(self, path: Path | str = BUNDLED_WEIGHTS) -> None:
        super().__init__(path)
