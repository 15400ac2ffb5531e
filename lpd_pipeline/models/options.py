"""The model choices a run can name. Torch-free, so configs and the Dagster shell can validate without torch."""

GENERATOR_BACKBONES = ("resnet9", "unet256")
NORM_LAYERS = ("batch", "instance", "none")
GAN_MODES = ("vanilla", "lsgan", "hinge")
# rgb: gray -> RGB (the method); lab: L* -> a*b* regression; labcls: L* -> a*b* as classification over quantized
# a*b* bins with class rebalancing and an annealed-mean decode (Zhang et al. 2016; models/abbins.py).
COLOR_SPACES = ("rgb", "lab", "labcls")
# The spaces whose decoded output is a*b* (/ AB_SCALE) beside the input's own lightness.
AB_SPACES = ("lab", "labcls")

# A model *variant*: what training, evaluation and rendering are partitioned by. Today backbone x colour
# space: "unet256", "resnet9" (the paper's RGB models), "unet256-lab", "resnet9-lab" and the classification
# variants "unet256-labcls", "resnet9-labcls". The key doubles as the
# run folder name under <storage>/training/. Later variants (other losses, palettes) extend this vocabulary.
PAPER_VARIANTS = ("resnet9", "unet256")


def variant_key(backbone: str, color_space: str = "rgb") -> str:
    """``backbone`` for rgb (the paper's models keep their plain names), ``backbone-space`` otherwise."""
    if backbone not in GENERATOR_BACKBONES:
        raise ValueError(f"unknown backbone {backbone!r}; known: {list(GENERATOR_BACKBONES)}")
    if color_space not in COLOR_SPACES:
        raise ValueError(f"unknown colour space {color_space!r}; known: {list(COLOR_SPACES)}")
    return backbone if color_space == "rgb" else f"{backbone}-{color_space}"


VARIANTS = tuple(variant_key(b, s) for s in COLOR_SPACES for b in GENERATOR_BACKBONES)


def parse_variant(key: str) -> tuple[str, str]:
    """``(backbone, color_space)`` of a variant key; a clear error for unknown keys."""
    backbone, _, space = key.partition("-")
    if key not in VARIANTS:
        raise ValueError(f"unknown model variant {key!r}; known: {list(VARIANTS)}")
    return backbone, space or "rgb"
