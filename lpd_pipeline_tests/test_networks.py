"""pix2pix networks: reference parameter counts, shapes, norms, receptive field, init, GAN loss, formats."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from lpd_pipeline.models.networks import (
    GENERATOR_BACKBONES,
    GANLoss,
    build_discriminator,
    build_generator,
    count_parameters,
    init_weights,
    unet_num_downs,
)

torch.set_num_threads(1)  # tests share 2 cores with other work; tiny models are not faster with more


def _seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ------------------------------------------------------------------------------------ reference parity


@pytest.mark.parametrize(
    ("backbone", "expected"),
    [("unet256", 54_411_907), ("resnet9", 11_377_155)],
)
def test_generator_parameter_counts_match_reference(backbone, expected):
    net = build_generator(backbone, in_channels=1, out_channels=3, ngf=64, norm="batch")
    assert count_parameters(net) == expected


def test_patchgan_parameter_count_matches_reference():
    assert count_parameters(build_discriminator(in_channels=4, ndf=64, n_layers=3, norm="batch")) == 2_766_657


def test_count_parameters_trainable_only():
    net = build_discriminator(ndf=8)
    total = count_parameters(net)
    first_conv = net.model[0]
    first_conv.requires_grad_(False)
    frozen = sum(p.numel() for p in first_conv.parameters())
    assert count_parameters(net) == total
    assert count_parameters(net, trainable_only=True) == total - frozen


# ------------------------------------------------------------------------------------------ shapes


@pytest.mark.parametrize(
    ("backbone", "size"),
    [("resnet9", 256), ("resnet9", 36), ("unet256", 256), ("unet256", 64), ("unet256", 32)],
)
@pytest.mark.parametrize("out_channels", [3, 2])
def test_generator_output_shape(backbone, size, out_channels):
    net = build_generator(backbone, out_channels=out_channels, ngf=8, image_size=size).eval()
    x = torch.rand(1, 1, size, size, generator=_seeded()) * 2 - 1
    with torch.no_grad():
        y = net(x)
    assert y.shape == (1, out_channels, size, size)
    assert y.dtype == torch.float32
    assert y.abs().max() <= 1.0  # Tanh output


def test_unet_depth_follows_image_size():
    assert unet_num_downs(256) == 8
    assert unet_num_downs(1024) == 8
    assert unet_num_downs(128) == 7
    assert unet_num_downs(32) == 5
    # The count is visible in the built network: one stride-2 convolution per level.
    for size, downs in [(256, 8), (64, 6)]:
        net = build_generator("unet256", ngf=4, image_size=size)
        strided = [m for m in net.modules() if isinstance(m, nn.Conv2d) and m.stride == (2, 2)]
        assert len(strided) == downs


@pytest.mark.parametrize("bad_size", [16, 0, -64, 48, 100, 255, 64.0])
def test_unet_rejects_bad_image_size(bad_size):
    with pytest.raises(ValueError, match=r"power of two >= 32"):
        build_generator("unet256", image_size=bad_size)


def test_resnet_rejects_size_not_multiple_of_four():
    with pytest.raises(ValueError, match="multiple of 4"):
        build_generator("resnet9", image_size=30)


def test_unknown_backbone_and_norm_are_rejected():
    with pytest.raises(ValueError, match="unknown generator backbone 'unet128'"):
        build_generator("unet128")
    with pytest.raises(ValueError, match="unknown norm 'group'"):
        build_generator("resnet9", norm="group")
    with pytest.raises(ValueError, match="unknown norm 'layer'"):
        build_discriminator(norm="layer")
    assert GENERATOR_BACKBONES == ("resnet9", "unet256")


def test_patchgan_output_is_30x30_for_256_input():
    net = build_discriminator(in_channels=4, ndf=8).eval()
    with torch.no_grad():
        y = net(torch.rand(2, 4, 256, 256, generator=_seeded()))
    assert y.shape == (2, 1, 30, 30)


def test_patchgan_receptive_field_is_70x70():
    # The input pixels that influence one output logit span exactly 70x70 (BN off so pixels do not mix).
    net = build_discriminator(in_channels=4, ndf=4, norm="none")
    x = torch.rand(1, 4, 128, 128, generator=_seeded(), requires_grad=True)
    out = net(x)
    out[0, 0, out.shape[2] // 2, out.shape[3] // 2].backward()
    influence = x.grad.abs().sum(dim=(0, 1)) > 0
    rows = influence.any(dim=1).nonzero().flatten()
    cols = influence.any(dim=0).nonzero().flatten()
    assert rows.max() - rows.min() + 1 == 70
    assert cols.max() - cols.min() + 1 == 70


# ------------------------------------------------------------------------------------ norms, dropout


def _convs(net: nn.Module) -> list[nn.Module]:
    return [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]


@pytest.mark.parametrize("backbone", GENERATOR_BACKBONES)
def test_norm_variants(backbone):
    batch = build_generator(backbone, ngf=4, norm="batch")
    batch_norms = [m for m in batch.modules() if isinstance(m, nn.BatchNorm2d)]
    assert batch_norms and all(m.affine and m.track_running_stats for m in batch_norms)
    # Only the output convolution keeps a bias when batch norm follows the others.
    assert sum(m.bias is not None for m in _convs(batch)) == 1

    instance = build_generator(backbone, ngf=4, norm="instance")
    instance_norms = [m for m in instance.modules() if isinstance(m, nn.InstanceNorm2d)]
    assert len(instance_norms) == len(batch_norms)
    assert not any(m.affine or m.track_running_stats for m in instance_norms)
    assert all(m.bias is not None for m in _convs(instance))

    plain = build_generator(backbone, ngf=4, norm="none")
    assert not any(isinstance(m, (nn.BatchNorm2d, nn.InstanceNorm2d)) for m in plain.modules())
    assert all(m.bias is not None for m in _convs(plain))

    for norm in ("instance", "none"):
        net = build_generator(backbone, ngf=4, norm=norm, image_size=32)
        with torch.no_grad():
            assert net(torch.zeros(1, 1, 32, 32)).shape == (1, 3, 32, 32)


def test_discriminator_norm_variants():
    assert sum(isinstance(m, nn.BatchNorm2d) for m in build_discriminator(ndf=4).modules()) == 3
    assert sum(isinstance(m, nn.InstanceNorm2d) for m in build_discriminator(ndf=4, norm="instance").modules()) == 3


def test_dropout_placement():
    def dropouts(net: nn.Module) -> list[nn.Dropout]:
        return [m for m in net.modules() if isinstance(m, nn.Dropout)]

    assert len(dropouts(build_generator("unet256", ngf=4))) == 3  # the three inner ngf*8 decoder levels
    assert all(m.p == 0.5 for m in dropouts(build_generator("unet256", ngf=4)))
    assert len(dropouts(build_generator("unet256", ngf=4, image_size=64))) == 1
    assert dropouts(build_generator("unet256", ngf=4, use_dropout=False)) == []
    assert len(dropouts(build_generator("resnet9", ngf=4))) == 9
    assert dropouts(build_generator("resnet9", ngf=4, use_dropout=False)) == []


@pytest.mark.parametrize("backbone", GENERATOR_BACKBONES)
def test_every_parameter_receives_a_gradient(backbone):
    net = init_weights(build_generator(backbone, ngf=4, image_size=32))
    disc = init_weights(build_discriminator(ndf=4))
    x = torch.rand(2, 1, 32, 32, generator=_seeded()) * 2 - 1
    fake = net(x)
    loss = GANLoss("vanilla")(disc(torch.cat([x, fake], dim=1)), True) + (fake - 0.1).abs().mean()
    loss.backward()
    for name, p in list(net.named_parameters()) + list(disc.named_parameters()):
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


# ---------------------------------------------------------------------------------------------- init


def test_init_weights_statistics():
    torch.manual_seed(0)
    net = init_weights(build_generator("resnet9", ngf=64))
    conv_weights = torch.cat([m.weight.flatten() for m in _convs(net)])
    assert abs(conv_weights.mean().item()) < 1e-3
    assert conv_weights.std().item() == pytest.approx(0.02, rel=0.01)
    assert all((m.bias == 0).all() for m in _convs(net) if m.bias is not None)

    norms = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    bn_weights = torch.cat([m.weight.flatten() for m in norms])
    assert bn_weights.mean().item() == pytest.approx(1.0, abs=0.003)
    assert bn_weights.std().item() == pytest.approx(0.02, rel=0.1)
    assert all((m.bias == 0).all() for m in norms)


def test_init_weights_gain_and_linear():
    torch.manual_seed(0)
    net = init_weights(nn.Sequential(nn.Linear(400, 500), nn.Conv2d(8, 8, 3)), init_gain=0.05)
    assert net[0].weight.std().item() == pytest.approx(0.05, rel=0.02)
    assert (net[0].bias == 0).all() and (net[1].bias == 0).all()


# ---------------------------------------------------------------------------------------------- loss


def test_vanilla_gan_loss_values():
    loss = GANLoss("vanilla")
    zeros = torch.zeros(2, 1, 30, 30)
    assert loss(zeros, True).item() == pytest.approx(math.log(2))
    assert loss(zeros, False).item() == pytest.approx(math.log(2))
    twos = torch.full((1, 1, 4, 4), 2.0)
    assert loss(twos, True).item() == pytest.approx(math.log1p(math.exp(-2.0)), rel=1e-6)
    assert loss(twos, False).item() == pytest.approx(math.log1p(math.exp(2.0)), rel=1e-6)


def test_lsgan_loss_values():
    loss = GANLoss("lsgan")
    pred = torch.tensor([[[[0.25, 1.0], [0.0, -1.0]]]])
    assert loss(pred, True).item() == pytest.approx((0.75**2 + 0 + 1 + 4) / 4)
    assert loss(pred, False).item() == pytest.approx((0.25**2 + 1 + 0 + 1) / 4)


def test_gan_loss_is_float32_under_autocast_and_low_precision_inputs():
    # 300^2 overflows float16 (max 65504); the loss must be computed in float32 regardless.
    pred = torch.full((1, 1, 3, 3), 300.0, dtype=torch.float16)
    assert GANLoss("lsgan")(pred, False).item() == pytest.approx(90000.0)
    assert GANLoss("lsgan")(pred, True).item() == pytest.approx(299.0**2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = GANLoss("vanilla")(torch.full((2, 1, 3, 3), 2.0, dtype=torch.bfloat16), True)
    assert out.dtype == torch.float32
    assert out.item() == pytest.approx(math.log1p(math.exp(-2.0)), rel=1e-6)


def test_gan_loss_rejects_unknown_mode():
    with pytest.raises(ValueError, match="unknown GAN loss mode 'wgan'"):
        GANLoss("wgan")


# ----------------------------------------------------------------------------- memory format, autocast


@pytest.mark.parametrize("backbone", GENERATOR_BACKBONES)
def test_channels_last_forward_matches_contiguous(backbone):
    torch.manual_seed(0)
    gen = init_weights(build_generator(backbone, ngf=8, image_size=64)).eval()
    disc = init_weights(build_discriminator(ndf=8)).eval()
    x = torch.rand(2, 1, 64, 64, generator=_seeded()) * 2 - 1
    with torch.no_grad():
        reference_fake = gen(x)
        reference_logits = disc(torch.cat([x, reference_fake], dim=1))
        gen_cl = gen.to(memory_format=torch.channels_last)
        disc_cl = disc.to(memory_format=torch.channels_last)
        x_cl = x.contiguous(memory_format=torch.channels_last)
        fake = gen_cl(x_cl)
        logits = disc_cl(torch.cat([x_cl, fake], dim=1))
    torch.testing.assert_close(fake, reference_fake, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(logits, reference_logits, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("backbone", GENERATOR_BACKBONES)
def test_autocast_bfloat16_forward_and_backward(backbone):
    gen = init_weights(build_generator(backbone, ngf=8, image_size=32))
    disc = init_weights(build_discriminator(ndf=8))
    x = torch.rand(2, 1, 32, 32, generator=_seeded()) * 2 - 1
    with torch.autocast("cpu", dtype=torch.bfloat16):
        fake = gen(x)
        loss = GANLoss("lsgan")(disc(torch.cat([x, fake], dim=1)), True)
    assert fake.shape == (2, 3, 32, 32)
    assert torch.isfinite(fake.float()).all()
    assert loss.dtype == torch.float32
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in gen.parameters())


def test_unet_skip_carries_the_activated_input_like_the_reference():
    """The reference's in-place LeakyReLU makes each skip connection carry LeakyReLU(x), not x."""
    import torch.nn.functional as F

    from lpd_pipeline.models.networks import UnetSkipBlock

    net = build_generator("unet256", ngf=8, image_size=32).eval()
    inner_blocks = [m for m in net.modules() if isinstance(m, UnetSkipBlock) and not m.outermost]
    block = inner_blocks[0]
    x = torch.randn(1, block.model[0].in_channels, 16, 16)
    with torch.no_grad():
        out = block(x)
    torch.testing.assert_close(out[:, : x.shape[1]], F.leaky_relu(x, 0.2))
