"""The results page: a static site (``index.html`` + assets) showing each ink painting beside its colorizations.

The rule: everything the page shows comes from the tables and files passed in (the renders table, the
evaluation's metric tables, plots and sample sheets); every piece of text goes through Jinja2 with autoescape;
each painting and each output is a Deep Zoom pyramid viewed with the vendored OpenSeadragon, its tile source
given inline in the page (no XHR), so the site works from ``file://`` and from any static server. Every output
carries a visible "machine-colorized" label. The site is built in a temp folder and swapped in whole
(:mod:`lpd_pipeline.reports.publish`); a file that cannot be read is shown as missing, with the reason, and
listed in the result's ``problems``, while everything else is still published.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import cv2
import jinja2
import numpy as np
import pandas as pd

from lpd_pipeline import imaging
from lpd_pipeline.files import read_json_object, write_text_atomic
from lpd_pipeline.models.options import VARIANTS
from lpd_pipeline.reports import deepzoom
from lpd_pipeline.reports.publish import build_folder
from lpd_pipeline.settings import PathEscapeError, safe_join

PACKAGE_DIR = Path(__file__).resolve().parent
TEMPLATES_DIR = PACKAGE_DIR / "templates"
STATIC_DIR = PACKAGE_DIR / "static"
MACHINE_LABEL = "machine-colorized"
PYRAMID_MANIFEST = "pyramids.json"  # pyramid key -> its path in the site, so a rebuild reuses unchanged ones
PYRAMID_FORMAT = 1
WIDE_ASPECT = 2.2  # wider paintings (handscrolls) show ink and outputs one under another
RENDER_COLUMNS = ("painting_id", "title", "artist", "source", "license", "variant", "epoch", "checkpoint",
                  "input_path", "output_path", "width", "height", "seconds")


@dataclass(frozen=True)
class SampleSheet:
    """One evaluation sample sheet (gray | generated | real tiles) of a variant at an epoch."""

    variant: str
    epoch: int
    path: Path
    note: str = ""


@dataclass
class ResultsSite:
    index: Path
    paintings: int
    outputs: int
    tiles: int
    reused_pyramids: int = 0  # taken over unchanged from the previous build
    problems: list[str] = field(default_factory=list)
    preview: np.ndarray | None = field(default=None, repr=False)  # a small sheet: one row per painting, ink then outputs

    @property
    def url(self) -> str:
        return self.index.as_uri()


def template_environment() -> jinja2.Environment:
    """The one Jinja2 environment of the reports: autoescape on for every template, undefined names fail."""
    return jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES_DIR), autoescape=True,
                              undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def copy_static(target_dir: Path, *names: str) -> None:
    """Copy the package's static files (``static/<name>``: a file or folder) into ``target_dir``."""
    for name in names:
        source = STATIC_DIR / name
        if source.is_dir():
            shutil.copytree(source, target_dir / name)
        else:
            target_dir.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target_dir / name)


def _resolve(path_value: object, base_dir: Path | None) -> Path:
    """An absolute path as it is (paintings may live anywhere); a relative one under ``base_dir``, never out of it."""
    path = Path(str(path_value))
    return path if path.is_absolute() or base_dir is None else safe_join(base_dir, str(path))


def variant_order(variants: Sequence[str]) -> list[str]:
    known = [v for v in VARIANTS if v in variants]
    return known + sorted(v for v in variants if v not in VARIANTS)


