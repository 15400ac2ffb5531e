"""Palette control: a global a*b* histogram that conditions the generator (issue 13, section 3).

The rule: a *palette* is the normalised histogram of a colour image's a*b* over the in-gamut bins of a coarse
lattice (``palette_grid`` 30: 40 bins; every ``STRIDE``-th pixel each way), each pixel split over the four
corners of its lattice cell with bilinear weights, so the palette keeps the image's mean a*b* exactly (a
nearest-bin count would put a pale green and a pale orange in the same paper-yellow bin). The generator gets it
as constant input planes beside the lightness, each standardised by the training tiles' own statistics (buffers:
per bin mean and spread, so a palette's departure from the usual is of order 1, not the 0.01-0.1 a bin's share
moves by): ``P`` planes of the histogram and 2 of its mean a*b* (clipped to ``PLANE_CLIP`` spreads), plus one
plane that says whether a palette is given (1) or not (0, all planes 0). Training feeds each tile its own
colour tile's palette, dropped with probability ``palette_drop`` so the model also works without one (and the
ladder measures it without: the target's own histogram would leak the answer). At inference one palette
conditions every tile of a painting, so the whole painting keeps one palette: a reference painting's, or a
*preset* learned from the training set and stored with the generator (buffer ``presets``), so every checkpoint
carries its own:

- ``blue-green``: the mean palette of the quarter of training tiles with the most blue-green pigment (palette
  mass on the bins of hue 140-290°: malachite, azurite, indigo), the 青绿 look;
- ``ochre``: the same for red-brown and ochre pigment (hue 20-80°; the bare silk's yellow, ~85-90°, is not
  counted), the 浅绛 look;
- ``pale``: the quarter of tiles with the least chroma (ink on paper);
- ``average``: the mean palette of all training tiles.

A pigment preset whose tiles hold under ``MIN_PIGMENT`` of that pigment is left out (a training set without
blue-green has no ``blue-green`` preset).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from lpd_pipeline.models.abbins import bilinear_bins, bin_centers, lattice_grid
from lpd_pipeline.models.colorspace import rgb_to_lab

DEFAULT_GRID = 30
STRIDE = 4
PALETTE_VERSION = 2  # 1: nearest-bin histograms, k-means presets named by hue (before 2026-12-01)
PRESET_NAMES = ("blue-green", "ochre", "pale", "average")
N_PRESETS = len(PRESET_NAMES)
PRESET_SHARE = 0.25  # the share of training tiles each pigment / pale preset averages
PIGMENT_HUES = {"blue-green": (140.0, 290.0), "ochre": (20.0, 80.0)}  # degrees of a*b* hue
MIN_PIGMENT = 0.01  # palette mass: below it, the training set has no such pigment
PLANE_CLIP = 5.0  # standardised planes are clipped to this many training spreads
SPREAD_FLOOR = (0.01, 1.0)  # the least spread of a bin's share and of the mean a*b* (Lab units)
EXTRA_PLANES = 3  # mean a* and b*, the given-flag


def plane_count(grid: int = DEFAULT_GRID) -> int:
    """How many input planes palette control adds to a generator."""
    return palette_size(grid) + EXTRA_PLANES


def palette_size(grid: int = DEFAULT_GRID) -> int:
    return len(bin_centers(grid))


def histograms(color_u8: np.ndarray | torch.Tensor, centers: torch.Tensor, *, stride: int = STRIDE) -> torch.Tensor:
    """``[N, P]`` float32 palettes (rows sum to 1) of uint8 RGB images ``[N, H, W, 3]`` (numpy or torch, any
    device; computed on the images' device)."""
    images = torch.from_numpy(np.array(color_u8)) if isinstance(color_u8, np.ndarray) else color_u8
    if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[-1] != 3:
        raise ValueError(f"palette images must be uint8 [N, H, W, 3], got {images.dtype} {tuple(images.shape)}")
    sampled = images[:, ::stride, ::stride].permute(0, 3, 1, 2).float() / 255.0
    ab = rgb_to_lab(sampled)[:, 1:].flatten(2).transpose(1, 2)  # [N, pixels, 2]
    weights, bins = bilinear_bins(ab, lattice_grid(centers))
    counts = torch.zeros(len(ab), len(centers), device=ab.device).scatter_add_(
        1, bins.flatten(1), weights.flatten(1))
    return counts / counts.sum(1, keepdim=True)


def plane_features(palettes: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
    """``[N, P + 2]``: what the palette planes carry before standardisation, the histogram ``[N, P]`` and its
    mean a*b* (one definition for the planes and for the training statistics that standardise them)."""
    return torch.cat([palettes, palettes @ centers.to(palettes)], dim=1)


def pigment(palettes: torch.Tensor, centers: torch.Tensor, name: str) -> torch.Tensor:
    """``[N]``: the palettes' mass on the chromatic bins (chroma over half a lattice step) whose hue lies in
    ``PIGMENT_HUES[name]``."""
    low, high = PIGMENT_HUES[name]
    centers = centers.double()
    hue = torch.rad2deg(torch.atan2(centers[:, 1], centers[:, 0])) % 360
    chroma = centers.norm(dim=1)
    mask = (hue >= low) & (hue < high) & (chroma > lattice_grid(centers) / 2)
    return palettes.double()[:, mask].sum(1)


def learn_presets(palettes: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
    """``[N_PRESETS, P]`` presets in the order of ``PRESET_NAMES`` from training palettes ``[N, P]``: a row of
    zeros for a pigment the tiles lack (see the module docstring). Deterministic (ties: the earlier tile)."""
    data = palettes.double()
    share = max(1, math.ceil(len(data) * PRESET_SHARE))
    chroma = data @ centers.double().norm(dim=1)
    rows = []
    for name in PRESET_NAMES:
        if name == "average":
            rows.append(data.mean(0))
            continue
        score = -chroma if name == "pale" else pigment(data, centers, name)
        chosen = torch.argsort(score, descending=True, stable=True)[:share]
        if name != "pale" and float(score[chosen].mean()) < MIN_PIGMENT:
            rows.append(torch.zeros(data.shape[1], dtype=data.dtype))
            continue
        rows.append(data[chosen].mean(0))
    presets = torch.stack(rows)
    total = presets.sum(1, keepdim=True)
    return torch.where(total > 0, presets / total.clamp_min(1e-12), presets).float()


class PaletteConditioned(nn.Module):
    """A generator whose input gets ``plane_count`` palette planes; carries the palette bins, the training palettes'
    statistics and the learned presets."""

    def __init__(self, inner: nn.Module, grid: int = DEFAULT_GRID) -> None:
        super().__init__()
        self.inner = inner
        centers = bin_centers(grid)
        self.register_buffer("palette_centers", centers)
        self.register_buffer("presets", torch.zeros(N_PRESETS, len(centers)))
        self.register_buffer("palette_version", torch.tensor(PALETTE_VERSION))
        # Standardisation of the planes: [P + 2] means and spreads (histogram bins, then mean a*, b*).
        self.register_buffer("plane_mean", torch.zeros(len(centers) + 2))
        self.register_buffer("plane_spread", torch.ones(len(centers) + 2))

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs) -> None:
        version = state_dict.get(prefix + "palette_version")
        if version is None or int(version) != PALETTE_VERSION:
            # Its presets and its palettes (what the generator learned to follow) mean something else here.
            error_msgs.append(f"palette control of version {1 if version is None else int(version)} (nearest-bin "
                              f"palettes, k-means presets), this code reads version {PALETTE_VERSION} (bilinear "
                              "palettes, pigment presets): retrain this palette-controlled variant")
            return
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)

    @property
    def palette_bins(self) -> int:
        return int(self.palette_centers.shape[0])

    def planes(self, palette: torch.Tensor | None, like: torch.Tensor,
               given: torch.Tensor | None = None) -> torch.Tensor:
        """``[N, plane_count, H, W]``: the palette (``[P]`` or ``[N, P]``, or None) standardised, its mean a*b*
        standardised, and the given-flag, as planes (all 0 where no palette is given)."""
        n, _, h, w = like.shape
        values = torch.zeros(n, self.palette_bins + EXTRA_PLANES, device=like.device, dtype=like.dtype)
        if palette is not None:
            rows = palette.to(like).reshape(-1, self.palette_bins).expand(n, -1)
            flag = torch.ones(n, device=like.device, dtype=like.dtype) if given is None else given.to(like)
            features = plane_features(rows, self.palette_centers)
            standard = (features - self.plane_mean.to(like)) / self.plane_spread.to(like)
            values[:, :-1] = standard.clamp(-PLANE_CLIP, PLANE_CLIP) * flag[:, None]
            values[:, -1] = flag
        return values[:, :, None, None].expand(n, -1, h, w)

    def forward(self, x: torch.Tensor, palette: torch.Tensor | None = None,
                given: torch.Tensor | None = None) -> torch.Tensor:
        return self.inner(torch.cat([x, self.planes(palette, x, given)], dim=1))

    def decode_ab(self, logits: torch.Tensor) -> torch.Tensor:
        return self.inner.decode_ab(logits)

    def class_loss(self, logits: torch.Tensor, target_ab: torch.Tensor) -> torch.Tensor:
        return self.inner.class_loss(logits, target_ab)

    def set_prior(self, prior: torch.Tensor) -> None:
        self.inner.set_prior(prior)

    def start_at_prior(self) -> None:
        self.inner.start_at_prior()

    @property
    def centers(self) -> torch.Tensor:
        return self.inner.centers

    def set_presets(self, color_u8: np.ndarray, *, chunk: int = 32) -> None:
        """Learn the presets and the planes' standardisation from the training tiles (uint8 RGB ``[N, H, W, 3]``)."""
        centers = self.palette_centers.cpu()
        palettes = torch.cat([histograms(np.asarray(color_u8[i:i + chunk]), centers)
                              for i in range(0, len(color_u8), chunk)])
        self.presets.copy_(learn_presets(palettes, centers).to(self.presets))
        features = plane_features(palettes, centers).double()
        floor = torch.tensor([SPREAD_FLOOR[0]] * len(centers) + [SPREAD_FLOOR[1]] * 2, dtype=torch.float64)
        spread = features.std(0, unbiased=False) if len(features) > 1 else torch.zeros_like(floor)
        self.plane_mean.copy_(features.mean(0).to(self.plane_mean))
        self.plane_spread.copy_(torch.maximum(spread, floor).to(self.plane_spread))

    def preset_names(self) -> list[str]:
        """The names of the presets this generator has (a pigment its training set lacked is left out)."""
        return [name for name, row in zip(PRESET_NAMES, self.presets) if float(row.sum()) > 0]

    def preset(self, name: str) -> torch.Tensor:
        if name not in self.preset_names():
            raise ValueError(f"unknown palette preset {name!r}; this generator has {self.preset_names()}")
        return self.presets[PRESET_NAMES.index(name)]
