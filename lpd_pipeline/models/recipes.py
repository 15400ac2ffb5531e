"""Named training recipes: a model variant is a recipe, and its name is the variant key everywhere.

The rule: a recipe is a name, a one-line description and the ``TrainConfig`` fields it sets over the paper's
defaults, and only fields of :data:`RECIPE_FIELDS` (what a variant *is*: backbone, colour space, the colour-quality
options). The name is the training/evaluation partition, the run folder (``training/<name>/``...) and the
variant the results page, the comparison table and the colorize CLI show. Everything else (schedule, widths,
device, batch) comes from a run's settings and applies to every variant alike; a recipe field never does, so the
paper's two variants (``resnet9``, ``unet256``) stay the method's reproduction whatever a run config says. To
change what the colour-quality variant trains, edit its entry here (one place). Torch-free; TrainConfig is
imported only when a config is built.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

# The TrainConfig fields a recipe decides (and a run config may not set): what distinguishes one variant's model
# and loss from another's. Every other TrainConfig field is a run setting.
RECIPE_FIELDS = (
    "backbone", "color_space", "gan_mode", "spectral_norm", "ink_augment", "lambda_colorfulness",
    "colorfulness_scale", "lambda_perceptual", "target_saturation", "palette", "palette_grid", "palette_drop",
    "ab_grid", "annealed_temperature", "rebalance_lambda", "lambda_ce", "prior_init",
    "ema_decay",
)
# A recipe name is a folder name under training/, evaluation/, renders/ and a Dagster partition key.
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


@dataclass(frozen=True)
class Recipe:
    name: str
    description: str
    fields: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not NAME_PATTERN.match(self.name):
            raise ValueError(f"recipe name {self.name!r} must match {NAME_PATTERN.pattern} (a folder name)")
        outside = sorted(set(self.fields) - set(RECIPE_FIELDS))
        if outside:
            raise ValueError(f"recipe {self.name!r} sets {outside}, which are run settings, not recipe fields "
                             f"{list(RECIPE_FIELDS)}")
        object.__setattr__(self, "fields", MappingProxyType(dict(self.fields)))

    @property
    def backbone(self) -> str:
        return self.fields.get("backbone", "unet256")

    @property
    def color_space(self) -> str:
        return self.fields.get("color_space", "rgb")

    def summary(self) -> str:
        """``description (field=value, ...)``: what a user sees beside the variant's name."""
        shown = ", ".join(f"{k}={v}" for k, v in self.fields.items() if k != "backbone")
        return f"{self.description} ({shown})" if shown else self.description


_CF = {"ink_augment": True, "lambda_colorfulness": 10.0}
_POST = {"rebalance_lambda": 1.0, "annealed_temperature": 0.6}  # no class rebalancing, a warmer decode

