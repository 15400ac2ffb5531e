"""Palette control: a global a*b* histogram that conditions the generator (issue 13, section 3).

The rule: a *palette* is the normalised histogram of a colour image's a*b* over the in-gamut bins of a coarse
lattice (``palette_grid`` 30: 40 bins; every ``STRIDE``-th pixel each way). The generator gets it as ``P``
constant input planes beside the lightness, plus one plane that says whether a palette is given (1) or not (0,
all planes 0). Training feeds each tile its own colour tile's palette, dropped with probability
``palette_drop`` so the model also works without one (and the ladder measures it without: the target's own
histogram would leak the answer). At inference one palette conditions every tile of a painting, so the whole
painting keeps one palette: a reference painting's, or a *preset* learned from the training set — k-means over
the training tiles' palettes, named by the hue of their chroma (blue-green, ochre, ...), stored with the
generator (buffer ``presets``) so every checkpoint carries its own.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from lpd_pipeline.models.abbins import bin_centers
from lpd_pipeline.models.colorspace import rgb_to_lab

DEFAULT_GRID = 30
STRIDE = 4
N_PRESETS = 4
NEUTRAL_CHROMA = 6.0  # a*b* units: below this a preset reads as paper/ink, not a colour


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
    nearest = torch.cdist(ab, centers.to(ab).expand(len(ab), -1, -1)).argmin(-1)
    counts = torch.zeros(len(ab), len(centers), device=ab.device).scatter_add_(
        1, nearest, torch.ones_like(nearest, dtype=torch.float32))
    return counts / counts.sum(1, keepdim=True)


def learn_presets(palettes: torch.Tensor, k: int = N_PRESETS, *, seed: int = 0, iterations: int = 30
                  ) -> torch.Tensor:
    """``[k, P]`` k-means centres of training palettes ``[N, P]`` (k-means++ start from ``seed``; deterministic)."""
    data = palettes.double()
    k = min(k, len(data))
    generator = torch.Generator().manual_seed(seed)
    centres = data[torch.randint(len(data), (1,), generator=generator)]
    while len(centres) < k:
        distance = torch.cdist(data, centres).min(1).values ** 2
        if distance.sum() <= 0:
            break
        centres = torch.cat([centres, data[torch.multinomial(distance, 1, generator=generator)]])
    for _ in range(iterations):
        label = torch.cdist(data, centres).argmin(1)
        centres = torch.stack([data[label == j].mean(0) if (label == j).any() else centres[j]
                               for j in range(len(centres))])
    return (centres / centres.sum(1, keepdim=True)).float()


def describe(palette: torch.Tensor, centers: torch.Tensor) -> str:
    """A name for a palette from the hue of its mean a*b*: red, ochre, green, blue-green, violet, or pale (mean
    chroma below ``NEUTRAL_CHROMA``)."""
    ab = (palette.double()[:, None] * centers.double()).sum(0)  # the palette's mean a*b*
    if ab.norm() < NEUTRAL_CHROMA:
        return "pale"
    hue = math.degrees(math.atan2(float(ab[1]), float(ab[0]))) % 360
    # Hue of the mean a*b* (the lattice is coarse: broad families, not shades).
    for limit, name in ((45, "red"), (105, "ochre"), (160, "green"), (260, "blue-green"), (320, "violet"),
                        (360, "red")):
        if hue < limit:
            return name
    return "red"


def preset_names(presets: torch.Tensor, centers: torch.Tensor) -> list[str]:
    """Unique names of the presets (a repeated name gets -2, -3...)."""
    names: list[str] = []
    for row in presets:
        name = describe(row, centers)
        count = sum(1 for n in names if n == name or n.startswith(name + "-"))
        names.append(name if count == 0 else f"{name}-{count + 1}")
    return names


class PaletteConditioned(nn.Module):
    """A generator whose input gets ``P + 1`` palette planes; carries the palette bins and the learned presets."""

    def __init__(self, inner: nn.Module, grid: int = DEFAULT_GRID) -> None:
        super().__init__()
        self.inner = inner
        centers = bin_centers(grid)
        self.register_buffer("palette_centers", centers)
        self.register_buffer("presets", torch.zeros(N_PRESETS, len(centers)))

    @property
    def palette_bins(self) -> int:
        return int(self.palette_centers.shape[0])

    def planes(self, palette: torch.Tensor | None, like: torch.Tensor,
               given: torch.Tensor | None = None) -> torch.Tensor:
        """``[N, P + 1, H, W]``: the palette (``[P]`` or ``[N, P]``, or None) and the given-flag, as planes."""
        n, _, h, w = like.shape
        values = torch.zeros(n, self.palette_bins + 1, device=like.device, dtype=like.dtype)
        if palette is not None:
            rows = palette.to(like).reshape(-1, self.palette_bins).expand(n, -1)
            flag = torch.ones(n, device=like.device, dtype=like.dtype) if given is None else given.to(like)
            values[:, :-1] = rows * flag[:, None]
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
        """Learn the presets from the training tiles (uint8 RGB ``[N, H, W, 3]``)."""
        palettes = torch.cat([histograms(np.asarray(color_u8[i:i + chunk]), self.palette_centers.cpu())
                              for i in range(0, len(color_u8), chunk)])
        learned = learn_presets(palettes, N_PRESETS)
        self.presets.zero_()
        self.presets[:len(learned)] = learned.to(self.presets)

    def preset_names(self) -> list[str]:
        return preset_names(self.presets.cpu(), self.palette_centers.cpu())

    def preset(self, name: str) -> torch.Tensor:
        names = self.preset_names()
        if name not in names:
            raise ValueError(f"unknown palette preset {name!r}; this generator has {names}")
        return self.presets[names.index(name)]
