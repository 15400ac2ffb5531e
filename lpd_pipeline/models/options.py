"""The model choices a run can name. Torch-free, so configs and the Dagster shell can validate without torch."""

from lpd_pipeline.models.recipes import MAIN_RECIPES, PAPER_RECIPES, QUALITY_RECIPE, RECIPES, recipe

GENERATOR_BACKBONES = ("resnet9", "unet256")
NORM_LAYERS = ("batch", "instance", "none")
GAN_MODES = ("vanilla", "lsgan", "hinge")
# rgb: gray -> RGB (the method); lab: L* -> a*b* regression; labcls: L* -> a*b* as classification over quantized
# a*b* bins with class rebalancing and an annealed-mean decode (Zhang et al. 2016; models/abbins.py).
COLOR_SPACES = ("rgb", "lab", "labcls")
# The spaces whose decoded output is a*b* (/ AB_SCALE) beside the input's own lightness.
AB_SPACES = ("lab", "labcls")

# A model *variant*: what training, evaluation and rendering are partitioned by, and the run folder's name under
# <storage>/training/. Each variant is a named recipe (models/recipes.py: a description and the TrainConfig fields
# over the paper's defaults): the paper's "resnet9", "unet256" (RGB), the colour-quality "unet256-colour", the
# colour-space variants "unet256-lab", "resnet9-lab", "unet256-labcls", "resnet9-labcls" and the quality ladder's
# rungs. The order is the partition order: the paper's two first, then the colour-quality one.
PAPER_VARIANTS = PAPER_RECIPES
QUALITY_VARIANT = QUALITY_RECIPE
MAIN_VARIANTS = MAIN_RECIPES  # what the full job trains (a contiguous partition range)
VARIANTS = tuple(RECIPES)


def variant_key(backbone: str, color_space: str = "rgb") -> str:
    """The plain variant of a backbone and colour space: ``backbone`` for rgb (the paper's models keep their plain
    names), ``backbone-space`` otherwise (no quality options: see models/recipes.py for those)."""
    if backbone not in GENERATOR_BACKBONES:
        raise ValueError(f"unknown backbone {backbone!r}; known: {list(GENERATOR_BACKBONES)}")
    if color_space not in COLOR_SPACES:
        raise ValueError(f"unknown colour space {color_space!r}; known: {list(COLOR_SPACES)}")
    return backbone if color_space == "rgb" else f"{backbone}-{color_space}"


def parse_variant(key: str) -> tuple[str, str]:
    """``(backbone, color_space)`` of a variant key (its recipe's); a clear error for unknown keys."""
    chosen = recipe(key)
    return chosen.backbone, chosen.color_space


def variant_description(key: str) -> str:
    """What a variant is, for people: its recipe's description and fields."""
    return recipe(key).summary()
