"""pix2pix networks and colour-space encodings (pure torch, no Dagster)."""

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
from lpd_pipeline.models.networks import (
    GAN_MODES,
    GENERATOR_BACKBONES,
    NORM_LAYERS,
    GANLoss,
    build_discriminator,
    build_generator,
    count_parameters,
    init_weights,
    unet_num_downs,
)

__all__ = [
    "AB_SCALE",
    "COLOR_SPACES",
    "GAN_MODES",
    "GENERATOR_BACKBONES",
    "GANLoss",
    "L_SCALE",
    "NORM_LAYERS",
    "build_discriminator",
    "build_generator",
    "channels",
    "count_parameters",
    "decode_output",
    "encode_batch",
    "init_weights",
    "lab_to_rgb",
    "rgb_to_lab",
    "unet_num_downs",
]
