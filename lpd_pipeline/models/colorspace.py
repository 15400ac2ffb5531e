"""Encodings of (grayscale, colour) tile pairs for the generator, and decoding of its output to RGB.

Three colour spaces:

- ``"rgb"`` (the pix2pix method): gray in [-1, 1] -> RGB in [-1, 1]; 1 input and 3 output channels.
- ``"lab"``: CIE L* of the gray tile -> a*b* of the colour tile; 1 input and 2 output channels. Decoding
  keeps the input lightness exactly and only takes chroma from the network.
- ``"labcls"``: as ``"lab"`` for inputs, targets and decoding; the network itself predicts a*b* bin logits,
  which ``models.abbins.AbBinsGenerator.decode_ab`` turns into the same a*b* encoding (models/inference.py).

Conversions are pure torch (sRGB transfer curve, D65 white), run on any device, compute in float32 and are
differentiable (no NaN gradients at 0 from fractional powers). Colour tensors are channel-first: the
channel axis is ``dim=-3`` (``[3, H, W]`` or ``[N, 3, H, W]``).
"""

from __future__ import annotations

import torch

from lpd_pipeline.models.options import COLOR_SPACES

# Normalisation of Lab channels to roughly [-1, 1]: L in [0, 100]; a*, b* of sRGB colours stay within
# about [-108, 95] / [-128, 94], and 110 keeps nearly all of them without clipping while using the range.
L_SCALE = 50.0
AB_SCALE = 110.0

# Linear sRGB -> CIE XYZ (D65), IEC 61966-2-1.
_RGB_TO_XYZ = torch.tensor(
    [
        [0.4124564, 0.3575761, 0.1804375],
        [0.2126729, 0.7151522, 0.0721750],
        [0.0193339, 0.1191920, 0.9503041],
    ],
    dtype=torch.float64,
)
_XYZ_TO_RGB = torch.linalg.inv(_RGB_TO_XYZ)
# The white point is the XYZ of RGB (1, 1, 1) under this matrix (D65: 0.9505, 1.0000, 1.0889), so grays map
# to exactly a* = b* = 0.
_WHITE_XYZ = _RGB_TO_XYZ.sum(dim=1)

_DELTA = 6.0 / 29.0
_EPS = 1e-12  # keeps fractional powers away from 0, where their gradient is infinite


def channels(space: str) -> tuple[int, int]:
    """``(generator input channels, generator output channels)`` for a colour space."""
    _check_space(space)
    return (1, 3) if space == "rgb" else (1, 2)


def _check_space(space: str) -> None:
    if space not in COLOR_SPACES:
        raise ValueError(f"unknown colour space {space!r}; expected one of {COLOR_SPACES}")


def _mix_channels(matrix: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """Apply a 3x3 matrix over the channel axis (dim -3) of ``image``."""
    return torch.einsum("ij,...jhw->...ihw", matrix.to(image.device, image.dtype), image)


def _channel_vector(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return values.to(like.device, like.dtype).view(3, 1, 1)


def _check_channels(image: torch.Tensor, name: str) -> None:
    if image.dim() < 3 or image.shape[-3] != 3:
        raise ValueError(f"{name} must have 3 channels on dim -3 ([..., 3, H, W]), got shape {tuple(image.shape)}")


def srgb_to_linear(srgb: torch.Tensor) -> torch.Tensor:
    """Undo the sRGB transfer curve; input and output in [0, 1]."""
    srgb = srgb.clamp(0.0, 1.0)
    curved = ((srgb + 0.055) / 1.055).clamp_min(_EPS) ** 2.4
    return torch.where(srgb <= 0.04045, srgb / 12.92, curved)


def linear_to_srgb(linear: torch.Tensor) -> torch.Tensor:
    """Apply the sRGB transfer curve; values outside [0, 1] (out of gamut) are clipped first."""
    linear = linear.clamp(0.0, 1.0)
    curved = 1.055 * linear.clamp_min(_EPS) ** (1.0 / 2.4) - 0.055
    return torch.where(linear <= 0.0031308, linear * 12.92, curved)


def _lab_f(t: torch.Tensor) -> torch.Tensor:
    return torch.where(t > _DELTA**3, t.clamp_min(_EPS) ** (1.0 / 3.0), t / (3 * _DELTA**2) + 4.0 / 29.0)


def _lab_f_inverse(t: torch.Tensor) -> torch.Tensor:
    return torch.where(t > _DELTA, t**3, 3 * _DELTA**2 * (t - 4.0 / 29.0))


def rgb_to_lab(rgb01: torch.Tensor) -> torch.Tensor:
    """sRGB in [0, 1] (``[..., 3, H, W]``) -> CIE Lab (D65): L in [0, 100], a*/b* roughly in [-128, 128].

    Computed in float32 whatever the input dtype.
    """
    _check_channels(rgb01, "rgb01")
    xyz = _mix_channels(_RGB_TO_XYZ, srgb_to_linear(rgb01.float()))
    f = _lab_f(xyz / _channel_vector(_WHITE_XYZ, xyz))
    fx, fy, fz = f.unbind(dim=-3)
    return torch.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], dim=-3)


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    """CIE Lab (D65, ``[..., 3, H, W]``) -> sRGB in [0, 1], float32; colours outside the sRGB gamut are clipped."""
    _check_channels(lab, "lab")
    lightness, a, b = lab.float().unbind(dim=-3)
    fy = (lightness + 16.0) / 116.0
    f = torch.stack([fy + a / 500.0, fy, fy - b / 200.0], dim=-3)
    xyz = _lab_f_inverse(f) * _channel_vector(_WHITE_XYZ, f)
    return linear_to_srgb(_mix_channels(_XYZ_TO_RGB, xyz))


