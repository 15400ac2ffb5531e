"""Networks as a training config describes them: the one place a config becomes a generator or a discriminator.

The rule: a network's shape follows from the config's model fields alone (``training.config.MODEL_FIELDS``:
backbone, colour space, norm, widths, dropout, tile size, ab bins, spectral norm), so training, checkpoint
loading, export and rendering rebuild the very same modules. Weights are left at PyTorch defaults (training
applies ``networks.init_weights``; loading overwrites them). ``labcls`` wraps the backbone in
``abbins.AbBinsGenerator`` (bin logits out; bins, prior and temperature as buffers); ``palette`` wraps the
generator in ``palette.PaletteConditioned`` (palette planes in; bins and presets as buffers).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import nn

from lpd_pipeline.models import abbins, palette
from lpd_pipeline.models.colorspace import channels
from lpd_pipeline.models.networks import build_discriminator, build_generator

if TYPE_CHECKING:  # models/ never needs training/ at run time
    from lpd_pipeline.training.config import TrainConfig


def build_model_generator(config: "TrainConfig") -> nn.Module:
    """The generator described by ``config`` (training, checkpoint loading and export share it)."""
    in_ch, out_ch = channels(config.color_space)
    classes = config.color_space == "labcls"
    net = build_generator(
        config.backbone,
        in_channels=in_ch + (palette.plane_count(config.palette_grid) if config.palette else 0),
        out_channels=max(config.ngf, 32) if classes else out_ch,  # labcls: features for the 1x1 logits head
        ngf=config.ngf,
        norm=config.norm,
        use_dropout=config.use_dropout,
        image_size=config.tile_size,
    )
    if classes:
        net = abbins.AbBinsGenerator(net, config.ab_grid, config.annealed_temperature, config.rebalance_lambda,
                                     features=max(config.ngf, 32))
    if config.palette:
        net = palette.PaletteConditioned(net, config.palette_grid)
    return net


def build_model_discriminator(config: "TrainConfig") -> nn.Module:
    """The conditional PatchGAN of ``config``: it sees the generator's input beside a (real or generated) output
    (decoded a*b* for labcls). With ``spectral_norm`` every conv is spectrally normalised and the norm layers are
    dropped (the SN-GAN discriminator)."""
    in_ch, out_ch = channels(config.color_space)
    net = build_discriminator(in_channels=in_ch + out_ch, ndf=config.ndf, n_layers=config.n_layers_d,
                              norm="none" if config.spectral_norm else config.norm)
    if config.spectral_norm:
        for module in list(net.modules()):
            for name, child in list(module.named_children()):
                if isinstance(child, nn.Conv2d):
                    setattr(module, name, nn.utils.parametrizations.spectral_norm(child))
    return net
