"""``python -m lpd_pipeline.metrics REAL_DIR FAKE_DIR``: every metric of two folders of images, as JSON.

Rule: the images of both folders (top level, image suffixes, hidden files ignored) are paired by file name;
names present on one side only, files that do not decode and pairs (or sets) of different sizes are errors
that name the files, reported all at once before any network runs. Progress goes to stderr; the last stdout
line is one JSON object with :data:`lpd_pipeline.metrics.suite.KEYS` (non-finite values, e.g. the PSNR of
identical images, are written as null).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Sequence

import numpy as np

from lpd_pipeline.config import ConfigError
from lpd_pipeline.imaging import IMAGE_SUFFIXES, ImageDecodeError, decode_image

MAX_LISTED = 10
CLI_SETTINGS = ("device", "bootstrap", "seed")  # the EvaluationSettings fields this command takes


class InputError(ValueError):
    """The two folders cannot be compared (the message names the files)."""


def _listing(folder: Path) -> dict[str, Path]:
    if not folder.is_dir():
        raise InputError(f"{folder}: not a folder")
    return {p.name: p for p in sorted(folder.iterdir())
            if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES}


def _names(items, limit: int = MAX_LISTED) -> str:
    items = list(items)
    shown = ", ".join(str(i) for i in items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def matched_pairs(real_dir: str | Path, fake_dir: str | Path) -> list[tuple[Path, Path]]:
    """``(real, fake)`` paths paired by file name, sorted; :class:`InputError` on unmatched names or no images."""
    real, fake = _listing(Path(real_dir)), _listing(Path(fake_dir))
    only_real, only_fake = sorted(set(real) - set(fake)), sorted(set(fake) - set(real))
    if only_real or only_fake:
        parts = []
        if only_real:
            parts.append(f"only in {real_dir}: {_names(only_real)}")
        if only_fake:
            parts.append(f"only in {fake_dir}: {_names(only_fake)}")
        raise InputError("file names do not match; " + "; ".join(parts))
    if len(real) < 2:
        raise InputError(f"{real_dir} and {fake_dir}: need at least 2 image pairs, found {len(real)}")
    return [(real[name], fake[name]) for name in sorted(real)]


def load_pairs(pairs: Sequence[tuple[Path, Path]]) -> tuple[np.ndarray, np.ndarray]:
    """Decode every pair into two uint8 ``[N, H, W, 3]`` arrays; one :class:`InputError` lists every problem."""
    problems, real_images, fake_images = [], [], []
    for real_path, fake_path in pairs:
        decoded = []
        for path in (real_path, fake_path):
            try:
                decoded.append(decode_image(path))
            except (ImageDecodeError, OSError) as exc:
                problems.append(f"unreadable: {exc}")
        if len(decoded) == 2:
            if decoded[0].shape != decoded[1].shape:
                problems.append(f"different sizes: {real_path} is {decoded[0].shape[1]}x{decoded[0].shape[0]}, "
                                f"{fake_path} is {decoded[1].shape[1]}x{decoded[1].shape[0]}")
            else:
                real_images.append(decoded[0])
                fake_images.append(decoded[1])
    if not problems:
        first: dict[tuple, Path] = {}
        for (path, _), image in zip(pairs, real_images):
            first.setdefault(image.shape, path)
        if len(first) > 1:
            problems.append("pairs of different sizes in one set: "
                            + _names(f"{path} ({shape[1]}x{shape[0]})" for shape, path in first.items()))
    if problems:
        raise InputError(f"{len(problems)} problem(s):\n  " + "\n  ".join(problems[:MAX_LISTED])
                         + (f"\n  ... and {len(problems) - MAX_LISTED} more" if len(problems) > MAX_LISTED else ""))
    return np.stack(real_images), np.stack(fake_images)


def _json_value(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def main(argv: Sequence[str] | None = None) -> int:
    from lpd_pipeline.evaluation.settings import EvaluationSettings

    parser = argparse.ArgumentParser(
        prog="python -m lpd_pipeline.metrics",
        description="FID, KID (with bootstrap 95%% intervals), LPIPS, CIEDE2000 ΔE, PSNR, SSIM and colourfulness "
                    "of FAKE_DIR's images against REAL_DIR's, paired by file name. The last stdout line is JSON.")
    parser.add_argument("real_dir", type=Path, metavar="REAL_DIR")
    parser.add_argument("fake_dir", type=Path, metavar="FAKE_DIR")
    # --device, --bootstrap, --seed: the EvaluationSettings fields of the same names (one declaration).
    EvaluationSettings.add_cli_arguments(
        parser, exclude=tuple(set(EvaluationSettings.model_fields) - set(CLI_SETTINGS)))
    parser.add_argument("--features-cache", type=Path, default=None, metavar="DIR",
                        help="cache REAL_DIR's Inception features here, keyed by the files' content (default: off)")
    parser.add_argument("--no-download", action="store_true",
                        help="never fetch the metric weights' archives; fail if the weight cache is incomplete")
    args = parser.parse_args(argv)
    try:
        settings = EvaluationSettings.from_cli(args)
    except ConfigError as exc:
        print(f"error: invalid settings: {exc}", file=sys.stderr)
        return 2
    from lpd_pipeline.metrics.archives import WeightsUnavailable
    from lpd_pipeline.metrics.cache import cached_features
    from lpd_pipeline.metrics.models import MetricModels
    from lpd_pipeline.metrics.suite import all_metrics

    try:
        pairs = matched_pairs(args.real_dir, args.fake_dir)
        real, fake = load_pairs(pairs)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{len(pairs)} image pairs of {real.shape[2]}x{real.shape[1]}", file=sys.stderr)
    try:
        models = MetricModels(settings.device, allow_download=not args.no_download)
    except WeightsUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    real_features = None
    if args.features_cache is not None:
        real_features = cached_features([p for p, _ in pairs], args.features_cache,
                                        lambda: models.inception_features(real))
    result = all_metrics(real, fake, models, real_features=real_features, bootstrap=settings.bootstrap,
                         seed=settings.seed)
    print(json.dumps({key: _json_value(value) for key, value in result.items()}, allow_nan=False))
    return 0
