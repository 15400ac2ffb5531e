"""Generators trained by junyanz/pytorch-CycleGAN-and-pix2pix load for rendering (weights_only state dicts).

The U-Net below is written the reference's way (each inner level's ``Sequential`` starts with its in-place
LeakyReLU; no conv bias unless InstanceNorm), so its state dict has the reference's parameter names; the ResNet's
names are the same in both code bases, so ours stands in for it.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from lpd_pipeline.models.inference import generator_forward
from lpd_pipeline.models.networks import ResnetGenerator
from lpd_pipeline.rendering import RenderSettings, colorize_gray, load_render_model
from lpd_pipeline.rendering.foreign import ForeignGeneratorError
from lpd_pipeline.training.checkpoints import CheckpointError

from lpd_pipeline_tests.test_render import painting


class RefUnetBlock(nn.Module):
    """The reference's UnetSkipConnectionBlock, layer for layer."""

    def __init__(self, outer_nc, inner_nc, input_nc=None, submodule=None, outermost=False, innermost=False,
                 norm="batch"):
        super().__init__()
        self.outermost = outermost
        use_bias = norm == "instance"
        norm_layer = {"batch": nn.BatchNorm2d, "instance": nn.InstanceNorm2d,
                      "none": lambda c: nn.Identity()}[norm]
        input_nc = outer_nc if input_nc is None else input_nc
        downconv = nn.Conv2d(input_nc, inner_nc, kernel_size=4, stride=2, padding=1, bias=use_bias)
        downrelu, downnorm = nn.LeakyReLU(0.2, True), norm_layer(inner_nc)
        uprelu, upnorm = nn.ReLU(True), norm_layer(outer_nc)
        if outermost:
            upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1)
            model = [downconv, submodule, uprelu, upconv, nn.Tanh()]
        elif innermost:
            upconv = nn.ConvTranspose2d(inner_nc, outer_nc, kernel_size=4, stride=2, padding=1, bias=use_bias)
            model = [downrelu, downconv, uprelu, upconv, upnorm]
        else:
            upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1, bias=use_bias)
            model = [downrelu, downconv, downnorm, submodule, uprelu, upconv, upnorm, nn.Dropout(0.5)]
        self.model = nn.Sequential(*model)

    def forward(self, x):
        return self.model(x) if self.outermost else torch.cat([x, self.model(x)], 1)


class RefUnet(nn.Module):
    def __init__(self, input_nc, output_nc, num_downs, ngf, norm):
        super().__init__()
        block = RefUnetBlock(ngf * 8, ngf * 8, innermost=True, norm=norm)
        for _ in range(num_downs - 5):
            block = RefUnetBlock(ngf * 8, ngf * 8, submodule=block, norm=norm)
        block = RefUnetBlock(ngf * 4, ngf * 8, submodule=block, norm=norm)
        block = RefUnetBlock(ngf * 2, ngf * 4, submodule=block, norm=norm)
        block = RefUnetBlock(ngf, ngf * 2, submodule=block, norm=norm)
        self.model = RefUnetBlock(output_nc, ngf, input_nc=input_nc, submodule=block, outermost=True, norm=norm)

    def forward(self, x):
        return self.model(x)


def _randomise_batchnorm(net: nn.Module) -> None:
    torch.manual_seed(1)
    for module in net.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 1.5)


def _same_outputs(reference: nn.Module, path, space: str, tile: int) -> None:
    loaded = load_render_model(path, "cpu")
    assert loaded.origin == "pix2pix-reference" and loaded.color_space == space and loaded.epoch is None
    gray = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (2, tile, tile), dtype=np.uint8))
    inputs, ours = generator_forward(loaded.net, space, gray)
    reference.eval()
    with torch.no_grad():
        feed = inputs if next(reference.parameters()).shape[1] == 1 else inputs.expand(-1, 3, -1, -1)
        expected = reference(feed.clone())
    assert torch.allclose(ours, expected, atol=1e-5)
    return loaded


@pytest.mark.parametrize("in_nc,out_nc,norm,space", [(1, 3, "batch", "rgb"), (1, 2, "batch", "lab"),
                                                     (3, 3, "instance", "rgb"), (1, 3, "none", "rgb")])
def test_reference_unet_state_dict_loads_and_computes_the_same(tmp_path, in_nc, out_nc, norm, space):
    torch.manual_seed(0)
    reference = RefUnet(in_nc, out_nc, num_downs=6, ngf=4, norm=norm)
    _randomise_batchnorm(reference)
    path = tmp_path / "latest_net_G.pth"
    torch.save(reference.state_dict(), path)
    loaded = _same_outputs(reference, path, space, 64)
    assert (loaded.tile_size, loaded.multiple) == (64, 64)
    assert loaded.variant == ("unet64" if space == "rgb" else "unet64-lab")


def test_reference_unet256_renders_a_painting(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "latest_net_G.pth"
    torch.save(RefUnet(1, 2, num_downs=8, ngf=2, norm="batch").state_dict(), path)
    model = load_render_model(path, "cpu")
    assert (model.variant, model.tile_size) == ("unet256-lab", 256)
    out = colorize_gray(painting(100, 140), model, RenderSettings(consistency="none"))
    assert out.shape == (100, 140, 3)


@pytest.mark.parametrize("in_nc,norm,dropout", [(1, "batch", True), (3, "instance", False)])
def test_reference_resnet_state_dict_loads(tmp_path, in_nc, norm, dropout):
    torch.manual_seed(0)
    reference = ResnetGenerator(in_nc, 3, ngf=4, norm=norm, use_dropout=dropout, n_blocks=9)
    _randomise_batchnorm(reference)
    path = tmp_path / "latest_net_G.pth"
    torch.save(reference.state_dict(), path)
    loaded = _same_outputs(reference, path, "rgb", 32)
    assert (loaded.variant, loaded.tile_size) == ("resnet9", 256)


def test_foreign_files_that_do_not_fit_are_refused(tmp_path):
    path = tmp_path / "latest_net_D.pth"
    torch.save({"model.0.weight": torch.zeros(4, 4, 4, 4)}, path)
    with pytest.raises(ForeignGeneratorError, match="latest_net_D.pth"):
        load_render_model(path, "cpu")
    bad = tmp_path / "odd.pth"
    state = RefUnet(1, 4, num_downs=5, ngf=2, norm="batch").state_dict()  # 4 output channels: no colour space
    torch.save(state, bad)
    with pytest.raises(ForeignGeneratorError, match="4 output channels"):
        load_render_model(bad, "cpu")
    pickled = tmp_path / "pickled.pth"
    torch.save({"model": nn.Conv2d(1, 1, 1)}, pickled)  # a pickled module: weights_only refuses it
    with pytest.raises(CheckpointError, match="weights_only"):
        load_render_model(pickled, "cpu")