def _text(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


def format_cell(value: object) -> str:
    """A table cell as text: floats to 4 significant digits, missing values as an en dash."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.4g}"
    return str(value)


def table_rows(frame: pd.DataFrame | None) -> dict | None:
    if frame is None or frame.empty:
        return None
    return {"columns": [str(c) for c in frame.columns],
            "rows": [[format_cell(v) for v in row] for row in frame.itertuples(index=False)]}


def build_results_site(
    site_dir: str | os.PathLike,
    renders: pd.DataFrame,
    *,
    base_dir: str | os.PathLike | None = None,
    comparison: pd.DataFrame | None = None,
    metrics_by_epoch: pd.DataFrame | None = None,
    plots: Sequence[str | os.PathLike] = (),
    samples: Sequence[SampleSheet] = (),
    title: str = "lpd-pipeline: machine-colorized Chinese landscape paintings",
    tile_size: int = deepzoom.DEFAULT_TILE_SIZE,
    quality: int = deepzoom.DEFAULT_QUALITY,
    max_pixels: int = imaging.DEFAULT_MAX_PIXELS,
) -> ResultsSite:
    """Build the site into ``site_dir`` (replaced as a whole). Relative paths in ``renders`` are taken from
    ``base_dir`` (the storage root). ``renders`` needs :data:`RENDER_COLUMNS` (any set of variants)."""
    missing = [c for c in RENDER_COLUMNS if c not in renders.columns]
    if missing:
        raise ValueError(f"renders table lacks column(s) {missing}; needs {list(RENDER_COLUMNS)}")
    if tile_size < 16 or not 1 <= quality <= 100:
        raise ValueError(f"tile_size must be >= 16 and quality within 1..100, got {tile_size}, {quality}")
    base = Path(base_dir).resolve() if base_dir is not None else None
    site_dir = Path(site_dir)
    problems: list[str] = []  # for the operator (full paths); the page shows page_problems (file names)
    page_problems: list[str] = []
    tiles = outputs = reused = 0
    # Pyramids of unchanged files are taken over from the previous site (hard links), not cut again.
    previous, manifest = read_json_object(site_dir / PYRAMID_MANIFEST), {}
    with build_folder(site_dir) as build:
        copy_static(build / "assets", "openseadragon", "site.css", "site.js")
        variants = variant_order(sorted(set(renders["variant"].astype(str))))
        paintings, viewers, preview_rows = [], [], []
        ordered = renders.assign(_pid=renders["painting_id"].astype(str))  # paintings in the table's order
        for index, (pid, group) in enumerate(ordered.groupby("_pid", sort=False)):
            group = group.sort_values("epoch", ascending=False)
            first = group.iloc[0]
            folder = build / "paintings" / f"p{index:03d}"
            cells, thumbs = [], []

            def pyramid(path_value: object, name: str, label: str) -> dict:
                nonlocal tiles, reused
                source = Path(str(path_value))
                try:
                    source = _resolve(path_value, base)
                    key = _pyramid_key(source, tile_size, quality)
                    dzi = _reuse_pyramid(site_dir, previous.get(key), folder, name)
                    if dzi is None:
                        dzi = deepzoom.write_deep_zoom(source, folder, name, tile_size=tile_size,
                                                       quality=quality, max_pixels=max_pixels)
                    else:
                        reused += 1
                    thumbs.append(dzi.thumbnail())
                except (imaging.ImageDecodeError, OSError, ValueError) as exc:
                    detail = str(exc) if str(source) in str(exc) else f"{source}: {exc}"
                    problems.append(f"painting {pid} ({label}): {detail}")
                    shown = _page_text(detail, source, base)
                    page_problems.append(f"painting {pid} ({label}): {shown}")
                    return {"viewer": None, "error": shown}
                manifest[key] = f"paintings/{folder.name}/{name}"
                tiles += dzi.tiles
                viewer_id = f"viewer-{index:03d}-{name}"
                viewers.append({"id": viewer_id, "group": index,
                                "tileSource": dzi.tile_source(f"paintings/{folder.name}/")})
                return {"viewer": viewer_id, "error": "", "size": f"{dzi.width} × {dzi.height}"}

            ink = pyramid(first["input_path"], "ink", "ink original")
            cells.append({"heading": "ink original", "machine": False, "details": [], **ink})
            by_variant = {str(v): rows.iloc[0] for v, rows in group.groupby(group["variant"].astype(str))}
            for column, variant in enumerate(variants):
                row = by_variant.get(variant)
                if row is None:
                    cells.append({"heading": variant, "machine": True, "viewer": None, "details": [],
                                  "error": "not rendered for this model variant"})
                    continue
                cell = pyramid(row["output_path"], f"v{column}", variant)
                outputs += cell["viewer"] is not None
                details = [f"epoch {format_cell(row['epoch'])}",
                           f"checkpoint {Path(_text(row['checkpoint'])).name}",
                           f"{format_cell(row['seconds'])} s to colorize"]
                cells.append({"heading": variant, "machine": True, "details": details, **cell})
            paintings.append({
                "anchor": f"p{index:03d}", "title": _text(first["title"]) or "(untitled)",
                "artist": _text(first["artist"]), "source": _text(first["source"]),
                "license": _text(first["license"]), "painting_id": pid,
                "size": f"{format_cell(first['width'])} × {format_cell(first['height'])}", "cells": cells,
                **_shape(first["width"], first["height"]),
            })
            preview_rows.append(thumbs)
        sample_items = _copy_images(build, "samples", [(s.path, f"{s.variant} epoch {s.epoch}") for s in samples],
                                    problems, page_problems)
        for item, sheet in zip(sample_items, samples):
            item.update(variant=sheet.variant, epoch=sheet.epoch, note=sheet.note)
        plot_items = _copy_images(build, "plots", [(Path(p), Path(p).stem) for p in plots], problems,
                                  page_problems)
        epoch_tables = []
        if metrics_by_epoch is not None and not metrics_by_epoch.empty and "variant" in metrics_by_epoch:
            for variant, rows in metrics_by_epoch.groupby(metrics_by_epoch["variant"].astype(str)):
                epoch_tables.append({"variant": variant, "table": table_rows(rows.drop(columns="variant"))})
        html = template_environment().get_template("results.html.j2").render(
            title=title, machine_label=MACHINE_LABEL, variants=variants, paintings=paintings,
            viewer_config={"prefixUrl": "assets/openseadragon/images/", "viewers": viewers},
            comparison=table_rows(comparison), epoch_tables=epoch_tables, samples=sample_items,
            plots=plot_items, problems=page_problems,
            generated=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        )
        write_text_atomic(build / "index.html", html)
        write_text_atomic(build / PYRAMID_MANIFEST, json.dumps(manifest, indent=1))
    return ResultsSite(site_dir / "index.html", len(paintings), outputs, tiles, reused, problems,
                       _preview(preview_rows))


def _pyramid_key(source: Path, tile_size: int, quality: int) -> str:
    """Identifies a pyramid: the source file (path, size, modification time) and the tiling settings, hashed
    (the manifest is published with the site and must not show local paths)."""
    stat = source.resolve().stat()
    text = (f"{source.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{tile_size}|{deepzoom.DEFAULT_OVERLAP}|"
            f"{quality}|{PYRAMID_FORMAT}")
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:32]


def _reuse_pyramid(site_dir: Path, previous: object, folder: Path, name: str) -> deepzoom.DeepZoomImage | None:
    """Link the previous site's pyramid ``previous`` (``paintings/pNNN/name``) into ``folder`` as ``name``."""
    if not isinstance(previous, str):
        return None
    try:
        old_folder = safe_join(site_dir, *previous.split("/")[:-1])
        old = deepzoom.read_deep_zoom(old_folder, previous.split("/")[-1])
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copytree(old.files_dir, folder / f"{name}_files", copy_function=_link_or_copy)
    except (OSError, ValueError, PathEscapeError):
        shutil.rmtree(folder / f"{name}_files", ignore_errors=True)
        return None
    text = (old_folder / f"{old.name}.dzi").read_text(encoding="utf-8")
    write_text_atomic(folder / f"{name}.dzi", text)
    return dataclasses.replace(old, name=name, folder=folder)


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _shape(width: object, height: object) -> dict:
    """Layout of a painting's row: handscrolls (wider than WIDE_ASPECT) stack their views one under another,
    every view keeps the painting's aspect ratio (within the CSS height limits)."""
    try:
        aspect = float(width) / float(height)
    except (TypeError, ValueError, ZeroDivisionError):
        aspect = 1.0
    if not math.isfinite(aspect) or aspect <= 0:
        aspect = 1.0
    return {"aspect": f"{aspect:.4f}", "layout": "stacked" if aspect > WIDE_ASPECT else "side-by-side"}


def _page_text(detail: str, source: Path, base: Path | None) -> str:
    """A problem as the published page says it: file names, never local paths."""
    detail = detail.replace(str(source), source.name)
    return detail.replace(str(base), "<storage>") if base is not None else detail


def _copy_images(build: Path, folder: str, items: Sequence[tuple[Path, str]], problems: list[str],
                 page_problems: list[str]) -> list[dict]:
    """Copy images that decode into ``build/folder`` under plain numbered names; the rest become problems."""
    copied = []
    for number, (path, caption) in enumerate(items):
        path = Path(path)
        try:
            with open(path, "rb") as handle:
                kind = imaging.sniff_image_type(handle.read(64))
            imaging.image_size(path)
            if kind not in ("png", "jpeg", "webp"):
                raise ValueError(f"{kind} images do not show in browsers")
        except (imaging.ImageDecodeError, OSError, ValueError) as exc:
            detail = str(exc) if str(path) in str(exc) else f"{path}: {exc}"
            problems.append(f"{folder}: {detail}")
            page_problems.append(f"{folder}: {_page_text(detail, path, None)}")
            continue
        name = f"{number:03d}.{'jpg' if kind == 'jpeg' else kind}"
        (build / folder).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, build / folder / name)
        copied.append({"src": f"{folder}/{name}", "caption": caption})
    return copied


def _preview(rows: list[list[np.ndarray]], height: int = 96, max_rows: int = 6, max_width: int = 960
             ) -> np.ndarray | None:
    """One strip per painting (ink, then each output), each image scaled to ``height`` pixels."""
    strips = []
    for thumbs in rows[:max_rows]:
        scaled = []
        for thumb in thumbs:
            if thumb is None:
                continue
            rgb = thumb if thumb.ndim == 3 else np.repeat(thumb[:, :, None], 3, axis=2)
            width = max(1, round(rgb.shape[1] * height / rgb.shape[0]))
            scaled += [cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA),
                       np.full((height, 4, 3), 255, np.uint8)]
        if scaled:
            strip = np.hstack(scaled)
            if strip.shape[1] > max_width:  # handscrolls: the strip shrinks to fit, keeping its proportions
                strip = cv2.resize(strip, (max_width, max(1, round(strip.shape[0] * max_width / strip.shape[1]))),
                                   interpolation=cv2.INTER_AREA)
            strips.append(strip)
    if not strips:
        return None
    width = max(s.shape[1] for s in strips)
    padded = [np.pad(s, ((0, 4), (0, width - s.shape[1]), (0, 0)), constant_values=255) for s in strips]
    return np.vstack(padded)
