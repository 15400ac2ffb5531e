"""Colour as classification over quantized a*b* bins (Zhang, Isola & Efros 2016, "Colorful Image Colorization").

The rule: the generator predicts, per pixel, a distribution over the in-gamut a*b* bins of a ``grid``-unit
lattice (grid 10: every bin some sRGB colour falls in, 260-odd); it is trained with a cross-entropy against a
soft encoding of the target (its ``SOFT_NEIGHBOURS`` nearest bins, Gaussian weights, sigma ``SOFT_SIGMA``),
rebalanced so that rare (saturated) colours weigh as much as the common paper browns: weight
``1 / ((1 - lambda) * p + lambda / Q)`` of the training set's own smoothed empirical prior ``p``, normalised to
mean 1 under ``p``. Decoding is the annealed mean: ``softmax(logits / T) @ centers`` (T = 0.38 between the
mean, T = 1, which is desaturated, and the mode, T -> 0, which is noisy).

The bin centres, the prior and T are buffers of :class:`AbBinsGenerator`, so every checkpoint and export holds
them: a decode is reproducible from the file alone and the prior is traceable to the training set (its data
fingerprint is in the same file). Lab units throughout (a*, b* roughly in [-110, 110]); outputs of
``decode_ab`` are a*b* / ``AB_SCALE``, the ``lab`` colour space's encoding, so everything after decoding is
shared with it.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from lpd_pipeline.models.colorspace import AB_SCALE, rgb_to_lab

SOFT_NEIGHBOURS = 5
WINDOW = 4  # lattice steps per side of the block searched first for a pixel's nearest bins
SOFT_SIGMA = 5.0  # a*b* units, for the soft encoding and for smoothing the prior
DEFAULT_GRID = 10
DEFAULT_TEMPERATURE = 0.38
DEFAULT_REBALANCE = 0.5


@functools.lru_cache(maxsize=8)
def _gamut_bins(grid: int) -> tuple[tuple[int, int], ...]:
    """Lattice indices ``(round(a / grid), round(b / grid))`` of the bins some sRGB colour falls in."""
    levels = torch.linspace(0.0, 1.0, 48)
    rgb = torch.stack(torch.meshgrid(levels, levels, levels, indexing="ij"), dim=0).reshape(3, -1, 1)
    ab = rgb_to_lab(rgb)[1:].reshape(2, -1)
    index = torch.round(ab / grid).to(torch.int64)
    return tuple(sorted({(int(a), int(b)) for a, b in index.t().unique(dim=0).tolist()}))


def bin_centers(grid: int = DEFAULT_GRID) -> torch.Tensor:
    """``[Q, 2]`` float32 a*b* centres of the in-gamut bins of a ``grid``-unit lattice (deterministic)."""
    if grid < 2 or grid > 40:
        raise ValueError(f"ab bin grid must be in [2, 40] a*b* units, got {grid}")
    return torch.tensor(_gamut_bins(grid), dtype=torch.float32) * float(grid)


def count_bins(grid: int = DEFAULT_GRID) -> int:
    return len(_gamut_bins(grid))


def _sq_distances(ab: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
    """``[N, H, W, Q]`` squared distances of the pixels of ``ab`` ([N, 2, H, W], Lab units) to the centres, as
    |p|² - 2 p·c + |c|² (one matmul: 1.6x faster than broadcasting the differences at 256², a profile of a
    labcls training step; float32 rounding ~1e-3 Lab² at |ab| ~ 100, far below the 10-unit lattice)."""
    pixels = ab.permute(0, 2, 3, 1).float()
    centers = centers.to(pixels)
    cross = pixels @ centers.t()
    return (pixels.pow(2).sum(-1, keepdim=True) - 2 * cross + centers.pow(2).sum(-1)).clamp_min(0.0)


@functools.lru_cache(maxsize=8)
def _lattice_table(grid: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(table, low, size)``: bin index (or -1) at lattice index ``(i, j) - low`` of the ``grid`` lattice's in-gamut
    bins (in the order of :func:`bin_centers`), padded by WINDOW empty slots on every side."""
    lattice = torch.tensor(_gamut_bins(grid), dtype=torch.int64)
    low = lattice.min(0).values - WINDOW
    size = lattice.max(0).values - low + WINDOW + 1
    table = torch.full(tuple(size.tolist()), -1, dtype=torch.int64)
    table[lattice[:, 0] - low[0], lattice[:, 1] - low[1]] = torch.arange(len(lattice))
    return table, low, size


