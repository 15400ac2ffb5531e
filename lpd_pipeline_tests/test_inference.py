"""The shared inference path: deterministic, leaves the global RNG alone; the variant vocabulary."""

import pytest
import torch

from lpd_pipeline.models.inference import colorize_tiles, generator_forward
from lpd_pipeline.models.networks import build_generator
from lpd_pipeline.models.options import VARIANTS, parse_variant, variant_key


def test_variant_keys_round_trip():
    assert variant_key("unet256") == "unet256"
    assert variant_key("resnet9", "lab") == "resnet9-lab"
    # Every plain backbone x colour space is a variant of its own name; recipes with quality options keep theirs.
    for key in VARIANTS:
        plain = variant_key(*parse_variant(key))
        assert plain in VARIANTS and parse_variant(plain) == parse_variant(key)
    with pytest.raises(ValueError, match="unknown model variant"):
        parse_variant("unet128")


@pytest.mark.parametrize("space,out", [("rgb", 3), ("lab", 2)])
def test_inference_is_deterministic_and_keeps_global_rng(space, out):
    torch.manual_seed(1)
    net = build_generator("unet256", in_channels=1, out_channels=out, ngf=4, image_size=32).train()  # dropout on
    gray = torch.randint(0, 256, (2, 32, 32), dtype=torch.uint8)
    state = torch.random.get_rng_state()
    first = colorize_tiles(net, space, gray)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert torch.equal(first, colorize_tiles(net, space, gray))
    assert first.shape == (2, 32, 32, 3) and first.dtype == torch.uint8
    _, raw = generator_forward(net, space, gray, seed=5)
    assert raw.shape == (2, out, 32, 32)
