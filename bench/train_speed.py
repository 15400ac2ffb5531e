"""Training-step throughput: this project's pix2pix step vs a reference-faithful plain-PyTorch one.

    python bench/train_speed.py --backbone unet256 --size 256 --batch 1 --steps 10 [--device auto|cpu|cuda]
                                [--amp bf16] [--channels-last] [--compile]

Prints three lines: ``project ... img/s=``, ``reference ... img/s=`` and ``ratio`` (project / reference).
The reference is written out here, independent of lpd_pipeline.models: junyanz/pytorch-CycleGAN-and-pix2pix's
ResnetGenerator (9 blocks), UnetGenerator (8 levels at 256 px) and 70x70 NLayerDiscriminator with
BatchNorm, dropout, vanilla GAN loss + 100·L1, Adam(2e-4, 0.5, 0.999), batch 1, fp32 — the paper setup.
The project step runs with the requested batch / AMP / memory-format / compile switches, from uint8 tiles
(its colour encoding included). Warm-up steps are excluded; the two steps alternate and each rate comes
from the median step time, so load from other processes affects both alike and spikes are ignored.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lpd_pipeline.training.config import TrainConfig  # noqa: E402
from lpd_pipeline.training.loop import Pix2PixModel, resolve_device  # noqa: E402


# ---- reference networks (same structure and in-place activations as the reference implementation) --------
class RefResnetBlock(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=False), nn.BatchNorm2d(dim), nn.ReLU(True),
            nn.Dropout(0.5),
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=False), nn.BatchNorm2d(dim),
        )

    def forward(self, x):
        return x + self.conv_block(x)


def ref_resnet_generator(input_nc: int, output_nc: int, ngf: int = 64, n_blocks: int = 9) -> nn.Module:
    layers = [nn.ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, 7, bias=False), nn.BatchNorm2d(ngf), nn.ReLU(True)]
    for i in range(2):
        mult = 2**i
        layers += [nn.Conv2d(ngf * mult, ngf * mult * 2, 3, stride=2, padding=1, bias=False),
                   nn.BatchNorm2d(ngf * mult * 2), nn.ReLU(True)]
    layers += [RefResnetBlock(ngf * 4) for _ in range(n_blocks)]
    for i in range(2):
        mult = 2 ** (2 - i)
        layers += [nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 3, stride=2, padding=1, output_padding=1,
                                      bias=False),
                   nn.BatchNorm2d(ngf * mult // 2), nn.ReLU(True)]
    layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, 7), nn.Tanh()]
    return nn.Sequential(*layers)


class RefUnetBlock(nn.Module):
    def __init__(self, outer_nc, inner_nc, input_nc=None, submodule=None, outermost=False, innermost=False,
                 use_dropout=False):
        super().__init__()
        self.outermost = outermost
        input_nc = outer_nc if input_nc is None else input_nc
        downconv = nn.Conv2d(input_nc, inner_nc, 4, 2, 1, bias=False)
        downrelu, downnorm = nn.LeakyReLU(0.2, True), nn.BatchNorm2d(inner_nc)
        uprelu, upnorm = nn.ReLU(True), nn.BatchNorm2d(outer_nc)
        if outermost:
            model = [downconv, submodule, uprelu, nn.ConvTranspose2d(inner_nc * 2, outer_nc, 4, 2, 1), nn.Tanh()]
        elif innermost:
            model = [downrelu, downconv, uprelu, nn.ConvTranspose2d(inner_nc, outer_nc, 4, 2, 1, bias=False), upnorm]
        else:
            model = [downrelu, downconv, downnorm, submodule, uprelu,
                     nn.ConvTranspose2d(inner_nc * 2, outer_nc, 4, 2, 1, bias=False), upnorm]
            if use_dropout:
                model.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*model)

    def forward(self, x):
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], 1)


def ref_unet_generator(input_nc: int, output_nc: int, num_downs: int, ngf: int = 64) -> nn.Module:
    block = RefUnetBlock(ngf * 8, ngf * 8, innermost=True)
    for _ in range(num_downs - 5):
        block = RefUnetBlock(ngf * 8, ngf * 8, submodule=block, use_dropout=True)
    block = RefUnetBlock(ngf * 4, ngf * 8, submodule=block)
    block = RefUnetBlock(ngf * 2, ngf * 4, submodule=block)
    block = RefUnetBlock(ngf, ngf * 2, submodule=block)
    return RefUnetBlock(output_nc, ngf, input_nc=input_nc, submodule=block, outermost=True)


def ref_patchgan(input_nc: int, ndf: int = 64, n_layers: int = 3) -> nn.Module:
    layers = [nn.Conv2d(input_nc, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
    mult = 1
    for n in range(1, n_layers):
        prev, mult = mult, min(2**n, 8)
        layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * mult),
                   nn.LeakyReLU(0.2, True)]
    prev, mult = mult, min(2**n_layers, 8)
    layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, 1, 1, bias=False), nn.BatchNorm2d(ndf * mult),
               nn.LeakyReLU(0.2, True), nn.Conv2d(ndf * mult, 1, 4, 1, 1)]
    return nn.Sequential(*layers)


def ref_init(net: nn.Module) -> nn.Module:
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.constant_(m.bias, 0.0)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.constant_(m.bias, 0.0)
    return net


class ReferencePix2Pix:
    """The reference Pix2PixModel.optimize_parameters, fp32, on float inputs already in [-1, 1]."""

    def __init__(self, backbone: str, size: int, device: torch.device) -> None:
        if backbone == "resnet9":
            self.net_g = ref_resnet_generator(1, 3)
        else:
            self.net_g = ref_unet_generator(1, 3, num_downs=min(8, int(math.log2(size))))
        self.net_g = ref_init(self.net_g).to(device).train()
        self.net_d = ref_init(ref_patchgan(4)).to(device).train()
        self.opt_g = torch.optim.Adam(self.net_g.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.opt_d = torch.optim.Adam(self.net_d.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.gan = nn.BCEWithLogitsLoss()
        self.l1 = nn.L1Loss()

    def gan_loss(self, prediction, real: bool):
        return self.gan(prediction, torch.full_like(prediction, 1.0 if real else 0.0))

    def set_requires_grad(self, flag: bool) -> None:
        for p in self.net_d.parameters():
            p.requires_grad = flag

    def step(self, real_a: torch.Tensor, real_b: torch.Tensor) -> None:
        fake_b = self.net_g(real_a)
        self.set_requires_grad(True)
        self.opt_d.zero_grad()
        loss_d_fake = self.gan_loss(self.net_d(torch.cat((real_a, fake_b), 1).detach()), False)
        loss_d_real = self.gan_loss(self.net_d(torch.cat((real_a, real_b), 1)), True)
        ((loss_d_fake + loss_d_real) * 0.5).backward()
        self.opt_d.step()
        self.set_requires_grad(False)
        self.opt_g.zero_grad()
        loss_g = self.gan_loss(self.net_d(torch.cat((real_a, fake_b), 1)), True) + self.l1(fake_b, real_b) * 100.0
        loss_g.backward()
        self.opt_g.step()


# ---- timing ------------------------------------------------------------------------------------------------
def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backbone", choices=("unet256", "resnet9"), default="unet256")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=1, help="project batch size (the reference uses 1)")
    parser.add_argument("--steps", type=int, default=10, help="timed steps of each (after warm-up)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--amp", choices=("off", "bf16", "fp16"), default="off")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--compile", action="store_true")
    args = parser.parse_args(argv)

    config = TrainConfig(backbone=args.backbone, tile_size=args.size, batch_size=args.batch, device=args.device,
                         amp=args.amp, channels_last=args.channels_last, compile=args.compile,
                         deterministic=False, cudnn_benchmark=True)
    device = resolve_device(config)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    torch.manual_seed(0)
    project = Pix2PixModel(config, device)
    project.train_mode()  # the training loop does this once per epoch
    reference = ReferencePix2Pix(args.backbone, args.size, device)

    generator = torch.Generator().manual_seed(0)
    gray = torch.randint(0, 256, (args.batch, args.size, args.size), dtype=torch.uint8, generator=generator)
    color = torch.randint(0, 256, (args.batch, args.size, args.size, 3), dtype=torch.uint8, generator=generator)
    if device.type == "cuda":
        gray, color = gray.pin_memory(), color.pin_memory()
    ref_a = (gray[:1].float().unsqueeze(1) / 127.5 - 1).to(device)
    ref_b = (color[:1].permute(0, 3, 1, 2).float() / 127.5 - 1).to(device)

    def project_step() -> None:
        project.train_step(*project.encode(gray, color))

    def reference_step() -> None:
        reference.step(ref_a, ref_b)

    for _ in range(args.warmup):
        project_step()
        reference_step()
    _sync(device)

    # Alternate single steps and take the median step time: robust to load spikes from other processes.
    times: dict[str, list[float]] = {"project": [], "reference": []}
    for _ in range(args.steps):
        for name, step in (("project", project_step), ("reference", reference_step)):
            started = time.perf_counter()
            step()
            _sync(device)
            times[name].append(time.perf_counter() - started)

    project_rate = args.batch / statistics.median(times["project"])
    reference_rate = 1 / statistics.median(times["reference"])
    print(f"# device={device} threads={torch.get_num_threads()} amp={args.amp} channels_last={args.channels_last} "
          f"compile={args.compile} steps={args.steps} warmup={args.warmup}", file=sys.stderr)
    print(f"project {args.backbone} size={args.size} batch={args.batch} img/s={project_rate:.3g}")
    print(f"reference {args.backbone} size={args.size} batch=1 img/s={reference_rate:.3g}")
    print(f"ratio {project_rate / reference_rate:.2f}")


if __name__ == "__main__":
    main()