def lattice_grid(centers: torch.Tensor) -> int:
    """The lattice step of bin ``centers`` (the lattice holds (±grid, 0))."""
    return int(round(float(centers.abs()[centers.abs() > 0].min())))


def bilinear_bins(ab: torch.Tensor, grid: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(weights, bins)``, each ``[..., 4]``: a*b* points ``[..., 2]`` (Lab units) split over the four lattice
    corners of their cell with bilinear weights, so the weighted mean of the corners is the point itself (a
    histogram of such weights keeps the mean colour exactly, where the nearest bin moves it up to grid/√2).
    A corner outside the gamut gets weight 0 and the others share its weight (only at the gamut's edge)."""
    table, low, size = (t.to(ab.device) for t in _lattice_table(grid))
    scaled = ab.float() / grid
    base = torch.floor(scaled)
    u, v = (scaled - base).unbind(-1)
    weights = torch.stack([(1 - u) * (1 - v), u * (1 - v), (1 - u) * v, u * v], dim=-1)
    offsets = torch.tensor([[0, 0], [1, 0], [0, 1], [1, 1]], device=ab.device)
    index = base.to(torch.int64)[..., None, :] + offsets - low
    inside = ((index >= 0) & (index < size)).all(-1)
    index = torch.minimum(index.clamp_min(0), size - 1)
    bins = table[index[..., 0], index[..., 1]].masked_fill(~inside, -1)
    weights = weights.masked_fill(bins < 0, 0.0)
    total = weights.sum(-1, keepdim=True)
    if (total <= 0).any():  # a point outside the gamut's lattice altogether: its nearest bin
        far = (total[..., 0] <= 0)
        nearest = torch.cdist(ab[far].float(), bin_centers(grid).to(ab.device)).argmin(-1)
        bins[far] = torch.stack([nearest, nearest, nearest, nearest], -1)
        weights[far] = torch.tensor([1.0, 0.0, 0.0, 0.0], device=ab.device)
        total = weights.sum(-1, keepdim=True)
    return weights / total, bins.clamp_min(0)


def _window_candidates(pixels: torch.Tensor, centers: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, float]:
    """``(squared distances, bins)``, each ``[N, H, W, WINDOW²]``, of the in-gamut bins in the WINDOW x WINDOW
    lattice block around every pixel (``pixels``: [N, H, W, 2] a*b*; out-of-gamut slots: distance inf), and the
    squared distance every bin outside the block is at least at: (2 grid)², since the block reaches two lattice
    steps beyond the pixel's cell on every side."""
    grid = lattice_grid(centers)
    table, low, size = (t.to(pixels.device) for t in _lattice_table(grid))
    corner = torch.floor(pixels / grid).to(torch.int64) - (WINDOW // 2 - 1) - low
    corner = torch.minimum(corner.clamp_min(0), size - WINDOW)  # far outside the gamut: a block of empty slots
    steps = torch.arange(WINDOW, device=pixels.device)
    bins = table[corner[..., 0, None, None] + steps[:, None], corner[..., 1, None, None] + steps].flatten(-2)
    near = centers[bins.clamp_min(0)]
    # |p|² - 2 p·c + |c|² as in _sq_distances (there as a matmul: the two differ by float rounding, ~1e-3 Lab²).
    cross = (pixels[..., None, :] * near).sum(-1)
    distances = (pixels.pow(2).sum(-1, keepdim=True) - 2 * cross + near.pow(2).sum(-1)).clamp_min(0.0)
    return distances.masked_fill(bins < 0, float("inf")), bins, float(2 * grid) ** 2


def _soft_neighbours(ab: torch.Tensor, centers: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(weights, bins)``, each ``[N, H, W, K]``: the K = SOFT_NEIGHBOURS nearest bins of every pixel (nearest
    first) and their Gaussian weights (σ = SOFT_SIGMA, summing to 1).

    Searched in two steps: the bins of the 4 x 4 lattice block around each pixel first (16 distances instead of
    260-odd: the soft encoding was a quarter of a labcls training step, bench/RESULTS.md); where the K-th nearest
    of them is not nearer than every bin outside the block can be (at the gamut's edge, or a colour outside it),
    that pixel is searched among all bins. So the bins are the K nearest of all (bins at equal distance may come
    in another order) and the weights equal the all-bins search's to float rounding (~1e-5)."""
    pixels = ab.permute(0, 2, 3, 1).float()
    centers = centers.to(pixels)
    distances, bins, outside = _window_candidates(pixels, centers)
    near_d, position = distances.topk(SOFT_NEIGHBOURS, dim=-1, largest=False)
    near_i = bins.gather(-1, position)
    unsure = ~(near_d[..., -1] < outside - 1.0)  # 1 Lab² below the bound: float rounding cannot reorder them
    if unsure.any():
        far_d, far_i = _sq_distances(pixels[unsure][:, :, None, None], centers)[:, 0, 0].topk(
            SOFT_NEIGHBOURS, dim=-1, largest=False)
        near_d, near_i = near_d.clone(), near_i.clone()
        near_d[unsure], near_i[unsure] = far_d, far_i
    return torch.softmax(-near_d / (2 * SOFT_SIGMA**2), dim=-1), near_i


def soft_encode(ab: torch.Tensor, centers: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(targets [N, Q, H, W], nearest bin [N, H, W])`` for a*b* ``[N, 2, H, W]`` in Lab units."""
    weights, near_i = _soft_neighbours(ab, centers)
    shape = (*near_i.shape[:-1], len(centers))
    targets = torch.zeros(shape, dtype=weights.dtype, device=weights.device).scatter_(-1, near_i, weights)
    return targets.permute(0, 3, 1, 2), near_i[..., 0]


def smoothed_prior(counts: torch.Tensor, centers: torch.Tensor, sigma: float = SOFT_SIGMA) -> torch.Tensor:
    """The empirical distribution of bin ``counts`` smoothed by a Gaussian over the a*b* plane (sums to 1)."""
    if counts.sum() <= 0:
        raise ValueError("cannot estimate an ab prior from no pixels")
    kernel = torch.exp(-torch.cdist(centers.double(), centers.double()) ** 2 / (2 * sigma**2))
    prior = kernel @ (counts.double() / counts.sum())
    return (prior / prior.sum()).float()


def rebalance_weights(prior: torch.Tensor, lam: float = DEFAULT_REBALANCE) -> torch.Tensor:
    """Per-bin loss weights ``1 / ((1 - lam) p + lam / Q)``, scaled so that their mean under ``p`` is 1."""
    if not 0.0 < lam <= 1.0:  # 0 would divide by the empty bins' zero prior
        raise ValueError(f"rebalancing lambda must be in (0, 1], got {lam}")
    weights = 1.0 / ((1.0 - lam) * prior.double() + lam / prior.numel())
    return (weights / (prior.double() * weights).sum()).float()


def prior_from_tiles(color_u8: np.ndarray, centers: torch.Tensor, *, chunk: int = 16, stride: int = 2
                     ) -> torch.Tensor:
    """The smoothed empirical prior of uint8 RGB tiles ``[N, H, W, 3]`` (a numpy array or memmap; every
    ``stride``-th pixel each way)."""
    counts = torch.zeros(len(centers), dtype=torch.float64)
    for start in range(0, len(color_u8), chunk):
        block = torch.from_numpy(np.ascontiguousarray(np.asarray(color_u8[start:start + chunk])[:, ::stride, ::stride]))
        ab = rgb_to_lab(block.permute(0, 3, 1, 2).float() / 255.0)[:, 1:]
        nearest = _sq_distances(ab, centers).argmin(-1)
        counts += torch.bincount(nearest.flatten(), minlength=len(centers)).double()
    return smoothed_prior(counts, centers)


def bins_head(net: nn.Module) -> "AbBinsGenerator | None":
    """The a*b* bin head in ``net`` (the generator itself, or inside palette control): what holds the decode
    temperature; None for a generator that regresses colour."""
    return next((m for m in net.modules() if isinstance(m, AbBinsGenerator)), None)


def _drop_final_tanh(net: nn.Module) -> nn.Module:
    """Replace the backbone's last Tanh by a ReLU: its output becomes features for the 1x1 logits head."""
    last = None
    for name, module in net.named_modules():
        if isinstance(module, nn.Tanh):
            last = name
    if last is None:
        raise ValueError("the backbone has no final Tanh to remove")
    parent_name, _, child = last.rpartition(".")
    parent = net.get_submodule(parent_name) if parent_name else net
    setattr(parent, child, nn.ReLU())
    return net


class AbBinsGenerator(nn.Module):
    """A pix2pix backbone giving ``features`` channels (its last Tanh made a ReLU), then a 1x1 conv to ``Q`` bin
    logits; carries its bins, prior and temperature.

    The 1x1 head keeps the cost of ``Q`` outputs small: the backbone's last layer (a 4x4 transposed conv at full
    resolution) producing 261 channels directly would cost more than the rest of a U-Net at ngf 16."""

    def __init__(self, backbone: nn.Module, grid: int = DEFAULT_GRID, temperature: float = DEFAULT_TEMPERATURE,
                 rebalance: float = DEFAULT_REBALANCE, *, features: int) -> None:
        super().__init__()
        self.backbone = _drop_final_tanh(backbone)
        centers = bin_centers(grid)
        self.head = nn.Conv2d(features, len(centers), kernel_size=1)
        self.register_buffer("centers", centers)
        self.register_buffer("prior", torch.full((len(centers),), 1.0 / len(centers)))
        self.register_buffer("temperature", torch.tensor(1.0))
        self.set_temperature(temperature)
        self.rebalance = rebalance

    @property
    def n_bins(self) -> int:
        return int(self.centers.shape[0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))

    def set_prior(self, prior: torch.Tensor) -> None:
        if prior.shape != self.prior.shape:
            raise ValueError(f"prior has {tuple(prior.shape)} bins, the generator {tuple(self.prior.shape)}")
        self.prior.copy_(prior.to(self.prior))

    def set_temperature(self, temperature: float) -> None:
        """The annealed-mean decode temperature (a buffer: saved with the weights; changing it needs no
        retraining)."""
        if not temperature > 0:
            raise ValueError(f"annealed-mean temperature must be > 0, got {temperature}")
        self.temperature.fill_(float(temperature))

    def start_at_prior(self) -> None:
        """Set the head's bias to ``T * log(prior)``, so that a generator whose head weights are still small
        decodes (at temperature T) to the prior's mean colour, the training set's average a*b*, rather than to
        the centroid of the bin lattice (a*b* about (16, 6): pink) where uniform logits land."""
        with torch.no_grad():
            self.head.bias.copy_(self.temperature * torch.log(self.prior.clamp_min(1e-12)))

    def decode_ab(self, logits: torch.Tensor) -> torch.Tensor:
        """Annealed mean a*b* / AB_SCALE ``[N, 2, H, W]`` of bin logits ``[N, Q, H, W]`` (differentiable)."""
        weights = torch.softmax(logits.float() / self.temperature, dim=1)
        # The weighted sum over bins as a 1x1 convolution: the same sum, 1.7x faster than einsum on CPU
        # (a profile of a labcls training step at 256²).
        ab = F.conv2d(weights, self.centers.float().t()[:, :, None, None])
        return ab / AB_SCALE

    def class_loss(self, logits: torch.Tensor, target_ab: torch.Tensor) -> torch.Tensor:
        """Rebalanced cross-entropy against the soft-encoded target (``target_ab``: a*b* / AB_SCALE)."""
        # Only the K soft-encoded bins of a pixel have target mass: gather their log-probabilities instead of
        # multiplying a dense [N, Q, H, W] target (the same sum).
        soft, bins = _soft_neighbours(target_ab.float() * AB_SCALE, self.centers)
        log_p = F.log_softmax(logits.float(), dim=1).permute(0, 2, 3, 1).gather(-1, bins)
        per_pixel = -(soft * log_p).sum(-1)
        weights = rebalance_weights(self.prior, self.rebalance)[bins[..., 0]]
        return (per_pixel * weights).mean()