# The paper's two first, then the colour-quality recipe (so one partition range, resnet9..unet256-colour, covers
# the three the full job trains), then the ladder's other rungs. The order is the partition order.
_RECIPES = (
    Recipe("resnet9", "the paper's ResNet-9blocks: gray in, RGB out, cGAN + L1 (the method)",
           {"backbone": "resnet9"}),
    Recipe("unet256", "the paper's U-Net-256: gray in, RGB out, cGAN + L1 (the method)"),
    Recipe("unet256-colour",
           "colour-quality U-Net: ab classes without rebalancing (T 0.6), ink-domain augmentation, regional "
           "colourfulness loss, palette control",
           {"color_space": "labcls", **_POST, **_CF, "colorfulness_scale": 4, "palette": True}),
    Recipe("resnet9-lab", "ResNet-9blocks, L* in, a*b* regression out", {"backbone": "resnet9", "color_space": "lab"}),
    Recipe("unet256-lab", "U-Net-256, L* in, a*b* regression out", {"color_space": "lab"}),
    Recipe("resnet9-labcls", "ResNet-9blocks, L* in, a*b* as rebalanced classes (Zhang et al. 2016)",
           {"backbone": "resnet9", "color_space": "labcls"}),
    Recipe("unet256-labcls", "U-Net-256, L* in, a*b* as rebalanced classes (Zhang et al. 2016)",
           {"color_space": "labcls"}),
    Recipe("unet256-labcls-aug-cf", "ab classes + ink-domain augmentation + colourfulness loss",
           {"color_space": "labcls", **_CF}),
    Recipe("unet256-labcls-aug-cf-sat", "ab classes + augmentation + colourfulness loss + 1.15x saturated targets",
           {"color_space": "labcls", **_CF, "target_saturation": 1.15}),
    Recipe("unet256-labcls-sn", "ab classes + spectral-norm PatchGAN with hinge loss",
           {"color_space": "labcls", "spectral_norm": True, "gan_mode": "hinge"}),
    Recipe("unet256-lab-aug-cf", "a*b* regression + ink-domain augmentation + colourfulness loss",
           {"color_space": "lab", **_CF}),
    Recipe("unet256-labcls-aug-cf-perc", "ab classes + augmentation + colourfulness loss + AlexNet perceptual loss",
           {"color_space": "labcls", **_CF, "lambda_perceptual": 10.0}),
    Recipe("unet256-labcls-post-aug-cf4", "ab classes without rebalancing, T 0.6, augmentation, regional (4x4) "
           "colourfulness loss", {"color_space": "labcls", **_POST, **_CF, "colorfulness_scale": 4}),
    Recipe("unet256-colour-drop8", "unet256-colour with the palette dropped in 80 % of the training tiles "
           "(50 %: unet256-colour)", {"color_space": "labcls", **_POST, **_CF, "colorfulness_scale": 4,
                                      "palette": True, "palette_drop": 0.8}),
    Recipe("unet256-labcls-post-aug-cf4-prior", "ab classes without rebalancing, T 0.6, augmentation, regional "
           "(4x4) colourfulness loss, head started at the colour prior",
           {"color_space": "labcls", **_POST, **_CF, "colorfulness_scale": 4, "prior_init": True}),
    Recipe("unet256-labcls-post-aug-cf2", "ab classes without rebalancing, T 0.6, augmentation, regional (2x2) "
           "colourfulness loss", {"color_space": "labcls", **_POST, **_CF, "colorfulness_scale": 2}),
    Recipe("unet256-labcls-post-aug-cf4x30", "ab classes without rebalancing, T 0.6, augmentation, regional (4x4) "
           "colourfulness loss at weight 30", {"color_space": "labcls", **_POST, **_CF, "colorfulness_scale": 4,
                                               "lambda_colorfulness": 30.0}),
    Recipe("unet256-labcls-post-aug-cf", "ab classes without rebalancing, T 0.6, augmentation, colourfulness loss",
           {"color_space": "labcls", **_POST, **_CF}),
    Recipe("unet256-labcls-post-aug-cf4-ema", "ab classes without rebalancing, T 0.6, augmentation, regional (4x4) "
           "colourfulness loss, generator weights averaged (EMA 0.999)",
           {"color_space": "labcls", **_POST, **_CF, "colorfulness_scale": 4, "ema_decay": 0.999}),
)
RECIPES: Mapping[str, Recipe] = MappingProxyType({r.name: r for r in _RECIPES})
PAPER_RECIPES = ("resnet9", "unet256")
# The colour-quality variant: trained, evaluated and rendered by the full job beside the paper's two.
QUALITY_RECIPE = "unet256-colour"
# What the full job (make demo, config/paper_gpu.yaml) trains: a contiguous partition range.
MAIN_RECIPES = (*PAPER_RECIPES, QUALITY_RECIPE)


def recipe(name: str) -> Recipe:
    """The recipe ``name``; a clear error naming the known ones."""
    try:
        return RECIPES[name]
    except KeyError:
        raise ValueError(f"unknown model variant {name!r}; known: {list(RECIPES)}") from None


def check_settings(name: str, settings: Mapping[str, Any]) -> None:
    """Refuse (ValueError naming them) run settings that would change a field the recipe ``name`` decides: a
    recipe field whose value differs from the recipe's (the paper's default when the recipe leaves it)."""
    from lpd_pipeline.training.config import TrainConfig

    chosen = recipe(name)
    conflicts = {k: v for k, v in settings.items()
                 if k in RECIPE_FIELDS and v != chosen.fields.get(k, TrainConfig.model_fields[k].default)}
    if conflicts:
        raise ValueError(f"{', '.join(f'{k}={v!r}' for k, v in conflicts.items())}: decided by the model variant "
                         f"{name!r} (its recipe: {chosen.summary()}); choose another variant or add a recipe in "
                         "lpd_pipeline/models/recipes.py")


def train_config(name: str, **settings: Any):
    """The validated ``TrainConfig`` of recipe ``name``: the paper's defaults, the recipe's fields, then
    ``settings`` (run settings: schedule, widths, device, tile size...); see :func:`check_settings`."""
    from lpd_pipeline.training.config import TrainConfig

    check_settings(name, settings)
    return TrainConfig(**{**settings, **recipe(name).fields})


def recipe_of(config: Mapping[str, Any]) -> str | None:
    """The name of the recipe a saved training config (``TrainConfig.to_dict()``) follows, or None. A field the
    config lacks (written before the field existed) counts as its default."""
    from lpd_pipeline.training.config import TrainConfig

    def value(source: Mapping[str, Any], key: str) -> Any:
        return source.get(key, TrainConfig.model_fields[key].default)

    for candidate in RECIPES.values():
        if all(value(config, k) == value(candidate.fields, k) for k in RECIPE_FIELDS):
            return candidate.name
    return None
