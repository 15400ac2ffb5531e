"""pix2pix networks: ResNet-9blocks and U-Net generators, the 70x70 PatchGAN discriminator, init and GAN loss.

The architectures follow the maths of the reference pix2pix implementation (Isola et al. 2017; the
junyanz/pytorch-CycleGAN-and-pix2pix code base) so parameter counts match it exactly. Differences are
deliberate and do not change the function computed:

- no in-place activations, so the modules are safe with autograd, ``torch.compile`` and channels_last;
- with ``norm="none"`` the convolutions keep their bias (the reference drops it, leaving an un-normalised
  conv with no offset at all).

Nothing here assumes a dtype or memory format: the modules run under autocast (bf16/fp16) and with
``memory_format=torch.channels_last``.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn
from torch.nn import functional as F

from lpd_pipeline.models.options import GAN_MODES, GENERATOR_BACKBONES, NORM_LAYERS

NormFactory = Callable[[int], nn.Module]


def _norm_factory(norm: str) -> NormFactory:
    """Return ``channels -> normalisation module`` for a norm name."""
    if norm == "batch":
        return lambda channels: nn.BatchNorm2d(channels, affine=True, track_running_stats=True)
    if norm == "instance":
        return lambda channels: nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    if norm == "none":
        return lambda channels: nn.Identity()
    raise ValueError(f"unknown norm {norm!r}; expected one of {NORM_LAYERS}")


def _conv_bias(norm: str) -> bool:
    # BatchNorm's affine shift makes a preceding conv bias redundant; instance norm here has no affine
    # parameters and "none" has no normalisation, so those convolutions need their own bias.
    return norm != "batch"


# --------------------------------------------------------------------------------------------- ResNet


class ResnetBlock(nn.Module):
    """Two reflection-padded 3x3 convolutions with a residual connection (optional dropout between)."""

    def __init__(self, dim: int, norm_layer: NormFactory, use_bias: bool, use_dropout: bool) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, kernel_size=3, padding=0, bias=use_bias),
            norm_layer(dim),
            nn.ReLU(),
        ]
        if use_dropout:
            layers.append(nn.Dropout(0.5))
        layers += [
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, kernel_size=3, padding=0, bias=use_bias),
            norm_layer(dim),
        ]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


class ResnetGenerator(nn.Module):
    """7x7 stem, two stride-2 downsamplings, ``n_blocks`` residual blocks, two upsamplings, 7x7 out, Tanh."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        ngf: int,
        norm: str,
        use_dropout: bool,
        n_blocks: int = 9,
    ) -> None:
        super().__init__()
        norm_layer = _norm_factory(norm)
        use_bias = _conv_bias(norm)
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(in_channels, ngf, kernel_size=7, padding=0, bias=use_bias),
            norm_layer(ngf),
            nn.ReLU(),
        ]
        n_downsampling = 2
        for i in range(n_downsampling):
            mult = 2**i
            layers += [
                nn.Conv2d(ngf * mult, ngf * mult * 2, kernel_size=3, stride=2, padding=1, bias=use_bias),
                norm_layer(ngf * mult * 2),
                nn.ReLU(),
            ]
        mult = 2**n_downsampling
        layers += [ResnetBlock(ngf * mult, norm_layer, use_bias, use_dropout) for _ in range(n_blocks)]
        for i in range(n_downsampling):
            mult = 2 ** (n_downsampling - i)
            layers += [
                nn.ConvTranspose2d(
                    ngf * mult,
                    ngf * mult // 2,
                    kernel_size=3,
                    stride=2,
                    padding=1,
                    output_padding=1,
                    bias=use_bias,
                ),
                norm_layer(ngf * mult // 2),
                nn.ReLU(),
            ]
        layers += [
            nn.ReflectionPad2d(3),
            nn.Conv2d(ngf, out_channels, kernel_size=7, padding=0),
            nn.Tanh(),
        ]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


# ---------------------------------------------------------------------------------------------- U-Net


class UnetSkipBlock(nn.Module):
    """One U-Net level: downsample, run the inner levels, upsample, and concatenate the skip.

    ``outer_channels`` is the channel count this level returns to its parent (before the skip concat);
    ``inner_channels`` is what its downsampling produces. The innermost level has no submodule; the
    outermost one consumes the image and returns the Tanh output without a skip.
    """

    def __init__(
        self,
        outer_channels: int,
        inner_channels: int,
        *,
        input_channels: int | None = None,
        submodule: nn.Module | None = None,
        outermost: bool = False,
        innermost: bool = False,
        norm_layer: NormFactory,
        use_bias: bool,
        use_dropout: bool = False,
    ) -> None:
        super().__init__()
        self.outermost = outermost
        if input_channels is None:
            input_channels = outer_channels
        down_conv = nn.Conv2d(input_channels, inner_channels, kernel_size=4, stride=2, padding=1, bias=use_bias)

        if outermost:
            up_conv = nn.ConvTranspose2d(inner_channels * 2, outer_channels, kernel_size=4, stride=2, padding=1)
            down: list[nn.Module] = [down_conv]
            up: list[nn.Module] = [nn.ReLU(), up_conv, nn.Tanh()]
        elif innermost:
            # The 1x1 bottleneck is not normalised on the way down (batch norm of a 1x1 map at batch 1 is
            # undefined), and there is no submodule whose output would be concatenated.
            up_conv = nn.ConvTranspose2d(
                inner_channels, outer_channels, kernel_size=4, stride=2, padding=1, bias=use_bias
            )
            down = [down_conv]
            up = [nn.ReLU(), up_conv, norm_layer(outer_channels)]
        else:
            up_conv = nn.ConvTranspose2d(
                inner_channels * 2, outer_channels, kernel_size=4, stride=2, padding=1, bias=use_bias
            )
            down = [down_conv, norm_layer(inner_channels)]
            up = [nn.ReLU(), up_conv, norm_layer(outer_channels)]
            if use_dropout:
                up.append(nn.Dropout(0.5))

        middle = [submodule] if submodule is not None else []
        # Inner levels start with LeakyReLU. The reference applies it in place, so its skip connection
        # carries the *activated* input; we keep that math, explicitly.
        self.down_activation = nn.Identity() if outermost else nn.LeakyReLU(0.2)
        self.model = nn.Sequential(*down, *middle, *up)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        activated = self.down_activation(x)
        if self.outermost:
            return self.model(activated)
        return torch.cat([activated, self.model(activated)], dim=1)


class UnetGenerator(nn.Module):
    """U-Net with ``num_downs`` stride-2 levels; an input of 2**num_downs pixels reaches a 1x1 bottleneck."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        num_downs: int,
        ngf: int,
        norm: str,
        use_dropout: bool,
    ) -> None:
        super().__init__()
        if num_downs < 5:
            raise ValueError(f"a U-Net needs at least 5 downsamplings, got num_downs={num_downs}")
        self.num_downs = num_downs
        norm_layer = _norm_factory(norm)
        common = dict(norm_layer=norm_layer, use_bias=_conv_bias(norm))

        block = UnetSkipBlock(ngf * 8, ngf * 8, innermost=True, **common)
        # The levels between the bottleneck and the ngf*4 level all have ngf*8 channels; only these get
        # dropout (the reference's source of noise for pix2pix: three blocks at 256 px).
        for _ in range(num_downs - 5):
            block = UnetSkipBlock(ngf * 8, ngf * 8, submodule=block, use_dropout=use_dropout, **common)
        block = UnetSkipBlock(ngf * 4, ngf * 8, submodule=block, **common)
        block = UnetSkipBlock(ngf * 2, ngf * 4, submodule=block, **common)
        block = UnetSkipBlock(ngf, ngf * 2, submodule=block, **common)
        self.model = UnetSkipBlock(
            out_channels, ngf, input_channels=in_channels, submodule=block, outermost=True, **common
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def unet_num_downs(image_size: int) -> int:
    """Downsamplings for a U-Net on ``image_size`` tiles: log2(size), capped at the U-Net-256's 8.

    Raises ``ValueError`` unless ``image_size`` is a power of two and at least 32 (5 levels are the minimum
    the architecture has: bottleneck, three fixed-width levels and the outermost one).
    """
    if not isinstance(image_size, int) or image_size < 32 or image_size & (image_size - 1):
        raise ValueError(
            f"unet256 needs image_size to be a power of two >= 32 (e.g. 32, 64, 128, 256), got {image_size!r}"
        )
    return min(8, int(math.log2(image_size)))


# ---------------------------------------------------------------------------------------------- builders


def build_generator(
    backbone: str,
    *,
    in_channels: int = 1,
    out_channels: int = 3,
    ngf: int = 64,
    norm: str = "batch",
    use_dropout: bool = True,
    image_size: int = 256,
) -> nn.Module:
    """Build a generator: ``"resnet9"`` (ResNet-9blocks) or ``"unet256"`` (U-Net, 8 levels at 256 px).

    ``image_size`` is the tile size the network will see. The U-Net uses ``min(8, log2(image_size))``
    levels so small test tiles still reach a 1x1 bottleneck; the ResNet needs a multiple of 4.
    Weights are left at PyTorch defaults; call :func:`init_weights` for the pix2pix initialisation.
    """
    _norm_factory(norm)  # validate early with a clear message
    if in_channels < 1 or out_channels < 1 or ngf < 1:
        raise ValueError(
            f"channel counts must be positive, got in_channels={in_channels}, out_channels={out_channels}, ngf={ngf}"
        )
    if backbone == "resnet9":
        if not isinstance(image_size, int) or image_size < 4 or image_size % 4:
            raise ValueError(f"resnet9 needs image_size to be a positive multiple of 4, got {image_size!r}")
        return ResnetGenerator(in_channels, out_channels, ngf, norm, use_dropout, n_blocks=9)
    if backbone == "unet256":
        return UnetGenerator(in_channels, out_channels, unet_num_downs(image_size), ngf, norm, use_dropout)
    raise ValueError(f"unknown generator backbone {backbone!r}; expected one of {GENERATOR_BACKBONES}")


class NLayerDiscriminator(nn.Module):
    """PatchGAN: with ``n_layers=3`` each output logit sees a 70x70 receptive field of the input."""

    def __init__(self, in_channels: int, ndf: int, n_layers: int, norm: str) -> None:
        super().__init__()
        norm_layer = _norm_factory(norm)
        use_bias = _conv_bias(norm)
        kernel, padding = 4, 1
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, ndf, kernel_size=kernel, stride=2, padding=padding),
            nn.LeakyReLU(0.2),
        ]
        mult = 1
        for n in range(1, n_layers):
            prev_mult, mult = mult, min(2**n, 8)
            layers += [
                nn.Conv2d(ndf * prev_mult, ndf * mult, kernel_size=kernel, stride=2, padding=padding, bias=use_bias),
                norm_layer(ndf * mult),
                nn.LeakyReLU(0.2),
            ]
        prev_mult, mult = mult, min(2**n_layers, 8)
        layers += [
            nn.Conv2d(ndf * prev_mult, ndf * mult, kernel_size=kernel, stride=1, padding=padding, bias=use_bias),
            norm_layer(ndf * mult),
            nn.LeakyReLU(0.2),
            nn.Conv2d(ndf * mult, 1, kernel_size=kernel, stride=1, padding=padding),
        ]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def build_discriminator(*, in_channels: int = 4, ndf: int = 64, n_layers: int = 3, norm: str = "batch") -> nn.Module:
    """Build the conditional PatchGAN; ``in_channels`` = generator input + output channels (1 + 3 for rgb).

    It returns raw logits of shape ``[N, 1, h, w]`` (30x30 for 256 px input with ``n_layers=3``).
    """
    _norm_factory(norm)
    if in_channels < 1 or ndf < 1 or n_layers < 1:
        raise ValueError(
            f"need in_channels, ndf, n_layers >= 1, got in_channels={in_channels}, ndf={ndf}, n_layers={n_layers}"
        )
    return NLayerDiscriminator(in_channels, ndf, n_layers, norm)


# ----------------------------------------------------------------------------------------- init, loss, misc


@torch.no_grad()
def init_weights(net: nn.Module, init_gain: float = 0.02) -> nn.Module:
    """pix2pix init: conv/linear weights ~ N(0, gain), biases 0; batch-norm weights ~ N(1, gain), biases 0."""
    for module in net.modules():
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(module.weight, 0.0, init_gain)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.normal_(module.weight, 1.0, init_gain)
            nn.init.zeros_(module.bias)
    return net


class GANLoss(nn.Module):
    """Adversarial loss against a constant real/fake target: ``"vanilla"`` (BCE on logits), ``"lsgan"`` (MSE) or
    ``"hinge"`` (margin 1 for the discriminator, ``-mean`` for the generator; SN-GAN).

    The loss is always computed in float32 with autocast disabled: a low-precision BCE/MSE over many patch
    logits loses precision or overflows under fp16.
    """

    def __init__(self, mode: str = "vanilla", real_label: float = 1.0, fake_label: float = 0.0) -> None:
        super().__init__()
        if mode not in GAN_MODES:
            raise ValueError(f"unknown GAN loss mode {mode!r}; expected one of {GAN_MODES}")
        self.mode = mode
        self.real_label = float(real_label)
        self.fake_label = float(fake_label)

    def forward(self, prediction: torch.Tensor, target_is_real: bool, *, generator: bool = False) -> torch.Tensor:
        """The loss of ``prediction`` against the real (or fake) label. ``generator`` marks the generator's step:
        only the hinge loss differs there (``-mean(D)`` instead of the discriminator's margin)."""
        with torch.autocast(device_type=prediction.device.type, enabled=False):
            logits = prediction.float()
            if self.mode == "hinge":
                if generator:
                    return -logits.mean()
                return F.relu(1.0 - logits).mean() if target_is_real else F.relu(1.0 + logits).mean()
            target = torch.full_like(logits, self.real_label if target_is_real else self.fake_label)
            if self.mode == "vanilla":
                return F.binary_cross_entropy_with_logits(logits, target)
            return F.mse_loss(logits, target)

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}, real_label={self.real_label}, fake_label={self.fake_label}"


def count_parameters(net: nn.Module, *, trainable_only: bool = False) -> int:
    """Number of parameter elements in ``net`` (all of them unless ``trainable_only``)."""
    return sum(p.numel() for p in net.parameters() if p.requires_grad or not trainable_only)