def _check_uint8(tensor: torch.Tensor, name: str, ndim: int, layout: str) -> None:
    if not isinstance(tensor, torch.Tensor) or tensor.dtype != torch.uint8 or tensor.dim() != ndim:
        got = f"{tensor.dtype} {tuple(tensor.shape)}" if isinstance(tensor, torch.Tensor) else type(tensor).__name__
        raise ValueError(f"{name} must be a uint8 tensor {layout}, got {got}")


def encode_batch(
    gray_u8: torch.Tensor, color_u8: torch.Tensor | None, space: str
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Turn uint8 tiles into generator inputs and targets, both float32 ``[N, C, H, W]`` in [-1, 1].

    ``gray_u8`` is ``[N, H, W]``; ``color_u8`` is ``[N, H, W, 3]`` RGB or ``None`` (inference: no target).
    rgb: input gray/127.5 - 1, target RGB/127.5 - 1. lab: input L*/50 - 1 of the gray tile read as the
    neutral colour R = G = B, target a*b*/110 of the colour tile (clipped to [-1, 1]).
    Outputs stay on the device of the inputs.
    """
    _check_space(space)
    _check_uint8(gray_u8, "gray_u8", 3, "[N, H, W]")
    if color_u8 is not None:
        _check_uint8(color_u8, "color_u8", 4, "[N, H, W, 3]")
        if color_u8.shape[-1] != 3 or color_u8.shape[:3] != gray_u8.shape:
            raise ValueError(
                f"color_u8 shape {tuple(color_u8.shape)} does not match gray_u8 {tuple(gray_u8.shape)} + (3,)"
            )

    gray01 = gray_u8.float().unsqueeze(1) / 255.0  # [N, 1, H, W]
    color01 = color_u8.permute(0, 3, 1, 2).float() / 255.0 if color_u8 is not None else None

    if space == "rgb":
        inputs = gray01 * 2.0 - 1.0
        targets = color01 * 2.0 - 1.0 if color01 is not None else None
        return inputs, targets

    lightness = rgb_to_lab(gray01.expand(-1, 3, -1, -1))[:, :1]
    inputs = lightness / L_SCALE - 1.0
    targets = None
    if color01 is not None:
        targets = (rgb_to_lab(color01)[:, 1:] / AB_SCALE).clamp(-1.0, 1.0)
    return inputs, targets


def decode_output(inputs: torch.Tensor, outputs: torch.Tensor, space: str) -> torch.Tensor:
    """Generator output -> uint8 RGB ``[N, H, W, 3]`` on the device of ``outputs``.

    rgb: ``outputs`` ([N, 3, H, W] in [-1, 1]) are denormalised; ``inputs`` are only shape-checked.
    lab: lightness comes from ``inputs`` ([N, 1, H, W], exactly as encoded) and a*b* from ``outputs``
    ([N, 2, H, W]); the Lab image is converted to sRGB with out-of-gamut colours clipped.
    """
    _check_space(space)
    in_channels, out_channels = channels(space)
    if inputs.dim() != 4 or inputs.shape[1] != in_channels:
        raise ValueError(f"inputs must be [N, {in_channels}, H, W] for {space!r}, got {tuple(inputs.shape)}")
    if outputs.dim() != 4 or outputs.shape[1] != out_channels:
        raise ValueError(f"outputs must be [N, {out_channels}, H, W] for {space!r}, got {tuple(outputs.shape)}")
    if inputs.shape[0] != outputs.shape[0] or inputs.shape[2:] != outputs.shape[2:]:
        raise ValueError(f"inputs {tuple(inputs.shape)} and outputs {tuple(outputs.shape)} differ in N, H or W")

    with torch.no_grad():
        if space == "rgb":
            rgb01 = (outputs.float().clamp(-1.0, 1.0) + 1.0) / 2.0
        else:
            lightness = (inputs.float().to(outputs.device) + 1.0) * L_SCALE
            ab = outputs.float().clamp(-1.0, 1.0) * AB_SCALE
            rgb01 = lab_to_rgb(torch.cat([lightness, ab], dim=1))
        return (rgb01 * 255.0).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous()
