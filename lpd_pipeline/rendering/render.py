"""Colorize a whole painting: gray in, RGB row blocks out, and the file-to-file path with metadata and preview.

The rule: one pass of ``rendering.sliding`` at the working scale (``settings.scale`` of the painting) with the
tile hooks of ``rendering.consistency`` (anchor first, then the spread measure), composed with the painting's
full-resolution lightness (``rendering.compose``); a reduced-scale pass is kept whole at its small size and
upsampled block by block. Input is decoded by ``imaging.decode_image`` (robust; pixel limit ``max_pixels``) and
turned to BT.601 gray a block of rows at a time; with ``settings.keep_seals`` the input's seal-paste pixels are
written back in their own colour (``rendering.seals``); output goes to a streamed, atomically renamed PNG whose
text chunks say it is machine-colorized and by what, so it is never mistaken for the original.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from lpd_pipeline import __version__
from lpd_pipeline.imaging import ImageDecodeError, decode_image, luma_bt601, save_image
from lpd_pipeline.rendering.compose import compose_rgb
from lpd_pipeline.rendering.consistency import AnchorMap, OverlapSpread, SpreadSummary
from lpd_pipeline.rendering.grid import axis_grid, window_1d
from lpd_pipeline.rendering.model import RenderModel
from lpd_pipeline.rendering.png_stream import PngStreamWriter
from lpd_pipeline.rendering.resample import downscale, upsample_rows
from lpd_pipeline.rendering.seals import KeptPixels
from lpd_pipeline.rendering.settings import RenderSettings
from lpd_pipeline.rendering.sliding import collect, sliding_window, tile_count

TOOL = f"lpd-pipeline {__version__}"
MACHINE_COLORIZED = "machine-colorized"
ANCHOR_OVERLAP = 0.5  # the anchor pass is always blended
_UPSAMPLE_ROWS = 128
PREVIEW_LONG_SIDE = 1600

Progress = Callable[[int], None]


class RenderInputError(ValueError):
    """An input painting cannot be colorized (the message names the file and the reason)."""


@dataclass
class RenderPlan:
    """What a rendering will do, known before any tile runs (for progress bars and metadata)."""

    height: int
    width: int
    tile: int
    stride: int
    work_height: int
    work_width: int
    tiles: int
    anchor_size: tuple[int, int] | None  # (h, w) of the anchor pass, None when not run
    anchor_tiles: int

    @property
    def total_tiles(self) -> int:
        return self.tiles + self.anchor_tiles


@dataclass
class RenderReport:
    plan: RenderPlan
    seconds: float = 0.0
    consistency: SpreadSummary | None = None
    output_path: Path | None = None
    preview_path: Path | None = None
    extra: dict = field(default_factory=dict)


def plan_render(height: int, width: int, model: RenderModel, settings: RenderSettings) -> RenderPlan:
    tile = settings.tile or model.tile_size
    model.check_tile(tile)
    stride = settings.stride(tile)
    work_h = max(1, round(height * settings.scale))
    work_w = max(1, round(width * settings.scale))
    anchor_size, anchor_tiles = None, 0
    if settings.consistency == "anchor":
        factor = settings.anchor_short_side(tile) / min(work_h, work_w)
        if factor < 1.0:
            anchor_size = (max(1, round(work_h * factor)), max(1, round(work_w * factor)))
            anchor_tiles = tile_count(*anchor_size, tile, _anchor_stride(tile))
    return RenderPlan(height, width, tile, stride, work_h, work_w, tile_count(work_h, work_w, tile, stride),
                      anchor_size, anchor_tiles)


def _anchor_stride(tile: int) -> int:
    return max(1, round(tile * (1.0 - ANCHOR_OVERLAP)))


def _window(settings: RenderSettings, tile: int) -> np.ndarray:
    if settings.mode == "naive":
        return np.ones(tile)  # each pixel belongs to exactly one tile
    return window_1d(tile, settings.window, settings.window_floor)


def seam_phase(plan: RenderPlan, settings: RenderSettings) -> tuple[int, int]:
    """(period, offset) of tile borders in image columns/rows at the working scale."""
    margin = axis_grid(plan.work_width, plan.tile, plan.stride).margin
    return plan.stride, (-margin) % plan.stride


def build_anchor(work: np.ndarray, model: RenderModel, settings: RenderSettings, plan: RenderPlan,
                 progress: Progress | None = None) -> AnchorMap | None:
    """The low-resolution chroma map of the whole painting (see ``rendering.consistency``), or None."""
    if plan.anchor_size is None:
        return None
    small = downscale(work, *plan.anchor_size)
    strips = sliding_window(small, model.predict, tile=plan.tile, stride=_anchor_stride(plan.tile),
                            window=window_1d(plan.tile, settings.window, settings.window_floor), channels=2,
                            batch_size=settings.batch_size, progress=progress)
    return AnchorMap(collect(strips, 2, *small.shape), *work.shape)


def render_blocks(gray: np.ndarray, model: RenderModel, settings: RenderSettings, *,
                  progress: Progress | None = None, report: RenderReport | None = None
                  ) -> Iterator[tuple[int, np.ndarray]]:
    """Colorize uint8 gray ``(H, W)``: yields ``(first row, uint8 RGB rows)`` top to bottom."""
    if gray.ndim != 2 or gray.dtype != np.uint8:
        raise ValueError(f"expects a uint8 (H, W) gray image, got {gray.dtype} {gray.shape}")
    height, width = gray.shape
    plan = plan_render(height, width, model, settings)
    work = gray if settings.scale == 1.0 else downscale(gray, plan.work_height, plan.work_width)
    anchor = build_anchor(work, model, settings, plan, progress)
    spread = OverlapSpread(axis_grid(plan.work_height, plan.tile, plan.stride),
                           axis_grid(plan.work_width, plan.tile, plan.stride))
    channels = 2 if settings.keep_luminance else 3
    strips = sliding_window(work, model.predict, tile=plan.tile, stride=plan.stride,
                            window=_window(settings, plan.tile), channels=channels,
                            batch_size=settings.batch_size,
                            hooks=(anchor, spread) if anchor is not None else (spread,), progress=progress)
    if settings.scale == 1.0:
        for strip in strips:
            spread.add_output(strip.values)
            rows = slice(strip.y0, strip.y0 + strip.values.shape[1])
            yield strip.y0, compose_rgb(gray[rows], strip.values, keep_luminance=settings.keep_luminance)
    else:
        small = collect(strips, channels, plan.work_height, plan.work_width)
        spread.add_output(small)
        for y0 in range(0, height, _UPSAMPLE_ROWS):
            y1 = min(height, y0 + _UPSAMPLE_ROWS)
            chroma = upsample_rows(small, height, width, y0, y1)
            yield y0, compose_rgb(gray[y0:y1], chroma, keep_luminance=settings.keep_luminance)
    if report is not None:
        report.plan = plan
        report.consistency = spread.summary()


def colorize_gray(gray: np.ndarray, model: RenderModel, settings: RenderSettings | None = None,
                  report: RenderReport | None = None) -> np.ndarray:
    """The whole uint8 RGB ``(H, W, 3)`` colorization of a uint8 gray image (held in memory: small images)."""
    settings = settings or RenderSettings()
    out = np.empty(gray.shape + (3,), dtype=np.uint8)
    for y0, rows in render_blocks(gray, model, settings, report=report):
        out[y0:y0 + rows.shape[0]] = rows
    return out


# ---- files -----------------------------------------------------------------------------------------------
_GRAY_BLOCK_ROWS = 512


def read_gray(path: str | os.PathLike, max_pixels: int) -> np.ndarray:
    """BT.601 gray of a painting file, decoded robustly; RenderInputError names the file and the reason."""
    return read_painting(path, max_pixels)[0]


def read_painting(path: str | os.PathLike, max_pixels: int, *, keep_seals: bool = False
                  ) -> tuple[np.ndarray, KeptPixels | None]:
    """``(BT.601 gray, the seal pixels to keep or None)`` of a painting file (rendering/seals.py), decoded
    robustly; RenderInputError names the file and the reason."""
    path = Path(path)
    try:
        rgb = decode_image(path, max_pixels=max_pixels)
    except ImageDecodeError as exc:
        hint = ""
        if exc.reason == "decompression_bomb":
            hint = (f"; the limit is the setting max_pixels ({max_pixels:,}): for trusted input raise it with "
                    "--max-pixels N (RenderSettings.max_pixels)")
        raise RenderInputError(f"cannot colorize {path}: {exc.reason} ({exc.detail}){hint}") from exc
    gray = np.empty(rgb.shape[:2], dtype=np.uint8)
    for start in range(0, gray.shape[0], _GRAY_BLOCK_ROWS):  # luma's integer maths is 12 bytes a pixel
        gray[start:start + _GRAY_BLOCK_ROWS] = luma_bt601(rgb[start:start + _GRAY_BLOCK_ROWS])
    return gray, KeptPixels.find(rgb) if keep_seals else None


def output_text(model: RenderModel, settings: RenderSettings, plan: RenderPlan, source: str) -> dict[str, str]:
    """PNG text chunks of a colorized painting: what it is, from which file, by which model and settings."""
    described = {**settings.describe(), "tile": plan.tile, "stride": plan.stride}
    return {
        "Title": f"{MACHINE_COLORIZED}: {source}",
        "Description": (f"Machine-colorized by {TOOL} ({model.variant}, checkpoint {Path(model.checkpoint).name}"
                        f"{f', epoch {model.epoch}' if model.epoch is not None else ''}). "
                        "Not the original painting: the colours are a model's guess."),
        "Software": TOOL,
        "lpd:machine-colorized": "true",
        "lpd:tool-version": __version__,
        "lpd:source": source,
        "lpd:checkpoint": model.checkpoint,
        "lpd:variant": model.variant,
        "lpd:epoch": "" if model.epoch is None else str(model.epoch),
        "lpd:model-origin": model.origin,
        "lpd:settings": json.dumps(described, sort_keys=True),
    }


class _Thumbnail:
    """A box-filtered reduction of the output, built from row blocks as they pass (long side <= ``limit``)."""

    def __init__(self, height: int, width: int, limit: int) -> None:
        self.factor = max(1, -(-max(height, width) // limit))
        self.width = max(1, width // self.factor)
        self.carry: np.ndarray | None = None
        self.rows: list[np.ndarray] = []

    def add(self, rgb: np.ndarray) -> None:
        block = rgb if self.carry is None else np.concatenate([self.carry, rgb])
        usable = block.shape[0] // self.factor * self.factor
        if usable:
            f, w = self.factor, self.width
            cut = block[:usable, :w * f].reshape(usable // f, f, w, f, 3).mean(axis=(1, 3), dtype=np.float32)
            self.rows.append(np.rint(cut).astype(np.uint8))
        self.carry = block[usable:].copy() if usable < block.shape[0] else None

    def image(self) -> np.ndarray:
        if self.carry is not None:  # the last rows, fewer than the factor
            self.rows.append(np.rint(self.carry[:, :self.width * self.factor].reshape(
                self.carry.shape[0], self.width, self.factor, 3).mean(axis=(0, 2))[None]).astype(np.uint8))
            self.carry = None
        return np.concatenate(self.rows)


def render_file(input_path: str | os.PathLike, output_path: str | os.PathLike, model: RenderModel,
                settings: RenderSettings | None = None, *, preview_path: str | os.PathLike | None = None,
                progress: Progress | None = None, on_plan: Callable[[RenderPlan], None] | None = None
                ) -> RenderReport:
    """Colorize one painting file into a PNG (+ optional JPEG preview). An existing output is replaced only
    by a complete file."""
    settings = settings or RenderSettings()
    input_path, output_path = Path(input_path), Path(output_path)
    if output_path.suffix.lower() != ".png":
        raise ValueError(f"output {output_path} must be a .png file")
    if output_path.exists() and output_path.resolve() == input_path.resolve():
        raise ValueError(f"output {output_path} is the input painting: refusing to overwrite the original")
    started = time.perf_counter()
    gray, seals = read_painting(input_path, settings.max_pixels, keep_seals=settings.keep_seals)
    height, width = gray.shape
    plan = plan_render(height, width, model, settings)
    if on_plan is not None:
        on_plan(plan)
    report = RenderReport(plan)
    thumbnail = _Thumbnail(height, width, PREVIEW_LONG_SIDE) if preview_path is not None else None
    with PngStreamWriter(output_path, width, height, output_text(model, settings, plan, input_path.name)) as png:
        for y0, rows in render_blocks(gray, model, settings, progress=progress, report=report):
            if seals is not None:
                rows = seals.apply(y0, rows)
            png.write_rows(rows)
            if thumbnail is not None:
                thumbnail.add(rows)
    report.output_path = output_path
    if thumbnail is not None:
        report.preview_path = save_image(Path(preview_path), thumbnail.image(), quality=90)
    report.seconds = time.perf_counter() - started
    return report
