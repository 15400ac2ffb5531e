"""Whole-painting rendering: speed, memory and quality of ``lpd_pipeline.rendering``.

    python bench/render.py speed [--sizes 1,10,100] [--backbone unet256] [--ngf 64] [--narrow-ngf 8]
                                 [--narrow-from-mp 50] [--device cpu]
    python bench/render.py quality --checkpoint PATH [--stand-in tile-offset] PAINTING [PAINTING ...]

speed: for synthetic gray paintings of 1, 10 and 100 megapixels (1000x1000, 1000x10000, 3334x30000), one fresh
process per case: blended at 50 % overlap (the default, with its anchor pass), blended at 25 %, and naive. Each
process loads torch and a random-weight generator of the paper's size (``--ngf``; a narrow one, ``--narrow-ngf``,
stands in from ``--narrow-from-mp`` megapixels to keep the run short: the table says so), takes its RSS, times the
model alone on ``batch_size`` tiles (the per-tile time), then renders the file (decode, tiles, blending, PNG).
Columns: MP/s of the whole file; the render beside its floor (tiles x per-tile model time measured in the same
process; goal: blended <= 1.15x); blended/naive cost ratio; peak RSS minus the RSS after loading torch and the
model, beside the input + output image bytes (goal: <= those + 300 MB, flat across sizes).

quality: for real paintings and a trained checkpoint: colour spread between overlapping predictions without and
with the anchor, the seam spike of naive vs blended output, and reduced scales (time, colourfulness, Delta-E of
chroma to the full-scale rendering).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SIZES = {1: (1000, 1000), 10: (1000, 10000), 100: (3334, 30000)}
CASES = (("blended 50%", {"overlap": 0.5}), ("blended 25%", {"overlap": 0.25}), ("naive", {"mode": "naive"}))


def rss_mb() -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def synthetic_painting(path: Path, height: int, width: int) -> None:
    """Ink-like gray texture (washes, strokes, grain), generated in row blocks, saved as PNG."""
    from lpd_pipeline.imaging import encode_png
    from lpd_pipeline.files import write_bytes_atomic

    rng = np.random.default_rng(0)
    gray = np.empty((height, width), dtype=np.uint8)
    xx = np.arange(width, dtype=np.float32)[None, :]
    for start in range(0, height, 256):
        yy = np.arange(start, min(height, start + 256), dtype=np.float32)[:, None]
        wash = 170 + 45 * np.sin(xx / 97.0 + yy / 143.0) * np.cos(xx / 211.0 - yy / 61.0)
        strokes = 110 * (np.sin(xx / 7.0 + 3 * np.sin(yy / 29.0)) > 0.97)
        grain = rng.normal(0, 5, (yy.shape[0], width)).astype(np.float32)
        gray[start:start + yy.shape[0]] = np.clip(wash - strokes + grain, 0, 255).astype(np.uint8)
    write_bytes_atomic(path, encode_png(gray))


def child(args: argparse.Namespace) -> None:
    """One case in a fresh process; prints one JSON line."""
    import torch

    from lpd_pipeline.models.networks import build_generator
    from lpd_pipeline.rendering import RenderSettings, render_file
    from lpd_pipeline.rendering.model import RenderModel, resolve_device

    torch.manual_seed(0)
    device = resolve_device(args.device)
    out_ch = 3
    net = build_generator(args.backbone, in_channels=1, out_channels=out_ch, ngf=args.child_ngf,
                          use_dropout=False, image_size=256).to(device).eval()
    model = RenderModel(net, "rgb", 256, 256 if args.backbone == "unet256" else 4, args.backbone, "random", None,
                        "lpd")
    settings = RenderSettings(**json.loads(args.child_settings), device=args.device)
    tiles = np.random.default_rng(0).integers(0, 256, (settings.batch_size, 256, 256), dtype=np.uint8)
    model.predict(tiles)  # warm-up (allocator, kernels)
    baseline = rss_mb()
    started = time.perf_counter()
    repeats = 3
    for _ in range(repeats):
        model.predict(tiles)
    per_tile = (time.perf_counter() - started) / (repeats * settings.batch_size)
    output = Path(args.child_output)
    started = time.perf_counter()
    report = render_file(args.child_input, output, model, settings)
    seconds = time.perf_counter() - started
    output.unlink()
    print(json.dumps({"seconds": seconds, "per_tile": per_tile, "tiles": report.plan.total_tiles,
                      "baseline_mb": baseline, "peak_mb": peak_rss_mb(),
                      "height": report.plan.height, "width": report.plan.width}))


def speed(args: argparse.Namespace) -> None:
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = []
    with tempfile.TemporaryDirectory(prefix="lpd-render-bench-") as tmp:
        for size in sizes:
            height, width = SIZES[size]
            source = Path(tmp) / f"painting_{size}mp.png"
            synthetic_painting(source, height, width)
            ngf = args.narrow_ngf if size >= args.narrow_from_mp else args.ngf
            results = {}
            for name, overrides in CASES:
                settings = {"batch_size": args.batch_size, **overrides}
                command = [sys.executable, __file__, "child", "--backbone", args.backbone, "--device", args.device,
                           "--child-ngf", str(ngf), "--child-settings", json.dumps(settings),
                           "--child-input", str(source), "--child-output", str(Path(tmp) / "out.png")]
                done = subprocess.run(command, capture_output=True, text=True, check=False)
                if done.returncode:
                    sys.exit(f"case {name} at {size} MP failed:\n{done.stderr[-3000:]}")
                results[name] = json.loads(done.stdout.strip().splitlines()[-1])
                print(f"  {size} MP {name}: {results[name]}", file=sys.stderr)
            rows.append((size, height, width, ngf, results))
    print_speed_table(rows, args)


def print_speed_table(rows, args) -> None:
    print(f"\nbackbone {args.backbone}, batch {args.batch_size}, device {args.device}, "
          f"{os.cpu_count()} CPU(s) visible, torch threads {__import__('torch').get_num_threads()}\n")
    print("| painting | generator | case | tiles | s | MP/s | render / floor | vs naive | peak RSS over "
          "baseline | input + output | beyond the images |")
    print("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for size, height, width, ngf, results in rows:
        naive = results["naive"]["seconds"]
        images_mb = 2 * height * width * 3 / 2**20  # decoded RGB input + RGB output
        for name, r in results.items():
            floor = r["tiles"] * r["per_tile"]
            over = r["peak_mb"] - r["baseline_mb"]
            label = f"ngf {ngf}" + (" (narrow stand-in)" if ngf != args.ngf else "")
            print(f"| {width}x{height} ({height * width / 1e6:.0f} MP) | {label} | {name} | {r['tiles']} | "
                  f"{r['seconds']:.1f} | {height * width / 1e6 / r['seconds']:.3f} | {r['seconds'] / floor:.2f}x | "
                  f"{r['seconds'] / naive:.2f}x | {over:.0f} MB | {images_mb:.0f} MB | {over - images_mb:+.0f} MB |")


def quality(args: argparse.Namespace) -> None:
    from lpd_pipeline.rendering import RenderReport, RenderSettings, colorize_gray, load_render_model, plan_render
    from lpd_pipeline.rendering.render import read_gray, seam_phase
    from lpd_pipeline.rendering.seams import chroma_of, seam_spike

    model = load_render_model(args.checkpoint, args.device)
    if args.stand_in == "tile-offset":
        model = tile_offset_model(model)
    print(f"\ncheckpoint {args.checkpoint} ({model.variant}, epoch {model.epoch}, tile {model.tile_size})\n")
    print("| painting | size | spread none | spread anchor | p95 none | p95 anchor | chroma none | chroma anchor "
          "| seam naive | seam blended |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    scale_rows = []
    for path in args.paintings:
        gray = read_gray(path, 10**9)
        cases = {}
        for name, settings in (("none", RenderSettings(consistency="none")),
                               ("anchor", RenderSettings(consistency="anchor")),
                               ("naive", RenderSettings(mode="naive", consistency="none"))):
            report = RenderReport(None)
            started = time.perf_counter()
            rgb = colorize_gray(gray, model, settings, report=report)
            cases[name] = (rgb, report, settings, time.perf_counter() - started)
        seams = {k: seam_spike(cases[k][0], *seam_phase(cases[k][1].plan, cases[k][2])).worst
                 for k in ("naive", "none")}
        s_none, s_anchor = cases["none"][1].consistency, cases["anchor"][1].consistency
        print(f"| {Path(path).name[:40]} | {gray.shape[1]}x{gray.shape[0]} | {s_none.mean:.2f} | {s_anchor.mean:.2f} "
              f"| {s_none.p95:.2f} | {s_anchor.p95:.2f} | {s_none.mean_chroma:.1f} | {s_anchor.mean_chroma:.1f} "
              f"| {seams['naive']:.2f} | {seams['none']:.2f} |")
        reference = chroma_of(cases["anchor"][0])
        for scale in (0.5, 0.25):
            started = time.perf_counter()
            rgb = colorize_gray(gray, model, RenderSettings(scale=scale))
            seconds = time.perf_counter() - started
            chroma = chroma_of(rgb)
            delta = float(np.sqrt(((chroma - reference) ** 2).sum(axis=0)).mean())
            scale_rows.append((Path(path).name[:40], scale, seconds / cases["anchor"][3],
                               float(np.hypot(*chroma).mean()), float(np.hypot(*reference).mean()), delta))
    print("\n| painting | scale | time vs full | chroma | chroma at full scale | mean Delta-E(a*b*) to full |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, scale, ratio, chroma, full, delta in scale_rows:
        print(f"| {name} | {scale} | {ratio:.2f}x | {chroma:.1f} | {full:.1f} | {delta:.2f} |")


def tile_offset_model(model):
    """The checkpoint's generator with a per-tile a*b* offset added (+-0.1 of the output range, from the tile's
    content): a stand-in for a model whose neighbouring tiles disagree in colour, to show what the anchor does."""
    import torch
    from torch import nn

    from lpd_pipeline.rendering.model import RenderModel

    class TileOffset(nn.Module):
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, x):
            out = self.net(x)
            key = x.mean(dim=(1, 2, 3)) * 997.0
            offset = torch.stack([torch.sin(key), torch.cos(key * 1.3), -torch.sin(key * 0.7)], dim=1) * 0.1
            return (out + offset[:, :out.shape[1], None, None]).clamp(-1, 1)

    return RenderModel(TileOffset(model.net), model.color_space, model.tile_size, model.multiple,
                       model.variant + " + tile offsets", model.checkpoint, model.epoch, model.origin)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["speed", "quality", "child"])
    parser.add_argument("paintings", nargs="*")
    parser.add_argument("--sizes", default="1,10,100")
    parser.add_argument("--backbone", default="unet256", choices=["unet256", "resnet9"])
    parser.add_argument("--ngf", type=int, default=64)
    parser.add_argument("--narrow-ngf", type=int, default=8)
    parser.add_argument("--narrow-from-mp", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--checkpoint")
    parser.add_argument("--stand-in", choices=["none", "tile-offset"], default="none",
                        help="quality: add per-tile colour offsets to the model (a disagreeing stand-in)")
    for name in ("child-ngf", "child-settings", "child-input", "child-output"):
        parser.add_argument(f"--{name}", type=int if name == "child-ngf" else str)
    args = parser.parse_intermixed_args()
    if args.what == "child":
        child(args)
    elif args.what == "speed":
        speed(args)
    else:
        if not args.checkpoint or not args.paintings:
            parser.error("quality needs --checkpoint and at least one painting")
        quality(args)


if __name__ == "__main__":
    main()
