"""Training configuration: the pix2pix paper defaults, one typed model (validation, JSON, CLI flags, Dagster config).

Rule: every training setting is a field of :class:`TrainConfig` (a :class:`lpd_pipeline.config.Settings`); the
command line (``python -m lpd_pipeline.train``) and the Dagster run config are generated from these fields.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from lpd_pipeline.config import ConfigError, Settings
from lpd_pipeline.models.options import COLOR_SPACES, GAN_MODES, GENERATOR_BACKBONES, NORM_LAYERS

__all__ = ["AMP_MODES", "DEVICES", "LOSS_NAMES", "MODEL_FIELDS", "OPTIMISATION_FIELDS", "SCHEDULE_FIELDS",
           "ConfigError", "TrainConfig", "config_differences"]

AMP_MODES = ("off", "bf16", "fp16")
# The losses every epoch and checkpoint reports: generator (cGAN, then the rest of its loss: λ·L1, or λ_ce·CE for
# labcls, plus the colourfulness term when on), then discriminator (real, fake).
LOSS_NAMES = ("G_GAN", "G_L1", "D_real", "D_fake")
DEVICES = ("auto", "cpu", "cuda")

# Fields that define the networks' shapes or the meaning of their inputs/outputs. A checkpoint whose values
# differ cannot be resumed into the current run (its weights would not fit or would mean something else).
MODEL_FIELDS = (
    "backbone",
    "color_space",
    "norm",
    "ngf",
    "ndf",
    "n_layers_d",
    "use_dropout",
    "tile_size",
    "ab_grid",
    "annealed_temperature",
    "spectral_norm",
    "palette",
    "palette_grid",
)
# Fields of the optimisation itself. A checkpoint restores the optimizer and scheduler as they were, so
# resuming with other values would record settings that never applied: resume refuses (restart instead).
OPTIMISATION_FIELDS = (
    "gan_mode",
    "lambda_l1",
    "lr",
    "beta1",
    "beta2",
    "batch_size",
    "flip",
    "seed",
    "init_gain",
    "lambda_ce",
    "rebalance_lambda",
    "ink_augment",
    "lambda_colorfulness",
    "colorfulness_scale",
    "lambda_perceptual",
    "target_saturation",
    "palette_drop",
    "prior_init",
    "ema_decay",
)
# The schedule may grow on resume ("train 50 epochs more"): the lr rule is rebuilt from the config, so a
# longer schedule applies from the next epoch. It may not shrink below the checkpoint's epoch.
SCHEDULE_FIELDS = ("n_epochs", "n_epochs_decay")


class TrainConfig(Settings):
    """Hyper-parameters and runtime switches of one pix2pix training run.

    Defaults follow pix2pix (Isola et al. 2017) and its reference implementation: Adam(2e-4, 0.5, 0.999),
    λ_L1 = 100, batch 1, BatchNorm, 100 epochs at constant lr followed by 100 epochs of linear decay to 0.

    ``flip``: random horizontal flips of each (gray, colour) pair. Landscape compositions are left/right
    symmetric in distribution, so a mirrored tile is an equally plausible painting; it doubles the effective
    data and keeps the pair pixel-aligned because both images flip together. Never vertical: sky and ground
    (mist above, water and rocks below) carry meaning a vertical flip would destroy.
    """

    backbone: Literal[GENERATOR_BACKBONES] = Field("unet256", description="generator: ResNet-9blocks or U-Net-256")
    color_space: Literal[COLOR_SPACES] = Field(
        "rgb", description="rgb: gray in, RGB out (the method); lab: L in, ab out (keeps the input's L); labcls: "
                           "L in, ab as classes over quantized ab bins (rebalanced, annealed-mean decode)")
    gan_mode: Literal[GAN_MODES] = Field(
        "vanilla", description="adversarial loss: vanilla cGAN, least squares or hinge")
    norm: Literal[NORM_LAYERS] = Field("batch", description="normalisation layers of both networks")
    ngf: int = Field(64, ge=1, description="generator filters in the first layer")
    ndf: int = Field(64, ge=1, description="discriminator filters in the first layer")
    n_layers_d: int = Field(3, ge=1, description="PatchGAN stride-2 layers (3: the 70x70 PatchGAN)")
    use_dropout: bool = Field(True, description="dropout in the generator (pix2pix's noise)")
    init_gain: float = Field(0.02, gt=0, description="std of the normal weight initialisation")
    lambda_l1: float = Field(100.0, ge=0, description="weight of the L1 loss beside the cGAN loss")
    # The ab-classification variant (color_space labcls; models/abbins.py, docs/QUALITY.md).
    ab_grid: int = Field(10, ge=2, le=40, description="labcls: ab bin lattice step in Lab units (10: 261 bins)")
    annealed_temperature: float = Field(
        0.38, gt=0, le=1, description="labcls: annealed-mean decode temperature (1: the mean, ->0: the mode)")
    rebalance_lambda: float = Field(
        0.5, gt=0, le=1, description="labcls: class rebalancing, weights 1/((1-l)*prior + l/Q) (1: none)")
    lambda_ce: float = Field(
        3.0, ge=0, description="labcls: weight of the rebalanced cross-entropy, which replaces the L1 term")
    prior_init: bool = Field(
        False, description="labcls: start the bin head's bias at T*log(prior): an untrained model paints the "
                           "training set's mean colour, not the bin lattice's centroid (pink)")
    ema_decay: float = Field(
        0.0, ge=0, lt=1, description="keep an exponential moving average of the generator's weights with this "
                                     "decay (warmed up: min(decay, (1+t)/(10+t)) at update t); checkpoints, "
                                     "exports and inference use the average (0: off, the paper)")
    # Cheap remedies against washed-out colour (all off by default: the paper's models are unchanged).
    ink_augment: bool = Field(
        False, description="random tone curve, paper level and ink density on the gray input (ink transfer)")
    lambda_colorfulness: float = Field(
        0.0, ge=0, description="weight of |colourfulness(output) - colourfulness(target)| / 100 (0: off)")
    colorfulness_scale: int = Field(
        1, ge=1, le=16, description="colourfulness loss on s x s block averages (1: per pixel; 4: regional colour)")
    lambda_perceptual: float = Field(
        0.0, ge=0, description="weight of the AlexNet feature loss between output and target (0: off)")
    target_saturation: float = Field(
        1.0, ge=0.5, le=2.0, description="scale the targets' a*b* by this (1: off; e.g. 1.15: mildly saturated)")
    spectral_norm: bool = Field(
        False, description="spectral norm on every discriminator conv (its norm layers dropped)")
    # Palette control (models/palette.py): a global ab histogram as extra generator input.
    palette: bool = Field(False, description="condition the generator on a global ab histogram (palette control)")
    palette_grid: int = Field(30, ge=10, le=60, description="palette ab bin step in Lab units (30: 40 bins)")
    palette_drop: float = Field(
        0.5, ge=0, le=1, description="probability a training tile gets no palette (the model works without one)")
    lr: float = Field(2e-4, gt=0, description="Adam learning rate of both networks")
    beta1: float = Field(0.5, ge=0, lt=1, description="Adam beta1")
    beta2: float = Field(0.999, ge=0, lt=1, description="Adam beta2")
    n_epochs: int = Field(100, ge=0, description="epochs at the initial learning rate")
    n_epochs_decay: int = Field(100, ge=0, description="epochs of linear learning-rate decay to 0 after those")
    batch_size: int = Field(1, ge=1, description="tiles per optimisation step (per process under DDP)")
    tile_size: int = Field(256, ge=8, description="training tile side in pixels")
    checkpoint_every: int = Field(5, ge=1, description="write a checkpoint every this many epochs")
    keep_every: int | None = Field(
        None, ge=0, description="keep every k-th regular checkpoint plus the latest; none/0 keeps all")
    flip: bool = Field(True, description="random horizontal flips of each pair (never vertical)")
    seed: int = Field(0, ge=0, description="seed of initialisation, shuffling, flips and dropout")
    num_workers: int = Field(0, ge=0, description="DataLoader worker processes")
    device: Literal[DEVICES] = Field("auto", description="auto: CUDA when available, else CPU")
    amp: Literal[AMP_MODES] = Field("off", description="mixed precision: bf16, or fp16 with a grad scaler")
    channels_last: bool = Field(False, description="channels-last memory format (faster convs on GPUs)")
    compile: bool = Field(False, description="torch.compile both networks")
    cudnn_benchmark: bool = Field(False, description="let cuDNN pick the fastest kernels (not deterministic)")
    deterministic: bool = Field(True, description="deterministic kernels (bit-identical resume on CPU)")
    sync_batchnorm: bool = Field(False, description="synchronise BatchNorm statistics across DDP processes")

    @property
    def total_epochs(self) -> int:
        return self.n_epochs + self.n_epochs_decay

    @model_validator(mode="after")
    def _tile_size_fits_the_networks(self) -> "TrainConfig":
        if self.total_epochs < 1:
            raise ValueError("TrainConfig.n_epochs + n_epochs_decay must be >= 1")
        if self.backbone == "unet256":
            # The U-Net halves the tile down to a 1x1 bottleneck (min(8, log2(size)) levels).
            if self.tile_size < 32 or self.tile_size & (self.tile_size - 1) != 0:
                raise ValueError(
                    f"TrainConfig.tile_size={self.tile_size} must be a power of two >= 32 for the unet256 generator"
                )
        elif self.tile_size % 4 != 0:
            raise ValueError(f"TrainConfig.tile_size={self.tile_size} must be a multiple of 4 for resnet9")
        # The PatchGAN halves the tile n_layers_d times (4x4 convs, stride 2, padding 1), then two 4x4 stride-1
        # convs each take one pixel off; the first of them is batch-normalised, which needs > 1 value per
        # channel at batch 1. So at least 3 pixels must survive the halvings.
        if self.tile_size >> self.n_layers_d < 3:
            smallest = 3 * 2**self.n_layers_d
            raise ValueError(
                f"TrainConfig.tile_size={self.tile_size} is too small for a PatchGAN with n_layers_d="
                f"{self.n_layers_d}: use tile_size >= {smallest} or fewer discriminator layers"
            )
        return self

    def model_dict(self) -> dict[str, Any]:
        """The subset that defines the networks (what an exported generator needs to be rebuilt)."""
        return {name: getattr(self, name) for name in MODEL_FIELDS}


def config_differences(saved: dict[str, Any], current: TrainConfig, names: tuple[str, ...]) -> dict[str, tuple]:
    """``{field: (saved, current)}`` for the named fields whose values differ. A field the saved config lacks
    (written before the field existed) counts as its default, which is what that run used."""
    now = current.to_dict()
    defaults = {name: TrainConfig.model_fields[name].default for name in names}
    return {name: (saved.get(name, defaults[name]), now[name]) for name in names
            if saved.get(name, defaults[name]) != now[name]}
