"""Colouring the test tiles with a checkpoint: the one shared inference path, in fixed-size chunks.

The rule: the generator is loaded in ``DEFAULT_INFERENCE_MODE`` (what rendering uses) and run through
``models.inference.colorize_tiles``. In "eval" mode tiles go through in batches of ``batch_size`` (a tile's
colour does not depend on its batch). In "pix2pix" mode BatchNorm normalises with the statistics of the batch,
so tiles go one at a time, as the reference test script does at batch 1, each with the same fixed dropout seed:
the result is independent of batch size and order.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from lpd_pipeline.models.inference import DEFAULT_INFERENCE_MODE, colorize_tiles
from lpd_pipeline.training.checkpoints import LoadedGenerator, load_generator


def load_for_evaluation(checkpoint: str | os.PathLike, device: str = "cpu",
                        mode: str = DEFAULT_INFERENCE_MODE) -> LoadedGenerator:
    """The checkpoint's generator (weights_only loading), ready for :func:`generate`."""
    return load_generator(checkpoint, device, mode=mode)


def generate(loaded: LoadedGenerator, gray: np.ndarray, *, batch_size: int = 16) -> np.ndarray:
    """uint8 RGB ``[N, H, W, 3]`` for uint8 gray tiles ``[N, H, W]`` (the mode is the one it was loaded in)."""
    if gray.ndim != 3 or gray.dtype != np.uint8:
        raise ValueError(f"generate: expected uint8 gray tiles [N, H, W], got {gray.dtype} {gray.shape}")
    step = 1 if loaded.net.training else max(1, batch_size)  # training flag set: pix2pix mode
    out = np.empty((*gray.shape, 3), dtype=np.uint8)
    for start in range(0, len(gray), step):
        chunk = torch.from_numpy(np.array(gray[start:start + step], copy=True, order="C"))
        out[start:start + step] = colorize_tiles(loaded.net, loaded.config.color_space, chunk).numpy()
    return out
