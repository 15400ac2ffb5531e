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
from pathlib import Path, PurePath

import cv2
import jinja2
import numpy as np
import pandas as pd

from lpd_pipeline import imaging
from lpd_pipeline.files import read_json_object, write_text_atomic
from lpd_pipeline.models.options import VARIANTS, variant_description
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
    palette_outputs: int = 0  # views of the palette-control section (one painting under each palette)

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


class _Pyramids:
    """The Deep Zoom views of one site build: cut (or taken over from the previous build), their viewers, counts,
    and the files that could not be shown (for the operator with paths, for the page with file names)."""

    def __init__(self, site_dir: Path, build: Path, base: Path | None, tile_size: int, quality: int,
                 max_pixels: int) -> None:
        self.site_dir, self.build, self.base = site_dir, build, base
        self.tile_size, self.quality, self.max_pixels = tile_size, quality, max_pixels
        self.previous, self.manifest = read_json_object(site_dir / PYRAMID_MANIFEST), {}
        self.viewers: list[dict] = []
        self.problems: list[str] = []
        self.page_problems: list[str] = []
        self.tiles = self.reused = 0

    def view(self, path_value: object, anchor: str, name: str, label: str, group: int,
             thumbs: list | None = None) -> dict:
        """A viewer of the image ``path_value`` as ``paintings/<anchor>/<name>.dzi`` (linked-zoom ``group``);
        ``{"viewer": id, "error": "", "size": ...}``, or ``{"viewer": None, "error": reason}`` (a problem named
        ``label``)."""
        folder = self.build / "paintings" / anchor
        source = Path(str(path_value))
        try:
            source = _resolve(path_value, self.base)
            key = _pyramid_key(source, self.tile_size, self.quality)
            dzi = _reuse_pyramid(self.site_dir, self.previous.get(key), folder, name)
            if dzi is None:
                dzi = deepzoom.write_deep_zoom(source, folder, name, tile_size=self.tile_size, quality=self.quality,
                                               max_pixels=self.max_pixels)
            else:
                self.reused += 1
            if thumbs is not None:
                thumbs.append(dzi.thumbnail())
        except (imaging.ImageDecodeError, OSError, ValueError) as exc:
            detail = str(exc) if str(source) in str(exc) else f"{source}: {exc}"
            self.problems.append(f"{label}: {detail}")
            shown = _page_text(detail, source, self.base)
            self.page_problems.append(f"{label}: {shown}")
            return {"viewer": None, "error": shown}
        self.manifest[key] = f"paintings/{anchor}/{name}"
        self.tiles += dzi.tiles
        viewer_id = f"viewer-{group:03d}-{name}"
        self.viewers.append({"id": viewer_id, "group": group,
                             "tileSource": dzi.tile_source(f"paintings/{anchor}/")})
        return {"viewer": viewer_id, "error": "", "size": f"{dzi.width} × {dzi.height}"}


def _painting_entry(anchor: str, pid: str, first: pd.Series, cells: list[dict]) -> dict:
    return {"anchor": anchor, "title": _text(first["title"]) or "(untitled)", "artist": _text(first["artist"]),
            "source": _text(first["source"]), "license": _text(first["license"]), "painting_id": pid,
            "size": f"{format_cell(first['width'])} × {format_cell(first['height'])}", "cells": cells,
            **_shape(first["width"], first["height"])}


def _output_details(row: pd.Series) -> list[str]:
    return [f"epoch {format_cell(row['epoch'])}", f"checkpoint {Path(_text(row['checkpoint'])).name}",
            f"{format_cell(row['seconds'])} s to colorize"]


def _painting_articles(renders: pd.DataFrame, variants: list[str], views: _Pyramids, preview_rows: list
                       ) -> tuple[list[dict], int]:
    """One article per painting: the ink original, then one cell per variant; and the outputs shown."""
    paintings, outputs = [], 0
    ordered = renders.assign(_pid=renders["painting_id"].astype(str))  # paintings in the table's order
    for index, (pid, group) in enumerate(ordered.groupby("_pid", sort=False)):
        group = group.sort_values("epoch", ascending=False)
        first, anchor, thumbs = group.iloc[0], f"p{index:03d}", []
        ink = views.view(first["input_path"], anchor, "ink", f"painting {pid} (ink original)", index, thumbs)
        cells = [{"heading": "ink original", "machine": False, "details": [], "palette": "", "swatch": "", **ink}]
        by_variant = {str(v): rows.iloc[0] for v, rows in group.groupby(group["variant"].astype(str))}
        for column, variant in enumerate(variants):
            row = by_variant.get(variant)
            if row is None:
                cells.append({"heading": variant, "machine": True, "viewer": None, "details": [], "palette": "",
                              "swatch": "", "error": "not rendered for this model variant"})
                continue
            cell = views.view(row["output_path"], anchor, f"v{column}", f"painting {pid} ({variant})", index, thumbs)
            outputs += cell["viewer"] is not None
            cells.append({"heading": variant, "machine": True, "details": _output_details(row), "palette": "",
                          "swatch": "", **cell})
        paintings.append(_painting_entry(anchor, pid, first, cells))
        preview_rows.append(thumbs)
    return paintings, outputs


