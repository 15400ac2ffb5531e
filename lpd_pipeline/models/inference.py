"""Inference with a trained generator: gray uint8 tiles in, colour out. One way, shared by evaluation and rendering.

The rule: the generator runs under ``torch.no_grad()`` in the mode it was loaded with (see
``training.checkpoints.load_generator``; ``DEFAULT_INFERENCE_MODE``), and any randomness (dropout in pix2pix
mode) comes from a private generator seeded per call, so the same tiles always give the same colours and the
caller's global RNG is untouched.
"""

from __future__ import annotations

import torch

from lpd_pipeline.models.colorspace import decode_output, encode_batch

# Evaluation and rendering use the same mode. "eval": running BatchNorm statistics, no dropout; a tile's colour
# does not depend on its neighbours in a batch or on the tile's own statistics (which, in pix2pix mode, make
# neighbouring tiles of one painting disagree).
DEFAULT_INFERENCE_MODE = "eval"
INFERENCE_SEED = 0


def generator_forward(net: torch.nn.Module, space: str, gray_u8: torch.Tensor, *, seed: int = INFERENCE_SEED
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(inputs, outputs)`` of the generator for uint8 gray tiles ``[N, H, W]`` (float32, on the net's device).

    ``outputs`` are the network outputs in [-1, 1] (RGB, or a*b* for lab; for labcls the annealed-mean a*b* of
    its bin logits, decoded with the bins, prior and temperature stored in the model): what a blender averages
    before ``decode_output`` turns them into pixels.
    """
    device = next(net.parameters()).device
    inputs, _ = encode_batch(gray_u8.to(device), None, space)
    devices = [device] if device.type == "cuda" else []
    with torch.no_grad(), torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        outputs = net(inputs).float()
        if space == "labcls":  # bin logits -> the annealed-mean a*b*, in the lab encoding
            outputs = net.decode_ab(outputs)
    return inputs, outputs


def colorize_tiles(net: torch.nn.Module, space: str, gray_u8: torch.Tensor, *, seed: int = INFERENCE_SEED
                   ) -> torch.Tensor:
    """uint8 RGB ``[N, H, W, 3]`` (on CPU) for uint8 gray tiles ``[N, H, W]``."""
    inputs, outputs = generator_forward(net, space, gray_u8, seed=seed)
    return decode_output(inputs, outputs, space).cpu()
