"""Networks as a training config describes them: the one place a config becomes a generator or a discriminator.

The rule: a network's shape follows from the config's model fields alone (``training.config.MODEL_FIELDS``:
backbone, colour space, norm, widths, dropout, tile size), so training, checkpoint loading, export and
rendering rebuild the very same modules. Weights are left at PyTorch defaults (training applies
``networks.init_weights``; loading overwrites them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import nn

from lpd_pipeline.models.colorspace import channels
from lpd_pipeline.models.networks import build_discriminator, build_generator

if TYPE_CHECKING:  # models/ never needs training/ at run time
    from lpd_pipeline.training.config import TrainConfig


def build_model_generator(config: "TrainConfig") -> nn.Module:
    """The generator described by ``config`` (training, checkpoint loading and export share it)."""
    in_ch, out_ch = channels(config.color_space)
    return build_generator(
        config.backbone,
        in_channels=in_ch,
        out_channels=out_ch,
        ngf=config.ngf,
        norm=config.norm,
        use_dropout=config.use_dropout,
        image_size=config.tile_size,
    )


def build_model_discriminator(config: "TrainConfig") -> nn.Module:
    """The conditional PatchGAN of ``config``: it sees the generator's input beside a (real or generated) output."""
    in_ch, out_ch = channels(config.color_space)
    return build_discriminator(in_channels=in_ch + out_ch, ndf=config.ndf, n_layers=config.n_layers_d,
                               norm=config.norm)
