"""``python -m lpd_pipeline.colorize INPUT OUTPUT``: colorize whole ink paintings (a file or a folder of them).

Without ``--checkpoint`` the storage's best checkpoint of ``--variant`` is used (evaluation's choice), else its
latest training checkpoint, and the tool says which. ``--checkpoint`` also takes a generator trained by
junyanz/pytorch-CycleGAN-and-pix2pix (``latest_net_G.pth``). Every output PNG is written atomically and carries
text chunks saying it is machine-colorized, by which tool version, checkpoint, variant, epoch and settings.
A folder INPUT is searched recursively; OUTPUT is then a folder mirroring it. A painting that cannot be
colorized is reported and skipped; the exit status is 1 when any was.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from lpd_pipeline.imaging import IMAGE_SUFFIXES
from lpd_pipeline.models.options import VARIANTS
from lpd_pipeline.settings import StorageLayout, default_storage_root

DEFAULT_VARIANT = "unet256"  # the paper's better model in its survey (14.8 % of people spotted its fakes)


def build_parser() -> argparse.ArgumentParser:
    """INPUT, OUTPUT and the model's source, then one flag per RenderSettings field (generated from the fields)."""
    from lpd_pipeline.rendering.settings import RenderSettings

    parser = argparse.ArgumentParser(
        prog="python -m lpd_pipeline.colorize",
        description="Colorize whole ink paintings of any size with a trained pix2pix generator.")
    parser.add_argument("input", type=Path, help="an image file, or a folder of them (searched recursively)")
    parser.add_argument("output", type=Path,
                        help="the output .png (or a folder: then <folder>/<input stem>.png); a folder for a "
                             "folder INPUT")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--checkpoint", type=Path,
                        help="an lpd generator.pt / training checkpoint, or a pix2pix latest_net_G.pth")
    source.add_argument("--variant", "--backbone", dest="variant", choices=VARIANTS, default=None,
                        help=f"use the storage's best (else latest) checkpoint of this variant "
                             f"(default: {DEFAULT_VARIANT}, else the first variant that has one)")
    parser.add_argument("--storage", type=Path, default=None,
                        help="storage root for --variant (default: LPD_STORAGE or ./storage)")
    group = parser.add_argument_group("render settings (RenderSettings fields)")
    RenderSettings.add_cli_arguments(group, default_text={"tile": "the generator's training tile size"})
    parser.add_argument("--preview", action="store_true", help="also write <output stem>.preview.jpg")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def _pairs(input_path: Path, output_path: Path) -> list[tuple[Path, Path]]:
    if input_path.is_dir():
        if output_path.exists() and not output_path.is_dir():
            raise SystemExit(f"error: INPUT {input_path} is a folder, so OUTPUT {output_path} must be a folder")
        files = sorted(p for p in input_path.rglob("*")
                       if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))
        if not files:
            raise SystemExit(f"error: no image files ({', '.join(IMAGE_SUFFIXES)}) under {input_path}")
        return [(p, (output_path / p.relative_to(input_path)).with_suffix(".png")) for p in files]
    if not input_path.exists():
        raise SystemExit(f"error: INPUT {input_path} does not exist")
    if output_path.is_dir():
        return [(input_path, output_path / f"{input_path.stem}.png")]
    if output_path.suffix.lower() != ".png":
        raise SystemExit(f"error: OUTPUT {output_path} must end in .png (or be an existing folder)")
    return [(input_path, output_path)]


def _choose_checkpoint(layout: StorageLayout, variant: str | None, resolve):
    """The named variant's checkpoint; without a name the first variant (unet256 first) that has one."""
    if variant is not None:
        return resolve(layout, variant)
    order = [DEFAULT_VARIANT, *(v for v in VARIANTS if v != DEFAULT_VARIANT)]
    for candidate in order:
        try:
            choice = resolve(layout, candidate)
        except FileNotFoundError:
            continue
        if candidate != DEFAULT_VARIANT:
            print(f"no checkpoint for {DEFAULT_VARIANT}; using {candidate}", file=sys.stderr)
        return choice
    raise FileNotFoundError(f"no checkpoint for any variant ({', '.join(order)}) under {layout.root}: train one "
                            "first (job train_models) or pass --checkpoint")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from lpd_pipeline.config import ConfigError
    from lpd_pipeline.rendering import RenderInputError, RenderSettings, load_render_model, resolve_checkpoint, \
        render_file
    from lpd_pipeline.training.checkpoints import CheckpointError

    try:
        settings = RenderSettings.from_cli(args)
    except ConfigError as exc:
        print(f"error: invalid settings: {exc}", file=sys.stderr)
        return 2
    pairs = _pairs(args.input, args.output)
    checkpoint = args.checkpoint
    try:
        if checkpoint is None:
            layout = StorageLayout(args.storage or default_storage_root())
            choice = _choose_checkpoint(layout, args.variant, resolve_checkpoint)
            print(f"using the {choice.describe()}"
                  + ("" if choice.source == "best" else " (no evaluated best checkpoint yet)"), file=sys.stderr)
            checkpoint = choice.path
        model = load_render_model(checkpoint, settings.device, palette=settings.palette,
                                  temperature=settings.temperature)
    except (FileNotFoundError, CheckpointError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    from tqdm import tqdm

    failures = 0
    for source, target in pairs:
        bar = tqdm(desc=source.name, unit="tile", disable=args.quiet, file=sys.stderr)
        try:
            report = render_file(
                source, target, model, settings,
                preview_path=target.with_suffix(".preview.jpg") if args.preview else None,
                progress=bar.update, on_plan=lambda plan: setattr(bar, "total", plan.total_tiles))
        except (RenderInputError, ValueError, OSError) as exc:
            failures += 1
            bar.close()
            print(f"error: {exc}", file=sys.stderr)
            continue
        bar.close()
        spread = report.consistency
        detail = f", colour spread {spread.mean:.2f}" if spread is not None and spread.cells else ""
        print(f"{source} -> {target} ({report.plan.width}x{report.plan.height}, {report.plan.total_tiles} tiles, "
              f"{report.seconds:.1f} s{detail})", file=sys.stderr)
    if failures:
        print(f"{failures} of {len(pairs)} painting(s) could not be colorized", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
