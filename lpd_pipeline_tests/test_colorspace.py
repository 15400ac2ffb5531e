"""Colour spaces: sRGB <-> Lab conversions, batch encoding and decoding of generator output."""

from __future__ import annotations

import pytest
import torch

from lpd_pipeline.models.colorspace import (
    AB_SCALE,
    COLOR_SPACES,
    L_SCALE,
    channels,
    decode_output,
    encode_batch,
    lab_to_rgb,
    rgb_to_lab,
)
from lpd_pipeline.models.options import AB_SPACES

# Largest change of L* per unit of one sRGB channel summed over the three channels (~131.7, reached in
# dark tones near v = 0.1). Rounding each channel to 8 bits moves a colour by at most half a level, so a
# decoded-then-re-encoded lightness can differ from the requested one by up to 131.7 * 0.5 / 255 = 0.26 L*.
L_ROUNDING_TOLERANCE = 0.27


def _seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _pixel(r: float, g: float, b: float) -> torch.Tensor:
    return torch.tensor([r, g, b]).view(3, 1, 1)


def _random_tiles(n: int = 3, size: int = 16, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = _seeded(seed)
    color = torch.randint(0, 256, (n, size, size, 3), dtype=torch.uint8, generator=gen)
    gray = torch.randint(0, 256, (n, size, size), dtype=torch.uint8, generator=gen)
    return gray, color


def _srgb_to_lightness_by_hand(v: float) -> float:
    """L* of the neutral sRGB colour (v, v, v), straight from the CIE / IEC 61966-2-1 formulas."""
    linear = v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4
    f = linear ** (1 / 3) if linear > (6 / 29) ** 3 else linear / (3 * (6 / 29) ** 2) + 4 / 29
    return 116 * f - 16


def test_channels():
    assert COLOR_SPACES == ("rgb", "lab", "labcls")
    assert channels("rgb") == (1, 3)
    assert channels("lab") == (1, 2)
    assert channels("labcls") == (1, 2)  # the decoded a*b* (the network itself gives bin logits)
    with pytest.raises(ValueError, match="unknown colour space 'hsv'"):
        channels("hsv")


@pytest.mark.parametrize(
    ("rgb", "lab"),
    [
        # Published CIE Lab (D65, 2 deg) values of the sRGB primaries and white/black.
        ((1.0, 0.0, 0.0), (53.2408, 80.0925, 67.2032)),
        ((0.0, 1.0, 0.0), (87.7347, -86.1827, 83.1793)),
        ((0.0, 0.0, 1.0), (32.2970, 79.1875, -107.8602)),
        ((1.0, 1.0, 1.0), (100.0, 0.0, 0.0)),
        ((0.0, 0.0, 0.0), (0.0, 0.0, 0.0)),
        ((0.5, 0.5, 0.5), (_srgb_to_lightness_by_hand(0.5), 0.0, 0.0)),  # 53.389
        ((0.02, 0.02, 0.02), (_srgb_to_lightness_by_hand(0.02), 0.0, 0.0)),  # linear segments of both curves
    ],
)
def test_rgb_to_lab_reference_values(rgb, lab):
    got = rgb_to_lab(_pixel(*rgb)).flatten()
    torch.testing.assert_close(got, torch.tensor(lab), atol=2e-3, rtol=0)
    back = lab_to_rgb(torch.tensor(lab).view(3, 1, 1)).flatten()
    torch.testing.assert_close(back, torch.tensor(rgb), atol=1e-4, rtol=0)


def test_round_trip_error_below_one_level():
    rgb = torch.rand(4, 3, 32, 32, generator=_seeded())
    levels = torch.randint(0, 256, (1, 3, 64, 64), generator=_seeded(1)).float() / 255
    for colours in (rgb, levels):
        error = (lab_to_rgb(rgb_to_lab(colours)) - colours).abs().max().item()
        assert error < 1 / 255
        assert error < 1e-4  # far below a level: the conversion itself is exact up to float32


def test_conversions_are_float32_for_any_input_dtype_and_rank():
    rgb = torch.rand(3, 5, 7, generator=_seeded(), dtype=torch.float64)
    lab = rgb_to_lab(rgb)
    assert lab.shape == (3, 5, 7) and lab.dtype == torch.float32
    assert rgb_to_lab(rgb.to(torch.bfloat16)).dtype == torch.float32
    assert lab_to_rgb(lab.to(torch.float16)).dtype == torch.float32
    with pytest.raises(ValueError, match="3 channels on dim -3"):
        rgb_to_lab(torch.rand(2, 4, 5, 5))


def test_conversions_have_finite_gradients_at_the_gamut_corners():
    corners = torch.tensor([0.0, 1.0]).view(1, 1, 1, 2).expand(1, 3, 2, 2).clone().requires_grad_(True)
    rgb_to_lab(corners).sum().backward()
    assert torch.isfinite(corners.grad).all()
    lab = torch.tensor([[0.0, 0.0, 0.0], [100.0, 0.0, 0.0], [50.0, 200.0, -200.0]]).T.reshape(1, 3, 3, 1)
    lab.requires_grad_(True)
    lab_to_rgb(lab).sum().backward()
    assert torch.isfinite(lab.grad).all()


def test_out_of_gamut_lab_is_clipped():
    rgb = lab_to_rgb(torch.tensor([50.0, 127.0, -127.0]).view(3, 1, 1))
    assert rgb.min() >= 0.0 and rgb.max() <= 1.0


# ---------------------------------------------------------------------------------------------- encode


def test_encode_rgb():
    gray, color = _random_tiles()
    inputs, targets = encode_batch(gray, color, "rgb")
    assert inputs.shape == (3, 1, 16, 16) and targets.shape == (3, 3, 16, 16)
    assert inputs.dtype == targets.dtype == torch.float32
    torch.testing.assert_close(inputs[:, 0], gray.float() / 127.5 - 1)
    torch.testing.assert_close(targets, color.permute(0, 3, 1, 2).float() / 127.5 - 1)
    extremes = torch.tensor([[[0, 255]]], dtype=torch.uint8)
    assert encode_batch(extremes, None, "rgb")[0].flatten().tolist() == [-1.0, 1.0]


def test_encode_lab():
    gray, color = _random_tiles()
    inputs, targets = encode_batch(gray, color, "lab")
    assert inputs.shape == (3, 1, 16, 16) and targets.shape == (3, 2, 16, 16)
    assert inputs.dtype == targets.dtype == torch.float32
    assert inputs.min() >= -1 and inputs.max() <= 1
    assert targets.min() >= -1 and targets.max() <= 1
    # Input: lightness of the gray level read as a neutral colour.
    expected_lightness = torch.tensor([_srgb_to_lightness_by_hand(v / 255) for v in range(256)])
    torch.testing.assert_close(inputs[:, 0], expected_lightness[gray.long()] / L_SCALE - 1, atol=1e-4, rtol=0)
    # Target: a*b* of the colour tile, scaled.
    expected_ab = rgb_to_lab(color.permute(0, 3, 1, 2).float() / 255)[:, 1:] / AB_SCALE
    torch.testing.assert_close(targets, expected_ab.clamp(-1, 1))


def test_encode_lab_of_neutral_colours_has_zero_chroma():
    gray = torch.arange(256, dtype=torch.uint8).view(1, 16, 16)
    inputs, targets = encode_batch(gray, gray.unsqueeze(-1).expand(-1, -1, -1, 3).contiguous(), "lab")
    assert targets.abs().max() < 1e-5
    assert inputs.min().item() == pytest.approx(-1.0, abs=1e-6)
    assert inputs.max().item() == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("space", COLOR_SPACES)
def test_encode_without_colour_returns_no_targets(space):
    gray, _ = _random_tiles()
    inputs, targets = encode_batch(gray, None, space)
    assert targets is None and inputs.shape == (3, 1, 16, 16)


def test_encode_rejects_bad_input():
    gray, color = _random_tiles()
    with pytest.raises(ValueError, match=r"gray_u8 must be a uint8 tensor \[N, H, W\], got torch.float32"):
        encode_batch(gray.float(), color, "rgb")
    with pytest.raises(ValueError, match="gray_u8 must be a uint8 tensor"):
        encode_batch(gray[0], color, "rgb")
    with pytest.raises(ValueError, match="does not match"):
        encode_batch(gray, color[:, :8], "lab")
    with pytest.raises(ValueError, match="does not match"):
        encode_batch(gray, color[..., :2].contiguous(), "rgb")
    with pytest.raises(ValueError, match="unknown colour space 'yuv'"):
        encode_batch(gray, color, "yuv")


# ---------------------------------------------------------------------------------------------- decode


@pytest.mark.parametrize("space", COLOR_SPACES)
def test_decode_of_encoded_target_gives_back_the_colour(space):
    _, color = _random_tiles()
    color_lab = rgb_to_lab(color.permute(0, 3, 1, 2).float() / 255)
    # For lab, the lightness input is the colour tile's own L*, so the pair describes the colour exactly.
    gray = torch.zeros(color.shape[:3], dtype=torch.uint8)
    inputs, targets = encode_batch(gray, color, space)
    if space in AB_SPACES:  # labcls encodes and decodes as lab
        inputs = color_lab[:, :1] / L_SCALE - 1
        assert (color_lab[:, 1:].abs() <= AB_SCALE).all()  # random colours here never hit the ab clip
    decoded = decode_output(inputs, targets, space)
    assert decoded.shape == color.shape and decoded.dtype == torch.uint8
    assert (decoded.int() - color.int()).abs().max() <= (0 if space == "rgb" else 1)


def test_decode_lab_with_zero_chroma_reproduces_the_gray_tile():
    gray, _ = _random_tiles()
    inputs, _ = encode_batch(gray, None, "lab")
    decoded = decode_output(inputs, torch.zeros(3, 2, 16, 16), "lab")
    assert torch.equal(decoded, gray.unsqueeze(-1).expand(-1, -1, -1, 3))


def test_decode_lab_keeps_the_input_lightness():
    # Chroma from unrelated colours, lightness from the gray tiles. Where the combination is inside the
    # sRGB gamut (no clipping), re-encoding the decoded 8-bit colour recovers the input L* up to rounding.
    gray, color = _random_tiles(n=4, size=32, seed=3)
    inputs, targets = encode_batch(gray, color, "lab")
    outputs = targets * 0.25
    decoded = decode_output(inputs, outputs, "lab")

    lab = torch.cat([(inputs + 1) * L_SCALE, outputs * AB_SCALE], dim=1)
    in_gamut = (rgb_to_lab(lab_to_rgb(lab)) - lab).abs().amax(dim=1) < 1e-2
    assert in_gamut.float().mean() > 0.5  # enough pixels for the check to mean something

    relit = rgb_to_lab(decoded.permute(0, 3, 1, 2).float() / 255)[:, 0]
    error = (relit - (inputs[:, 0] + 1) * L_SCALE).abs()
    assert error[in_gamut].max().item() <= L_ROUNDING_TOLERANCE
    assert error[in_gamut].mean().item() < 0.1


def test_decode_accepts_low_precision_outputs_and_clips_range():
    gray, _ = _random_tiles()
    inputs, _ = encode_batch(gray, None, "rgb")
    outputs = torch.linspace(-1.5, 1.5, 3 * 3 * 16 * 16).view(3, 3, 16, 16).to(torch.bfloat16)
    decoded = decode_output(inputs, outputs, "rgb")
    assert decoded.dtype == torch.uint8 and decoded.shape == (3, 16, 16, 3)
    assert decoded.flatten()[0] == 0 and decoded.flatten()[-1] == 255
    lab_decoded = decode_output(encode_batch(gray, None, "lab")[0], outputs[:, :2], "lab")
    assert lab_decoded.shape == (3, 16, 16, 3)


def test_decode_rejects_mismatched_shapes():
    inputs = torch.zeros(2, 1, 8, 8)
    with pytest.raises(ValueError, match=r"outputs must be \[N, 2, H, W\] for 'lab'"):
        decode_output(inputs, torch.zeros(2, 3, 8, 8), "lab")
    with pytest.raises(ValueError, match=r"inputs must be \[N, 1, H, W\]"):
        decode_output(torch.zeros(2, 3, 8, 8), torch.zeros(2, 3, 8, 8), "rgb")
    with pytest.raises(ValueError, match="differ in N, H or W"):
        decode_output(inputs, torch.zeros(2, 3, 8, 4), "rgb")
