"""ab classification (Zhang et al. 2016): bins in gamut, soft encoding, prior, rebalancing, annealed-mean decode."""

import numpy as np
import pytest
import torch

from lpd_pipeline.models import abbins
from lpd_pipeline.models.colorspace import AB_SCALE, rgb_to_lab
from lpd_pipeline.models.networks import build_generator


def test_bins_cover_the_srgb_gamut_and_nothing_far_outside():
    centers = abbins.bin_centers(10)
    assert 200 < len(centers) < 320 and abbins.count_bins(10) == len(centers)
    assert torch.equal(centers, abbins.bin_centers(10))  # deterministic
    colours = torch.rand(3, 4000, 1, generator=torch.Generator().manual_seed(0))
    ab = rgb_to_lab(colours)[1:].reshape(2, -1).t()
    nearest = torch.cdist(ab, centers).min(dim=1).values
    assert nearest.max() <= 10 * 2**0.5 / 2 + 1e-3  # every sRGB colour lies in a kept bin
    assert (centers == 0).all(dim=1).any()  # neutral gray is a bin
    with pytest.raises(ValueError, match="grid"):
        abbins.bin_centers(1)


def test_soft_encoding_puts_the_mass_near_the_colour():
    centers = abbins.bin_centers(10)
    ab = torch.tensor([[40.0, -30.0], [2.0, 3.0]]).t().reshape(1, 2, 2, 1)
    targets, nearest = abbins.soft_encode(ab, centers)
    assert targets.shape == (1, len(centers), 2, 1)
    assert torch.allclose(targets.sum(1), torch.ones(1, 2, 1))
    assert (targets > 0).sum(1).eq(abbins.SOFT_NEIGHBOURS).all()
    assert torch.equal(centers[nearest[0, 0, 0]], torch.tensor([40.0, -30.0]))
    expected = (targets[0, :, 0, 0, None] * centers).sum(0)
    assert torch.allclose(expected, torch.tensor([40.0, -30.0]), atol=1.0)


@pytest.mark.parametrize("grid", [2, 10, 40])
def test_windowed_neighbour_search_equals_the_search_over_all_bins(grid):
    """The 4x4-block search finds the same K nearest bins as the distances to every bin, for sRGB colours, colours
    anywhere in the a*b* square (out of gamut: the edge fallback) and points on the lattice (ties)."""
    centers = abbins.bin_centers(grid)
    rng = torch.Generator().manual_seed(grid)
    samples = torch.cat([
        rgb_to_lab(torch.rand(1, 3, 24, 24, generator=rng))[:, 1:],
        (torch.rand(1, 2, 24, 24, generator=rng) * 2 - 1) * AB_SCALE * 1.5,
        centers[torch.randint(len(centers), (24 * 24,), generator=rng)].t().reshape(1, 2, 24, 24),
    ])
    weights, bins = abbins._soft_neighbours(samples, centers)
    pixels = samples.permute(0, 2, 3, 1).double()
    every = torch.cdist(pixels.reshape(-1, 2), centers.double()).reshape(*pixels.shape[:-1], -1)
    best = every.topk(abbins.SOFT_NEIGHBOURS, dim=-1, largest=False).values
    found = every.gather(-1, bins)
    assert torch.allclose(found, best, atol=1e-3)  # the same distances, nearest first (tied bins may swap)
    assert (bins.sort(-1).values.diff(dim=-1) > 0).all()  # K distinct bins
    assert torch.allclose(weights, torch.softmax(-best.float() ** 2 / (2 * abbins.SOFT_SIGMA**2), -1), atol=1e-4)


