"""The model choices a run can name. Torch-free, so configs and the Dagster shell can validate without torch."""

GENERATOR_BACKBONES = ("resnet9", "unet256")
NORM_LAYERS = ("batch", "instance", "none")
GAN_MODES = ("vanilla", "lsgan")
COLOR_SPACES = ("rgb", "lab")
