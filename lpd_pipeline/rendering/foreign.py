"""Generators trained by junyanz/pytorch-CycleGAN-and-pix2pix (``latest_net_G.pth``) rebuilt as our networks.

The rule: the file is a plain state dict loaded with ``torch.load(weights_only=True)`` and everything is inferred
from its keys and shapes, never from a pickled object: ``model.model.*`` is a U-Net (levels = nesting depth,
``ngf`` from the outermost convolution), ``model.<i>.conv_block.*`` a ResNet (blocks counted); ``running_mean``
keys mean BatchNorm, else a bias on the inner convolutions means InstanceNorm and none means no normalisation.
Channels say the colour space: 1 in / 2 out is the reference's ``colorization`` model (L/50 - 1 -> a*b*/110,
our ``lab``), 1 or 3 in / 3 out is pix2pix on aligned gray|colour pairs (our ``rgb``; a 3-channel input gets the
gray replicated, as an RGB-loaded gray image would be).

Our modules compute the same functions as the reference's with the same parameter names for the ResNet; in the
U-Net the reference keeps each inner level's LeakyReLU as the first entry of the level's ``Sequential``, so its
indices there are ours + 1 (remapped here).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from lpd_pipeline.models.networks import ResnetGenerator, UnetGenerator

# Sequential index of the outermost U-Net level's down- and up-convolution (same in both code bases).
_UNET_DOWN, _UNET_UP = "model.model.0.weight", "model.model.3.weight"
_RESNET_BLOCK = re.compile(r"^model\.(\d+)\.conv_block\.")


class ForeignGeneratorError(ValueError):
    """A state dict that is not a pix2pix generator this project can rebuild (message names file and reason)."""


@dataclass
class ForeignGenerator:
    net: nn.Module
    backbone: str  # "unet256" / "resnet9" (or "unet<levels>", "resnet<blocks>" for other depths)
    color_space: str
    ngf: int
    norm: str
    tile_size: int  # the reference's default crop size for this network
    multiple: int  # tile sizes must be multiples of this


class _ReplicateGray(nn.Module):
    """Feed a 1-channel input to a generator trained on 3-channel (gray-as-RGB) images."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.expand(-1, 3, -1, -1))


def is_reference_state_dict(payload: object) -> bool:
    return (isinstance(payload, dict) and bool(payload)
            and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in payload.items())
            and any(k.startswith("model.") for k in payload))


def load_reference_generator(path: str | Path, payload: dict[str, torch.Tensor]) -> ForeignGenerator:
    """Rebuild the generator whose state dict is ``payload`` (read from ``path``, named in errors)."""
    state = {k.removeprefix("module."): v for k, v in payload.items()}
    if _UNET_DOWN in state:
        return _unet(Path(path), state)
    if any(_RESNET_BLOCK.match(k) for k in state):
        return _resnet(Path(path), state)
    raise ForeignGeneratorError(f"{path}: not a pix2pix U-Net or ResNet generator state dict "
                                f"(keys start {sorted(state)[:3]})")


def _norm(state: dict[str, torch.Tensor], inner_bias_key: str) -> str:
    if any(k.endswith("running_mean") for k in state):
        return "batch"
    return "instance" if inner_bias_key in state else "none"


def _space(path: Path, in_ch: int, out_ch: int) -> str:
    if in_ch == 1 and out_ch == 2:
        return "lab"
    if in_ch in (1, 3) and out_ch == 3:
        return "rgb"
    raise ForeignGeneratorError(f"{path}: a generator with {in_ch} input and {out_ch} output channels is neither "
                                "gray->RGB (1 or 3 in, 3 out) nor L->ab colorization (1 in, 2 out)")


def _unet(path: Path, state: dict[str, torch.Tensor]) -> ForeignGenerator:
    levels = 1 + max(k.count("model.") - 2 for k in state)
    if levels < 5:
        raise ForeignGeneratorError(f"{path}: a U-Net with {levels} levels (at least 5 are supported)")
    ngf, in_ch = state[_UNET_DOWN].shape[:2]
    out_ch = state[_UNET_UP].shape[1]  # ConvTranspose2d weights are [in, out, k, k]
    norm = _norm(state, "model.model.1.model.1.bias")
    space = _space(path, int(in_ch), int(out_ch))
    net = UnetGenerator(int(in_ch), int(out_ch), levels, int(ngf), norm, use_dropout=False)
    _load(path, net, {_unet_key(k): v for k, v in state.items()}, fill_bias=norm == "none")
    backbone = "unet256" if levels == 8 else f"unet{2 ** levels}"
    return ForeignGenerator(_wrap(net, in_ch), backbone, space, int(ngf), norm, 2 ** levels, 2 ** levels)


def _unet_key(key: str) -> str:
    """Reference U-Net key -> ours: inner levels' Sequential indices are one lower here (see module doc)."""
    parts = key.split(".")
    out, level = [parts[0]], -1
    i = 1
    while i < len(parts) - 1 and parts[i] == "model" and parts[i + 1].isdigit():
        level += 1
        index = int(parts[i + 1])
        out += ["model", str(index - 1 if level > 0 else index)]
        i += 2
    return ".".join(out + parts[i:])


def _resnet(path: Path, state: dict[str, torch.Tensor]) -> ForeignGenerator:
    blocks = sorted({int(m.group(1)) for k in state if (m := _RESNET_BLOCK.match(k))})
    first = blocks[0]
    ngf, in_ch = state["model.1.weight"].shape[:2]
    last_conv = max((int(k.split(".")[1]) for k in state
                     if re.fullmatch(r"model\.\d+\.weight", k) and state[k].dim() == 4))
    out_ch = state[f"model.{last_conv}.weight"].shape[0]
    dropout = f"model.{first}.conv_block.6.weight" in state
    norm = _norm(state, f"model.{first}.conv_block.1.bias")
    space = _space(path, int(in_ch), int(out_ch))
    net = ResnetGenerator(int(in_ch), int(out_ch), int(ngf), norm, dropout, n_blocks=len(blocks))
    _load(path, net, state, fill_bias=norm == "none")
    return ForeignGenerator(_wrap(net, in_ch), f"resnet{len(blocks)}", space, int(ngf), norm, 256, 4)


def _wrap(net: nn.Module, in_ch: int) -> nn.Module:
    return _ReplicateGray(net) if int(in_ch) == 3 else net


def _load(path: Path, net: nn.Module, state: dict[str, torch.Tensor], *, fill_bias: bool) -> None:
    expected = net.state_dict()
    state = {k: v for k, v in state.items() if k in expected or not k.endswith("num_batches_tracked")}
    for key, value in expected.items():
        if key not in state and (key.endswith("num_batches_tracked") or (fill_bias and key.endswith(".bias"))):
            # Older PyTorch saved no batch counters; with norm "none" the reference's convolutions have no
            # bias where ours have one initialised at 0: the same function.
            state[key] = torch.zeros_like(value)
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(expected) & set(state) if expected[k].shape != state[k].shape)
    if missing or unexpected or wrong:
        raise ForeignGeneratorError(
            f"{path}: the state dict does not fit the inferred network (missing {missing[:3]}, unexpected "
            f"{unexpected[:3]}, shape mismatch {wrong[:3]})")
    net.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