def test_prior_and_rebalancing():
    centers = abbins.bin_centers(10)
    brown = np.zeros((4, 8, 8, 3), dtype=np.uint8) + np.array([150, 120, 80], dtype=np.uint8)
    prior = abbins.prior_from_tiles(brown, centers)
    assert prior.sum().item() == pytest.approx(1.0, abs=1e-5) and (prior >= 0).all()
    brown_ab = rgb_to_lab(torch.tensor([150, 120, 80.0]).view(3, 1, 1) / 255)[1:].flatten()
    assert torch.cdist(brown_ab[None], centers[prior.argmax()][None]).item() < 8  # the mass is at the brown
    weights = abbins.rebalance_weights(prior, 0.5)
    assert (prior * weights).sum().item() == pytest.approx(1.0, abs=1e-5)
    assert weights[prior.argmax()] < weights[prior.argmin()]  # rare colours weigh more
    with pytest.raises(ValueError, match="lambda"):
        abbins.rebalance_weights(prior, 0.0)  # the empty bins' zero prior would give infinite weights
    assert torch.allclose(abbins.rebalance_weights(prior, 1.0), torch.ones_like(prior))  # lambda 1: none
    with pytest.raises(ValueError, match="no pixels"):
        abbins.smoothed_prior(torch.zeros(len(centers)), centers)


def test_generator_wrapper_decodes_the_annealed_mean():
    net = abbins.AbBinsGenerator(build_generator("unet256", out_channels=8, ngf=4, image_size=32), temperature=0.38,
                                 features=8)
    assert not any(isinstance(m, torch.nn.Tanh) for m in net.modules())  # logits are unbounded
    assert net(torch.zeros(1, 1, 32, 32)).shape == (1, abbins.count_bins(10), 32, 32)
    assert {"centers", "prior", "temperature"} <= set(net.state_dict())  # saved with every checkpoint
    logits = torch.full((1, net.n_bins, 2, 2), -20.0)
    target = int(((net.centers - torch.tensor([30.0, 50.0])) ** 2).sum(1).argmin())
    logits[:, target] = 0.0
    ab = net.decode_ab(logits) * AB_SCALE
    assert torch.allclose(ab, net.centers[target].view(1, 2, 1, 1).expand(1, 2, 2, 2), atol=1e-3)
    # The annealed mean sharpens towards the mode: T = 1 is the plain mean, lower T is more saturated.
    logits = torch.randn(1, net.n_bins, 4, 4, generator=torch.Generator().manual_seed(0)) * 2
    mean_t1 = abbins.AbBinsGenerator(build_generator("unet256", out_channels=8, ngf=4, image_size=32),
                                     temperature=1.0, features=8).decode_ab(logits)
    assert net.decode_ab(logits).norm(dim=1).mean() > mean_t1.norm(dim=1).mean()
    loss = net.class_loss(torch.zeros(1, net.n_bins, 2, 2, requires_grad=True), torch.zeros(1, 2, 2, 2))
    assert loss.item() == pytest.approx(np.log(net.n_bins) * abbins.rebalance_weights(net.prior)[0].item(), rel=1e-4)
    with pytest.raises(ValueError, match="temperature"):
        abbins.AbBinsGenerator(build_generator("unet256", out_channels=4, ngf=4, image_size=32), temperature=0,
                               features=4)


def test_head_started_at_the_prior_paints_the_mean_colour_not_the_lattice_centroid():
    torch.manual_seed(0)
    net = abbins.AbBinsGenerator(build_generator("unet256", out_channels=8, ngf=4, image_size=32), temperature=0.6,
                                 features=8)
    torch.nn.init.normal_(net.head.weight, 0.0, 0.02)  # pix2pix's initialisation: small weights, zero bias
    torch.nn.init.zeros_(net.head.bias)
    beige = np.zeros((4, 8, 8, 3), dtype=np.uint8) + np.array([190, 170, 130], dtype=np.uint8)
    net.set_prior(abbins.prior_from_tiles(beige, net.centers))
    prior_mean = (net.prior[:, None] * net.centers).sum(0)
    gray = torch.rand(2, 1, 32, 32) * 2 - 1
    with torch.no_grad():
        before = (net.decode_ab(net(gray)) * AB_SCALE).mean((0, 2, 3))
        net.start_at_prior()
        after = (net.decode_ab(net(gray)) * AB_SCALE).mean((0, 2, 3))
    assert torch.dist(before, net.centers.mean(0)) < 3  # uniform logits: the lattice's centroid (pink)
    assert torch.dist(after, prior_mean) < 3  # started at the prior: the training colour
    assert torch.dist(after, before) > 8