def _palette_articles(showcase: pd.DataFrame, views: _Pyramids, first_group: int, build: Path
                      ) -> tuple[list[dict], int]:
    """Palette control: per (painting, variant) of ``showcase`` (rows with a ``palette``), the ink original and
    the painting under each palette, side by side, each labelled with its palette (and its swatch, if any)."""
    articles, outputs = [], 0
    ordered = showcase.assign(_pid=showcase["painting_id"].astype(str), _v=showcase["variant"].astype(str))
    for number, ((pid, variant), group) in enumerate(ordered.groupby(["_pid", "_v"], sort=False)):
        first, anchor, index = group.iloc[0], f"palette{number:03d}", first_group + number
        ink = views.view(first["input_path"], anchor, "ink", f"painting {pid} (ink original)", index)
        cells = [{"heading": "ink original", "machine": False, "details": [], "palette": "", "swatch": "", **ink}]
        for column, row in enumerate(group.to_dict("records")):
            label = palette_label(row["palette"])
            cell = views.view(row["output_path"], anchor, f"pal{column}", f"painting {pid} ({variant}, palette "
                              f"{label})", index)
            outputs += cell["viewer"] is not None
            cells.append({"heading": f"palette: {label}", "palette": label, "machine": True,
                          "details": _output_details(pd.Series(row)),
                          "swatch": _swatch(row.get("palette_swatch"), f"{anchor}-{column}", views, build), **cell})
        articles.append({**_painting_entry(anchor, pid, first, cells), "variant": variant, "group": index,
                         "recipe": _recipe_text(variant)})
    return articles, outputs


def _swatch(path_value: object, name: str, views: _Pyramids, build: Path) -> str:
    """The palette's swatch copied into ``palettes/`` of the site: its src, or "" (none, or a problem noted)."""
    if not _text(path_value):
        return ""
    try:
        source = _resolve(path_value, views.base)
    except PathEscapeError as exc:
        views.problems.append(f"palette swatch: {exc}")
        views.page_problems.append(f"palette swatch {Path(_text(path_value)).name}: outside the storage root")
        return ""
    copied = _copy_images(build, "palettes", [(source, name)], views.problems, views.page_problems)
    if not copied:
        return ""
    target = build / "palettes" / f"{name}{Path(copied[0]['src']).suffix}"
    (build / copied[0]["src"]).replace(target)  # one file per swatch, named by its place on the page
    return f"palettes/{target.name}"


def palette_label(palette: object) -> str:
    """A palette as the page names it: a preset's name, or a reference painting's file name (never its path)."""
    text = _text(palette)
    return PurePath(text.replace("\\", "/")).name if "/" in text or "\\" in text else text


def _recipe_text(variant: str) -> str:
    try:
        return variant_description(variant)
    except ValueError:  # a variant this version does not know (an older table)
        return ""


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
    ``base_dir`` (the storage root). ``renders`` needs :data:`RENDER_COLUMNS` (any set of variants); rows with
    a non-empty ``palette`` (optional column) make the palette-control section instead of the painting grid."""
    missing = [c for c in RENDER_COLUMNS if c not in renders.columns]
    if missing:
        raise ValueError(f"renders table lacks column(s) {missing}; needs {list(RENDER_COLUMNS)}")
    if tile_size < 16 or not 1 <= quality <= 100:
        raise ValueError(f"tile_size must be >= 16 and quality within 1..100, got {tile_size}, {quality}")
    base = Path(base_dir).resolve() if base_dir is not None else None
    site_dir = Path(site_dir)
    palettes = renders["palette"].fillna("").astype(str) if "palette" in renders else pd.Series("", renders.index)
    plain, showcase = renders[palettes == ""], renders[palettes != ""].assign(palette=palettes[palettes != ""])
    with build_folder(site_dir) as build:
        # Pyramids of unchanged files are taken over from the previous site (hard links), not cut again.
        views = _Pyramids(site_dir, build, base, tile_size, quality, max_pixels)
        copy_static(build / "assets", "openseadragon", "site.css", "site.js")
        variants = variant_order(sorted(set(renders["variant"].astype(str))))
        preview_rows: list = []
        paintings, outputs = _painting_articles(plain, variant_order(sorted(set(plain["variant"].astype(str)))),
                                                views, preview_rows)
        palette_items, palette_outputs = _palette_articles(showcase, views, len(paintings), build)
        sample_items = _copy_images(build, "samples", [(s.path, f"{s.variant} epoch {s.epoch}") for s in samples],
                                    views.problems, views.page_problems)
        for item, sheet in zip(sample_items, samples):
            item.update(variant=sheet.variant, epoch=sheet.epoch, note=sheet.note)
        plot_items = _copy_images(build, "plots", [(Path(p), Path(p).stem) for p in plots], views.problems,
                                  views.page_problems)
        epoch_tables = []
        if metrics_by_epoch is not None and not metrics_by_epoch.empty and "variant" in metrics_by_epoch:
            for variant, rows in metrics_by_epoch.groupby(metrics_by_epoch["variant"].astype(str)):
                epoch_tables.append({"variant": variant, "table": table_rows(rows.drop(columns="variant"))})
        html = template_environment().get_template("results.html.j2").render(
            title=title, machine_label=MACHINE_LABEL, variants=variants, paintings=paintings,
            recipes=[{"variant": v, "recipe": _recipe_text(v)} for v in variants], palettes=palette_items,
            viewer_config={"prefixUrl": "assets/openseadragon/images/", "viewers": views.viewers},
            comparison=table_rows(comparison), epoch_tables=epoch_tables, samples=sample_items,
            plots=plot_items, problems=views.page_problems,
            generated=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        )
        write_text_atomic(build / "index.html", html)
        write_text_atomic(build / PYRAMID_MANIFEST, json.dumps(views.manifest, indent=1))
    return ResultsSite(site_dir / "index.html", len(paintings), outputs, views.tiles, views.reused, views.problems,
                       _preview(preview_rows), palette_outputs)


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
