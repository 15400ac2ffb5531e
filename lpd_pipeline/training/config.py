"""Training configuration: the pix2pix paper defaults, validated, with a lossless JSON round-trip."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from typing import Any

from lpd_pipeline.models.options import COLOR_SPACES, GAN_MODES, GENERATOR_BACKBONES, NORM_LAYERS

AMP_MODES = ("off", "bf16", "fp16")
# The losses every epoch and checkpoint reports: generator (cGAN, λ·L1), then discriminator (real, fake).
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
)
# The schedule may grow on resume ("train 50 epochs more"): the lr rule is rebuilt from the config, so a
# longer schedule applies from the next epoch. It may not shrink below the checkpoint's epoch.
SCHEDULE_FIELDS = ("n_epochs", "n_epochs_decay")


class ConfigError(ValueError):
    """A training configuration value is invalid (the message names the field and the reason)."""


@dataclass
class TrainConfig:
    """Hyper-parameters and runtime switches of one pix2pix training run.

    Defaults follow pix2pix (Isola et al. 2017) and its reference implementation: Adam(2e-4, 0.5, 0.999),
    λ_L1 = 100, batch 1, BatchNorm, 100 epochs at constant lr followed by 100 epochs of linear decay to 0.

    ``flip``: random horizontal flips of each (gray, colour) pair. Landscape compositions are left/right
    symmetric in distribution, so a mirrored tile is an equally plausible painting; it doubles the effective
    data and keeps the pair pixel-aligned because both images flip together. Never vertical: sky and ground
    (mist above, water and rocks below) carry meaning a vertical flip would destroy.
    """

    backbone: str = "unet256"
    color_space: str = "rgb"
    gan_mode: str = "vanilla"
    norm: str = "batch"
    ngf: int = 64
    ndf: int = 64
    n_layers_d: int = 3
    use_dropout: bool = True
    init_gain: float = 0.02
    lambda_l1: float = 100.0
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    n_epochs: int = 100
    n_epochs_decay: int = 100
    batch_size: int = 1
    tile_size: int = 256
    checkpoint_every: int = 5
    keep_every: int | None = None
    flip: bool = True
    seed: int = 0
    num_workers: int = 0
    device: str = "auto"
    amp: str = "off"
    channels_last: bool = False
    compile: bool = False
    cudnn_benchmark: bool = False
    deterministic: bool = True
    sync_batchnorm: bool = False

    def __post_init__(self) -> None:
        self.validate()

    @property
    def total_epochs(self) -> int:
        return self.n_epochs + self.n_epochs_decay

    def validate(self) -> "TrainConfig":
        """Raise ConfigError naming the first invalid field."""

        def choice(name: str, allowed: tuple[str, ...]) -> None:
            value = getattr(self, name)
            if value not in allowed:
                raise ConfigError(f"TrainConfig.{name}={value!r} is not one of {list(allowed)}")

        def integer(name: str, minimum: int) -> None:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ConfigError(f"TrainConfig.{name}={value!r} must be an integer >= {minimum}")

        def number(name: str, minimum: float, *, strict: bool) -> None:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"TrainConfig.{name}={value!r} must be a number")
            if value < minimum or (strict and value == minimum):
                relation = ">" if strict else ">="
                raise ConfigError(f"TrainConfig.{name}={value!r} must be {relation} {minimum}")

        def boolean(name: str) -> None:
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"TrainConfig.{name}={getattr(self, name)!r} must be true or false")

        choice("backbone", GENERATOR_BACKBONES)
        choice("color_space", COLOR_SPACES)
        choice("gan_mode", GAN_MODES)
        choice("norm", NORM_LAYERS)
        choice("amp", AMP_MODES)
        choice("device", DEVICES)
        for name in ("ngf", "ndf", "n_layers_d", "batch_size", "checkpoint_every"):
            integer(name, 1)
        for name in ("n_epochs", "n_epochs_decay", "num_workers", "seed"):
            integer(name, 0)
        integer("tile_size", 8)
        if self.total_epochs < 1:
            raise ConfigError("TrainConfig.n_epochs + n_epochs_decay must be >= 1")
        if self.keep_every is not None:
            integer("keep_every", 0)
        number("lr", 0.0, strict=True)
        number("lambda_l1", 0.0, strict=False)
        number("init_gain", 0.0, strict=True)
        for name in ("beta1", "beta2"):
            number(name, 0.0, strict=False)
            if getattr(self, name) >= 1.0:
                raise ConfigError(f"TrainConfig.{name}={getattr(self, name)!r} must be < 1")
        for name in ("use_dropout", "flip", "channels_last", "compile", "cudnn_benchmark", "deterministic",
                     "sync_batchnorm"):
            boolean(name)
        if self.backbone == "unet256":
            # The U-Net halves the tile down to a 1x1 bottleneck (min(8, log2(size)) levels).
            if self.tile_size < 32 or self.tile_size & (self.tile_size - 1) != 0:
                raise ConfigError(
                    f"TrainConfig.tile_size={self.tile_size} must be a power of two >= 32 for the unet256 generator"
                )
        elif self.tile_size % 4 != 0:
            raise ConfigError(f"TrainConfig.tile_size={self.tile_size} must be a multiple of 4 for resnet9")
        # The PatchGAN halves the tile n_layers_d times (4x4 convs, stride 2, padding 1), then two 4x4 stride-1
        # convs each take one pixel off; the first of them is batch-normalised, which needs > 1 value per
        # channel at batch 1. So at least 3 pixels must survive the halvings.
        if self.tile_size >> self.n_layers_d < 3:
            smallest = 3 * 2**self.n_layers_d
            raise ConfigError(
                f"TrainConfig.tile_size={self.tile_size} is too small for a PatchGAN with n_layers_d="
                f"{self.n_layers_d}: use tile_size >= {smallest} or fewer discriminator layers"
            )
        return self

    # ---- serialisation -------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        """Build from a dict; unknown keys are an error (a typo must not silently fall back to a default)."""
        if not isinstance(data, dict):
            raise ConfigError(f"a training config must be a JSON object, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown TrainConfig field(s) {unknown}; known fields: {sorted(known)}")
        values = dict(data)
        # JSON has one number type: accept 1.0 for an int field and 1 for a float field.
        for f in fields(cls):
            if f.name not in values:
                continue
            value = values[f.name]
            if f.type in ("int", "int | None") and isinstance(value, float) and value.is_integer():
                values[f.name] = int(value)
            if f.type == "float" and isinstance(value, int) and not isinstance(value, bool):
                values[f.name] = float(value)
        return cls(**values)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "TrainConfig":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"training config is not valid JSON: {exc}") from exc
        return cls.from_dict(data)

    def replace(self, **changes: Any) -> "TrainConfig":
        """A validated copy with ``changes`` applied."""
        return type(self).from_dict({**self.to_dict(), **changes})

    def model_dict(self) -> dict[str, Any]:
        """The subset that defines the networks (what an exported generator needs to be rebuilt)."""
        return {name: getattr(self, name) for name in MODEL_FIELDS}


def config_differences(saved: dict[str, Any], current: TrainConfig, names: tuple[str, ...]) -> dict[str, tuple]:
    """``{field: (saved, current)}`` for the named fields whose values differ."""
    now = current.to_dict()
    return {name: (saved.get(name), now[name]) for name in names if saved.get(name) != now[name]}
