"""From raw painting files to the curated LPD-style dataset: pure functions over tables and files.

Stages (each is one Dagster asset in :mod:`lpd_pipeline.defs.assets`):

1. :func:`ingest_paintings`  decode every file, give it a stable id (content hash), decide its kind.
2. :func:`dedup_paintings`   collapse near-duplicate paintings to one representative.
3. :func:`cut_tiles`         cut tiles, score every filter, write colour/grayscale PNG pairs of kept tiles.
4. :func:`assemble_dataset`  drop tile near-duplicates across paintings, split by work, final tables
   (:func:`write_dataset_tables`, then :func:`remove_superseded_files`).
5. :func:`export_pix2pix_aligned`  A|B side-by-side images in pix2pix's train/test layout.

Every stage returns its rejections (item, stage, reason, detail) instead of raising, so one bad file never
stops a run. Stages 1-3 only add or rewrite files; what the previous dataset used and the new one does not is
deleted after the new tables are written, so a run killed at any moment leaves ``tiles.parquet`` listing only
files that exist. Work is cached on disk (paintings by file identity, tiles and their scores by painting content)
so re-running after adding paintings only does the new work.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pandas as pd

from pydantic import Field, field_validator

from lpd_pipeline import imaging
from lpd_pipeline.config import Settings
from lpd_pipeline.files import (
    read_json_object,
    remove_stale_temp_files,
    sha256_file,
    write_bytes_atomic,
    write_parquet_atomic,
    write_text_atomic,
)
from lpd_pipeline.curation import dedup, filters, kind
from lpd_pipeline.curation import tile_model as learned
from lpd_pipeline.curation.tile_features import tile_features
from lpd_pipeline.curation.tiling import tile_origins
from lpd_pipeline.curation.workers import parallel_map
from lpd_pipeline.settings import StorageLayout
from lpd_pipeline.sources.records import RawPainting, SourceFailure

SPLIT_TRAIN = "train"
SPLIT_TEST_COLOR = "test_color"
SPLIT_TEST_INK = "test_ink"
SPLITS = (SPLIT_TRAIN, SPLIT_TEST_COLOR, SPLIT_TEST_INK)

REJECTION_COLUMNS = ["item", "stage", "reason", "detail"]
SCORE_COLUMNS = [f"score_{name}" for name in filters.FILTER_NAMES]
# P(class) of the learned filter (tile_model) for the classes it decides; NaN where the rules decide.
PROBABILITY_COLUMNS = [f"p_{name}" for name in filters.FILTER_NAMES]
TILE_COLUMNS = [
    "tile_id", "painting_id", "split", "x", "y", "size", "upscale", "color_path", "gray_path", "phash",
    *SCORE_COLUMNS, *PROBABILITY_COLUMNS,
]
# What a worker returns for an item it could not process: (reason, detail). Failures travel as values, not
# exceptions: ImageDecodeError's fields would not survive pickling, and one bad file must not stop the map.
JobFailure = tuple[str, str]
# Bump when decoding or tile scoring changes so cached scores are recomputed and tile files rewritten.
# 2: TIFF orientation applied once (oriented TIFFs decode differently), pair manifests.
# 3: the odd_colour filter and the learned filter's probabilities.
TILE_CACHE_VERSION = 3
# Integrity records, so a re-run redoes exactly what is missing, damaged or stale:
# per painting tile folder, {"version": TILE_CACHE_VERSION, "sha256": {file name: sha256}} of the pair files;
# per export folder, {tile id: "<gray sha256>:<colour sha256>"} of the tile files each export was made from.
PAIR_MANIFEST = "pairs.json"
EXPORT_MANIFEST = "exports.json"
# Temp files older than this in tile and export folders belong to a killed run (a write takes milliseconds).
STALE_TEMP_AGE_S = 60.0


class CurationConfig(Settings):
    """Every knob of dataset curation. Defaults follow the method (256×256 tiles, non-overlapping).

    Thresholds stay per filter (one field per filter in :class:`filters.FilterThresholds`)."""

    tile_size: int = Field(256, description="tile side in pixels")
    stride: int = Field(256, description="step between tiles (the tile size: no overlap)")
    painting_max_distance: int = Field(
        dedup.PAINTING_MAX_DISTANCE, ge=0, description="pHash bits within which two paintings are near-duplicates")
    tile_max_distance: int = Field(
        dedup.TILE_MAX_DISTANCE, ge=0, description="pHash bits within which two tiles are near-duplicates")
    # Dataclass fields also take a mapping of their fields (JSON, Dagster config), see Settings.
    thresholds: filters.FilterThresholds = Field(
        default_factory=filters.FilterThresholds,
        description="per filter: reject a tile whose score is above this threshold")
    kind_rule: kind.KindRule = Field(
        default_factory=kind.KindRule, description="the coloured-vs-ink image rule")
    test_color_fraction: float = Field(0.1, description="share of coloured works held out as test_color")
    seed: int = Field(0, description="seed of the split")
    max_pixels: int = Field(imaging.DEFAULT_MAX_PIXELS, ge=1, description="larger images are refused (decompression bombs)")
    # Processes for decoding and tile scoring (0: one per CPU core). Small batches stay in-process.
    workers: int = Field(0, description="processes for decoding and tile scoring (0: one per CPU core)")
    # file name, relative source path or painting id -> "colored" | "ink"
    kind_overrides: dict[str, str] = Field(
        default_factory=dict, description="painting id, source reference or file name -> 'colored' or 'ink'")
    max_upscale: float = Field(
        1.0, ge=1.0, le=2.0, description="a painting whose shorter side is below tile_size but at least "
        "tile_size / max_upscale is upscaled (Lanczos) to tile_size on that side and tiled, its tiles marked "
        "in tiles.parquet's `upscale` column; 1.0 (the default): no upscaling, such paintings are rejected as "
        "too_small")
    tile_model: str = Field(
        "bundled", description="learned tile filter: 'bundled' (lpd_pipeline/curation/tile_model.json, "
        "watermark_net.pt and text_net.pt, used for the tile size they were trained on), 'none' (the rule "
        "filters alone, with `thresholds`), or the path of a model JSON (the networks' weights beside it)")

    @field_validator("tile_size")
    @classmethod
    def _tile_fits_the_filters(cls, value: int) -> int:
        if value < filters.MIN_TILE_SIDE:
            raise ValueError(f"tile_size must be >= {filters.MIN_TILE_SIDE} (the filters' minimum), got {value}")
        return value

    @field_validator("stride")
    @classmethod
    def _positive_stride(cls, value: int) -> int:
        if value < 1:
            raise ValueError(f"stride must be >= 1, got {value}")
        return value

    @field_validator("test_color_fraction")
    @classmethod
    def _fraction(cls, value: float) -> float:
        if not 0.0 <= value < 1.0:
            raise ValueError(f"test_color_fraction must be in [0, 1), got {value}")
        return value

    @field_validator("kind_overrides")
    @classmethod
    def _known_kinds(cls, value: dict[str, str]) -> dict[str, str]:
        for key, kind_name in value.items():
            if kind_name not in (kind.KIND_COLORED, kind.KIND_INK):
                raise ValueError(f"kind override for {key!r} must be 'colored' or 'ink', got {kind_name!r}")
        return value

    @field_validator("tile_model")
    @classmethod
    def _tile_model(cls, value: str) -> str:
        if value not in ("bundled", "none") and not Path(value).is_file():
            raise ValueError(f"tile_model must be 'bundled', 'none' or an existing model file, got {value!r}")
        return value

    def learned_filter(self) -> learned.TileModel | None:
        """The learned tile filter this config uses, or None (the rules decide every class)."""
        return learned.resolve_model(self.tile_model, self.tile_size)

    @field_validator("workers")
    @classmethod
    def _workers(cls, value: int) -> int:
        if value < 0:
            raise ValueError(f"workers must be >= 0 (0: one per CPU core), got {value}")
        return value

    def worker_count(self) -> int:
        """Processes to use: ``workers``, or one per CPU core this process may run on."""
        if self.workers:
            return self.workers
        available = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else range(os.cpu_count() or 1)
        return max(1, len(available))


def rejections_frame(rows: Iterable[Mapping[str, str]] = ()) -> pd.DataFrame:
    return pd.DataFrame(list(rows), columns=REJECTION_COLUMNS).astype(str)


def failures_to_rejections(failures: Iterable[SourceFailure]) -> pd.DataFrame:
    return rejections_frame(
        {"item": f.item, "stage": f.stage, "reason": f.reason, "detail": f.detail} for f in failures
    )


# --------------------------------------------------------------------------------------------- 1. ingest

PAINTING_COLUMNS = [
    "painting_id", "source", "source_ref", "path", "width", "height", "pixels", "title", "artist", "date",
    "medium", "license", "kind", "kind_source", "colorfulness", "phash", "phash_windows", "file_size",
    "file_mtime_ns", "file_ctime_ns", "describe_key", "source_url", "source_page", "provenance",
]
# Columns taken from the source's record on every run (never from the decode cache).
SOURCE_COLUMNS = ["source", "source_ref", "title", "artist", "date", "medium", "license", "source_url",
                  "source_page", "provenance"]
# Bump when describing a painting (decode, kind score, hashes) changes so cached rows are recomputed.
INGEST_CACHE_VERSION = 2


def ingest_paintings(
    items: list[RawPainting],
    config: CurationConfig,
    *,
    cache: pd.DataFrame | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Decode and describe each raw painting. Returns (paintings, rejections).

    ``cache`` is a previous result: rows whose file (path, size, mtime, ctime) and description settings
    (cache version, kind-rule chroma threshold, max_pixels) are unchanged are reused without decoding, which is
    what makes re-runs after adding paintings cheap.
    """
    cached = _index_cache(cache)
    rows: list[dict] = []
    rejections: list[dict] = []
    seen_ids: dict[str, str] = {}
    described: dict[int, dict | JobFailure] = {}
    to_describe: list[int] = []
    jobs = []
    for index, item in enumerate(items):
        path = Path(item.path)
        try:
            stat = path.stat()
        except OSError as error:
            described[index] = ("unreadable", str(error))
            continue
        row = cached.get(_cache_key(path, stat, config))
        if row is None:
            to_describe.append(index)
            jobs.append((item, stat, config))
        else:
            described[index] = row
    results = parallel_map(_describe_painting_job, jobs, config.worker_count())
    for number, (index, result) in enumerate(zip(to_describe, results), start=1):
        if progress:
            progress(number, len(to_describe))
        described[index] = result
    for index, item in enumerate(items):
        path = Path(item.path)
        row = described[index]
        if isinstance(row, tuple):
            rejections.append(_rejection(path, "decode", *row))
            continue
        row = {**row, **_metadata(item)}
        row["kind"], row["kind_source"] = _decide_kind(item, row, config)
        duplicate_of = seen_ids.get(row["painting_id"])
        if duplicate_of is not None:
            rejections.append(_rejection(path, "dedup", "exact_duplicate", f"same bytes as {duplicate_of}"))
            continue
        seen_ids[row["painting_id"]] = str(path)
        rows.append(row)
    paintings = pd.DataFrame(rows, columns=PAINTING_COLUMNS)
    return paintings.astype({"width": "int64", "height": "int64", "pixels": "int64", "phash": "int64"}), \
        rejections_frame(rejections)


def _describe_key(config: CurationConfig) -> str:
    """What a cached description depends on besides the file: code version, kind-score and size settings."""
    return f"v{INGEST_CACHE_VERSION}:chroma{config.kind_rule.chroma_threshold}:max{config.max_pixels}"


def _cache_key(path: Path, stat: os.stat_result, config: CurationConfig) -> tuple:
    # The ctime catches a file rewritten with its old size and mtime restored (cp -p, rsync -t), which
    # size + mtime alone would miss; it cannot be set back by the user.
    return (str(path), stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, _describe_key(config))


def _index_cache(cache: pd.DataFrame | None) -> dict[tuple, dict]:
    # A table from an older version lacks the key columns: describe everything again. Source columns come
    # from the sources on every run, so a table written before one was added still serves as a cache.
    described = [column for column in PAINTING_COLUMNS if column not in SOURCE_COLUMNS]
    if cache is None or cache.empty or not set(described) <= set(cache.columns):
        return {}
    return {
        (row["path"], int(row["file_size"]), int(row["file_mtime_ns"]), int(row["file_ctime_ns"]),
         row["describe_key"]): row
        for row in cache[described].to_dict("records")
    }


def _describe_painting_job(job: tuple[RawPainting, os.stat_result, CurationConfig]) -> dict | JobFailure:
    try:
        return _describe_painting(*job)
    except imaging.ImageDecodeError as error:
        return (error.reason, error.detail)


def _describe_painting(item: RawPainting, stat: os.stat_result, config: CurationConfig) -> dict | JobFailure:
    rgb = imaging.decode_image(item.path, max_pixels=config.max_pixels)
    height, width = rgb.shape[:2]
    if min(height, width) < dedup.MIN_IMAGE_SIDE:
        return ("too_small", f"{width}x{height} px is below the {dedup.MIN_IMAGE_SIDE} px a perceptual hash needs")
    _, colorfulness = kind.classify_kind(rgb, config.kind_rule)
    windows = dedup.crop_variant_hashes(rgb)
    return {
        "painting_id": imaging.content_hash(item.path),
        "source": item.source,
        "source_ref": item.source_ref,
        "path": str(item.path),
        "width": width,
        "height": height,
        "pixels": width * height,
        "colorfulness": float(colorfulness),
        "phash": _as_int64(int(windows[0])),
        # Window 0 is the full-image hash; the others are crop windows, so cropped copies still match.
        "phash_windows": windows.view(np.int64).tolist(),
        "file_size": stat.st_size,
        "file_mtime_ns": stat.st_mtime_ns,
        "file_ctime_ns": stat.st_ctime_ns,
        "describe_key": _describe_key(config),
    }


def _metadata(item: RawPainting) -> dict:
    return {
        "source": item.source, "source_ref": item.source_ref, "title": item.title, "artist": item.artist,
        "date": item.date, "medium": item.medium, "license": item.license, **item.provenance_columns(),
    }


def _decide_kind(item: RawPainting, row: Mapping, config: CurationConfig) -> tuple[str, str]:
    """Override beats metadata beats the image rule (off-axis chroma, never mean saturation)."""
    for key in (row["painting_id"], item.source_ref, Path(item.path).name):
        if key in config.kind_overrides:
            return config.kind_overrides[key], "override"
    if item.kind in (kind.KIND_COLORED, kind.KIND_INK):
        return item.kind, "metadata"
    return kind.kind_of_score(row["colorfulness"], config.kind_rule), "image_rule"


def _as_int64(value: int) -> int:
    """Parquet has no uint64-friendly path through pandas everywhere; store the same 64 bits as int64."""
    return int(np.array(value, dtype=np.uint64).view(np.int64))


def _rejection(item: Path | str, stage: str, reason: str, detail: str = "") -> dict:
    return {"item": str(item), "stage": stage, "reason": reason, "detail": detail}


# ---------------------------------------------------------------------------------------------- 2. dedup


def dedup_paintings(paintings: pd.DataFrame, config: CurationConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Mark near-duplicate clusters; keep one representative each. Returns (paintings, rejections).

    A coloured member beats an ink one (a grayscale copy must not replace the coloured original, which has
    ground truth), then the highest resolution wins.
    """
    if paintings.empty:
        marked = paintings.assign(dup_cluster=pd.Series(dtype="int64"), is_representative=pd.Series(dtype=bool))
        return marked, rejections_frame()
    ranked = paintings.assign(is_colored=(paintings["kind"] == kind.KIND_COLORED).astype(int))
    marked = dedup.choose_representatives(
        ranked, hash_col="phash", max_distance=config.painting_max_distance,
        priority_cols=("is_colored", "pixels"), id_col="painting_id", variant_hash_col="phash_windows",
    ).drop(columns=["is_colored"])
    representatives = marked[marked["is_representative"]].set_index("dup_cluster")
    rejections = [
        _rejection(row.path, "dedup", "near_duplicate",
                   f"kept {representatives.at[row.dup_cluster, 'path']} "
                   f"(painting {representatives.at[row.dup_cluster, 'painting_id']})")
        for row in marked[~marked["is_representative"]].itertuples()
    ]
    return marked.reset_index(drop=True), rejections_frame(rejections)


# ---------------------------------------------------------------------------------------------- 3. tiles


def tile_id(painting_id: str, x: int, y: int, size: int) -> str:
    return f"{painting_id}_{x}_{y}_{size}"


def cut_tiles(
    paintings: pd.DataFrame,
    layout: StorageLayout,
    config: CurationConfig,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Cut every representative painting into tiles, score the filters, write pairs for kept tiles.

    Returns (all tiles with scores and a ``rejected_by`` column, rejections of the filtered tiles). Kept
    tiles have ``color_path``/``gray_path`` (relative to the storage root) pointing at lossless PNGs.
    """
    kept_paintings = paintings[paintings["is_representative"]] if "is_representative" in paintings else paintings
    frames = []
    rejections = []
    records = [SimpleNamespace(**row) for row in kept_paintings.to_dict("records")]
    jobs = [(painting, layout, config) for painting in records]
    results = parallel_map(_tiles_of_painting_job, jobs, config.worker_count())
    for number, (painting, frame) in enumerate(zip(records, results), start=1):
        if progress:
            progress(number, len(records))
        if isinstance(frame, tuple):
            # The file changed or vanished since ingest: report it and go on with the others.
            rejections.append(_rejection(painting.path, "tiles", *frame))
            continue
        if frame.empty:
            hint = "" if config.max_upscale > 1.0 else " (max_upscale above 1 tiles small paintings, upscaled)"
            rejections.append(_rejection(
                painting.path, "tiles", "too_small",
                f"{painting.width}x{painting.height} is smaller than one {config.tile_size}px tile, even "
                f"upscaled by up to {config.max_upscale:g}x{hint}"))
            continue
        frames.append(frame)
    tiles = pd.concat(frames, ignore_index=True) if frames else _empty_tiles()
    for row in tiles[tiles["rejected_by"] != ""].itertuples():
        scores = ", ".join(_why(row, name) for name in row.rejected_by.split(","))
        rejections.append(_rejection(row.tile_id, "filter", row.rejected_by.split(",")[0], scores))
    return tiles, rejections_frame(rejections)


def _why(row, name: str) -> str:
    """``seal=0.0123`` (rule score) or ``seal p=0.91`` (the learned filter's probability, where it decided)."""
    probability = getattr(row, f"p_{name}")
    return f"{name} p={probability:.2f}" if probability == probability else f"{name}={getattr(row, 'score_' + name):.3g}"


def _empty_tiles() -> pd.DataFrame:
    columns = ["tile_id", "painting_id", "x", "y", "size", "upscale", "color_path", "gray_path", "phash",
               *SCORE_COLUMNS, *PROBABILITY_COLUMNS, "rejected_by"]
    return pd.DataFrame(columns=columns)


def _tiles_of_painting_job(job) -> pd.DataFrame | JobFailure:
    painting, layout, config = job
    try:
        return _tiles_of_painting(painting, layout, config)
    except imaging.ImageDecodeError as error:
        return (error.reason, error.detail)


def _tiles_of_painting(painting, layout: StorageLayout, config: CurationConfig) -> pd.DataFrame:
    tile_dir = layout.tiles_dir / painting.painting_id
    scores, rgb = _load_or_score_tiles(painting, tile_dir, config)
    if scores.empty:
        return scores.assign(rejected_by=pd.Series(dtype=str), color_path="", gray_path="")
    model = config.learned_filter()
    reasons = [",".join(_reasons(row, config, model)) for row in scores[SCORE_COLUMNS + PROBABILITY_COLUMNS]
               .to_dict("records")]
    scores = scores.assign(rejected_by=reasons)
    kept = scores["rejected_by"] == ""
    relative_dir = tile_dir.relative_to(layout.root).as_posix()
    stems = [f"{relative_dir}/{int(x)}_{int(y)}_{config.tile_size}" for x, y in zip(scores["x"], scores["y"])]
    scores["color_path"] = np.where(kept, [f"{stem}_color.png" for stem in stems], "")
    scores["gray_path"] = np.where(kept, [f"{stem}_gray.png" for stem in stems], "")
    _write_missing_pairs(painting, scores[kept], layout, config, rgb)
    return scores


def _scores_of(score_row: Mapping[str, float]) -> dict[str, float]:
    return {name: float(score_row[f"score_{name}"]) for name in filters.FILTER_NAMES}


def _reasons(row: Mapping[str, float], config: CurationConfig, model: learned.TileModel | None) -> list[str]:
    """The filters rejecting a tile: the learned model's classes where it decides, the rules elsewhere."""
    if model is None:
        return filters.rejection_reasons(_scores_of(row), config.thresholds)
    probabilities = {name: float(row[f"p_{name}"]) for name in filters.FILTER_NAMES if model.decides(name)}
    return model.reasons(_scores_of(row), probabilities, config.thresholds)


_SCORE_CACHE_COLUMNS = ["tile_id", "painting_id", "x", "y", "size", "upscale", "phash", *SCORE_COLUMNS,
                        *PROBABILITY_COLUMNS]


def _score_cache_name(config: CurationConfig) -> str:
    model = config.learned_filter()
    decider = "rules" if model is None else f"m{model.fingerprint()}"
    upscale = "" if config.max_upscale == 1.0 else f"_up{config.max_upscale:g}"
    return f"scores_s{config.tile_size}_st{config.stride}{upscale}_v{TILE_CACHE_VERSION}_{decider}.json"


def painting_pixels(path: str | Path, config: CurationConfig) -> tuple[np.ndarray, float]:
    """The pixels tiles are cut from, and the factor they were upscaled by (1.0: as decoded).

    A painting whose shorter side is below the tile size but reaches it within ``max_upscale`` is resized
    (Lanczos) so that side equals the tile size; any other painting is used as decoded."""
    rgb = imaging.decode_image(path, max_pixels=config.max_pixels)
    short = min(rgb.shape[:2])
    if short >= config.tile_size or short * config.max_upscale < config.tile_size:
        return rgb, 1.0
    factor = config.tile_size / short
    size = (max(config.tile_size, round(rgb.shape[1] * factor)), max(config.tile_size, round(rgb.shape[0] * factor)))
    return np.ascontiguousarray(cv2.resize(rgb, size, interpolation=cv2.INTER_LANCZOS4)), factor


def score_cache_path(layout: StorageLayout, painting_id: str, config: CurationConfig) -> Path:
    """Where the filter scores of a painting's tiles on ``config``'s grid are cached (there: not scored again)."""
    return layout.tiles_dir / painting_id / _score_cache_name(config)


def _load_or_score_tiles(painting, tile_dir: Path, config: CurationConfig) -> tuple[pd.DataFrame, np.ndarray | None]:
    """Filter scores depend only on the pixels and the grid, so they are cached per painting and grid.

    Returns the scores and, when it had to decode them, the painting's pixels (so they are decoded once).
    """
    cache_path = tile_dir / _score_cache_name(config)
    if cache_path.exists():
        cached = read_json_object(cache_path)  # {} when damaged on disk: score again
        if cached.get("columns") == _SCORE_CACHE_COLUMNS and isinstance(cached.get("rows"), list):
            return pd.DataFrame(cached["rows"], columns=_SCORE_CACHE_COLUMNS), None
    rgb, factor = painting_pixels(painting.path, config)
    model = config.learned_filter()
    rows, tiles, features = [], [], []
    for x, y in tile_origins(rgb.shape[0], rgb.shape[1], config.tile_size, config.stride):
        tile = np.ascontiguousarray(rgb[y:y + config.tile_size, x:x + config.tile_size])
        images = filters._Tile(tile)  # the intermediates, shared by the rules and the learned filter's features
        scores = filters.scores_of(images, model.rules_to_skip() if model is not None else ())
        if model is not None:
            features.append(tile_features(tile, scores, images))
        row = {
            "tile_id": tile_id(painting.painting_id, x, y, config.tile_size),
            "painting_id": painting.painting_id, "x": x, "y": y, "size": config.tile_size, "upscale": factor,
            "phash": _as_int64(dedup.perceptual_hash(tile)),
        }
        row.update({f"score_{name}": float(value) for name, value in scores.items()})
        row.update({column: float("nan") for column in PROBABILITY_COLUMNS})
        rows.append(row)
        tiles.append(tile)
    if model is not None and rows:
        for row, probabilities in zip(rows, model.tile_probabilities(np.stack(features), tiles)):
            row.update({f"p_{name}": value for name, value in probabilities.items()})
    # JSON, not Parquet: a painting's few rows take ~0.1 ms to write where pandas' Parquet writer takes ~10 ms,
    # and Python's JSON round-trips every float exactly (NaN included). Read back as the same frame.
    table = [[row[column] for column in _SCORE_CACHE_COLUMNS] for row in rows]
    write_text_atomic(cache_path, json.dumps({"columns": _SCORE_CACHE_COLUMNS, "rows": table}))
    return pd.DataFrame(table, columns=_SCORE_CACHE_COLUMNS), rgb


def _write_missing_pairs(
    painting, kept: pd.DataFrame, layout: StorageLayout, config: CurationConfig, rgb: np.ndarray | None
) -> None:
    """Write the kept pairs that are missing, or whose files no longer match what was written (damaged,
    truncated or replaced on disk: the manifest holds each file's sha256).

    Nothing is deleted here: pair files of tiles no longer kept (thresholds or tile size changed) may still be
    listed by the current ``tiles.parquet`` until this run writes the new one; :func:`remove_superseded_files`
    deletes them after that."""
    manifest_path = layout.tiles_dir / painting.painting_id / PAIR_MANIFEST
    remove_stale_temp_files(manifest_path.parent, min_age_s=STALE_TEMP_AGE_S)
    hashes = _pair_hashes(manifest_path)

    def intact(relative: str) -> bool:
        path = layout.path(relative)
        return path.name in hashes and path.is_file() and sha256_file(path) == hashes[path.name]

    missing = [row for row in kept.itertuples() if not (intact(row.gray_path) and intact(row.color_path))]
    if not missing:
        return
    if rgb is None:
        rgb, _ = painting_pixels(painting.path, config)
    size = config.tile_size
    for row in missing:
        tile = np.ascontiguousarray(rgb[row.y:row.y + size, row.x:row.x + size])
        for relative, pixels in ((row.gray_path, imaging.luma_bt601(tile)), (row.color_path, tile)):
            data = imaging.encode_png(pixels)  # encoded here to hash the bytes written, not read them back
            path = write_bytes_atomic(layout.path(relative), data)
            hashes[path.name] = hashlib.sha256(data).hexdigest()
    _save_pair_hashes(manifest_path, hashes)


def _pair_hashes(manifest_path: Path) -> dict[str, str]:
    """{file name: sha256} of a pair manifest; empty when missing, damaged or of another tile cache version
    (files written by another decoder or scorer version are rewritten, whatever their hashes say)."""
    record = read_json_object(manifest_path)
    hashes = record.get("sha256") if record.get("version") == TILE_CACHE_VERSION else None
    return dict(hashes) if isinstance(hashes, dict) else {}


def _save_pair_hashes(manifest_path: Path, hashes: Mapping[str, str]) -> None:
    """Write the manifest, or remove it when it would list nothing (a clean run writes none then)."""
    if not hashes:
        manifest_path.unlink(missing_ok=True)
        return
    payload = {"version": TILE_CACHE_VERSION, "sha256": dict(hashes)}
    write_text_atomic(manifest_path, json.dumps(payload, sort_keys=True))


_PAINTING_FOLDER = re.compile(r"^[0-9a-f]{16}$")  # a painting id (imaging.content_hash)


def remove_superseded_files(
    layout: StorageLayout, paintings: pd.DataFrame, tiles: pd.DataFrame, config: CurationConfig
) -> list[str]:
    """Delete what a clean run with this config would not have written under ``dataset/tiles/``; call it only
    after the new ``tiles.parquet`` is in place (until then the previous one may list these files).

    Removed: the folder of every painting that is no longer a representative (gone from the sources, or now a
    near-duplicate); in the others, pair files of tiles no longer kept, filter-score caches of another grid or
    cache version, and pair manifests left listing nothing. ``paintings``: the deduplicated paintings;
    ``tiles``: every tile of this run (``rejected_by`` empty = kept). Returns the removed paths, relative to the
    storage root (files, and folders with a trailing ``/``).
    """
    tiles_dir = layout.tiles_dir
    if not tiles_dir.is_dir():
        return []
    if "is_representative" in paintings:
        paintings = paintings[paintings["is_representative"]]
    kept_ids = set(paintings["painting_id"])
    kept_tiles = tiles[tiles["rejected_by"] == ""]
    wanted: dict[str, set[str]] = {}
    for pid, color, gray in zip(kept_tiles["painting_id"], kept_tiles["color_path"], kept_tiles["gray_path"]):
        wanted.setdefault(pid, set()).update((Path(color).name, Path(gray).name))
    current_scores = _score_cache_name(config)
    removed: list[str] = []

    def relative(path: Path) -> str:
        return path.relative_to(layout.root).as_posix()

    for folder in sorted(tiles_dir.iterdir()):
        if not folder.is_dir() or folder.is_symlink() or not _PAINTING_FOLDER.match(folder.name):
            continue  # not a painting folder this code wrote: left alone
        if folder.name not in kept_ids:
            shutil.rmtree(folder)
            removed.append(relative(folder) + "/")
            continue
        names = wanted.get(folder.name, set())
        stale = [path for path in folder.glob("*_*.png")
                 if path.name not in names and not path.name.startswith(".")]  # hidden: temp files
        stale += [path for path in folder.glob("scores_*") if path.name != current_scores]  # .parquet: older caches
        for path in sorted(stale):
            path.unlink(missing_ok=True)
            removed.append(relative(path))
        manifest_path = folder / PAIR_MANIFEST
        if manifest_path.exists():
            hashes = _pair_hashes(manifest_path)
            listed = {name: digest for name, digest in hashes.items() if name in names}
            if listed != hashes or not listed:
                _save_pair_hashes(manifest_path, listed)
                if not listed:
                    removed.append(relative(manifest_path))
    return removed


# ------------------------------------------------------------------------------------- 4. split & tables


def assemble_dataset(
    paintings: pd.DataFrame, tiles: pd.DataFrame, config: CurationConfig
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Tile dedup across paintings, grouping into works, split by work. Returns (paintings, tiles, rejections).

    Paintings that share a near-duplicate tile (overlapping crops of one scroll, say) are one *work* and land
    in one split, so nothing near-identical straddles train and test. An ink painting tied to a coloured work
    is left out (its tiles would be near-duplicates of that work's in another split). Within what is placed,
    repeated tiles are dropped (the first by tile id is kept).
    """
    kept_tiles = tiles[tiles["rejected_by"] == ""].sort_values("tile_id").reset_index(drop=True)
    # Tiles scored by the rules alone may come without the learned filter's columns.
    kept_tiles = kept_tiles.assign(**{c: np.nan for c in PROBABILITY_COLUMNS if c not in kept_tiles})
    if "upscale" not in kept_tiles:
        kept_tiles = kept_tiles.assign(upscale=1.0)
    representatives = paintings[paintings["is_representative"]].reset_index(drop=True)
    rejections: list[dict] = []

    hashes = kept_tiles["phash"].to_numpy(dtype=np.int64)  # dedup reads int64 as the same 64 bits
    pairs = dedup.near_duplicate_pairs(hashes, config.tile_max_distance)
    tile_cluster = dedup.cluster_labels(len(kept_tiles), pairs)
    kept_tiles = kept_tiles.assign(tile_cluster=tile_cluster)

    work_of = _work_groups(representatives["painting_id"].tolist(), kept_tiles, pairs)
    representatives = representatives.assign(work_id=representatives["painting_id"].map(work_of))
    # Only paintings with kept tiles take part in the split (and in keeping train and test non-empty).
    has_tiles = representatives["painting_id"].isin(set(kept_tiles["painting_id"]))
    all_filtered = ~has_tiles & representatives["painting_id"].isin(set(tiles["painting_id"]))
    for row in representatives[all_filtered].itertuples():  # (too small ones were reported by cut_tiles)
        rejections.append(_rejection(row.path, "split", "no_kept_tiles",
                                     f"painting {row.painting_id}: every tile was filtered out"))
    split_of_painting = _split_works(representatives[has_tiles], config)
    representatives["split"] = representatives["painting_id"].map(split_of_painting)

    # Leave out the ink paintings of coloured works first, so their tiles never win a tile-dedup cluster
    # over the coloured tiles they repeat.
    kept_tiles["split"] = kept_tiles["painting_id"].map(split_of_painting)
    excluded = kept_tiles["split"].isna()
    work_split = representatives.dropna(subset=["split"]).groupby("work_id")["split"].first()
    for row in kept_tiles[excluded].itertuples():
        work = work_of[row.painting_id]
        rejections.append(_rejection(row.tile_id, "split", "ink_painting_in_coloured_work",
                                     f"work {work} is in {work_split.get(work, '?')}; an ink copy of it would "
                                     "be a near-duplicate in another split"))
    placed = kept_tiles[~excluded]

    duplicate = placed.duplicated("tile_cluster", keep="first")
    first_of_cluster = placed.drop_duplicates("tile_cluster").set_index("tile_cluster")["tile_id"]
    for row in placed[duplicate].itertuples():
        rejections.append(_rejection(row.tile_id, "tile_dedup", "near_duplicate_tile",
                                     f"kept {first_of_cluster[row.tile_cluster]}"))
    final = placed[~duplicate]

    all_paintings = paintings.merge(
        representatives[["painting_id", "work_id", "split"]], on="painting_id", how="left"
    )
    all_paintings["split"] = all_paintings["split"].fillna("")
    all_paintings["work_id"] = all_paintings["work_id"].fillna("")
    final_tiles = final[TILE_COLUMNS].sort_values(["split", "tile_id"]).reset_index(drop=True)
    return all_paintings, final_tiles, rejections_frame(rejections)


def _work_groups(painting_ids: list[str], tiles: pd.DataFrame, pairs: np.ndarray) -> dict[str, str]:
    """Union paintings linked by near-duplicate tiles; a work is named by its smallest painting id."""
    index = {pid: i for i, pid in enumerate(painting_ids)}
    tile_painting = tiles["painting_id"].map(index).to_numpy()
    links = tile_painting[pairs] if len(pairs) else np.zeros((0, 2), dtype=np.int64)
    links = links[links[:, 0] != links[:, 1]] if len(links) else links
    labels = dedup.cluster_labels(len(painting_ids), links)
    names: dict[int, str] = {}
    for pid, label in zip(painting_ids, labels):
        names[label] = min(names.get(label, pid), pid)
    return {pid: names[label] for pid, label in zip(painting_ids, labels)}


def _split_works(paintings: pd.DataFrame, config: CurationConfig) -> dict[str, str | None]:
    """Deterministic split by work, as stable as a split without memory can be when paintings are added.

    A coloured work goes to test_color when the smallest seeded hash of its coloured paintings' ids falls
    under the test fraction. So adding an unrelated painting never moves a work; adding an ink painting never
    moves one; a coloured painting joining a work (or merging two) can only move it from train to test (with
    probability = the fraction), never a test painting into training. One exception keeps tiny sets usable:
    with two or more coloured works, neither train nor test_color is left empty (the lowest-hashed work goes
    to test, or the highest-hashed to train); such a work moves back once another work fills that split.

    Ink paintings are test_ink (they have no ground truth) unless their work also holds a coloured painting;
    then they are left out (None): their tiles would repeat that work's in another split.
    """
    colored = paintings[paintings["kind"] == kind.KIND_COLORED]
    work_hash: dict[str, float] = {}
    for work, pid in zip(colored["work_id"], colored["painting_id"]):
        work_hash[work] = min(work_hash.get(work, 1.0), _unit_hash(config.seed, pid))
    work_split = {work: SPLIT_TEST_COLOR if value < config.test_color_fraction else SPLIT_TRAIN
                  for work, value in work_hash.items()}
    if config.test_color_fraction > 0 and len(work_split) >= 2:
        by_hash = sorted(work_hash, key=lambda work: (work_hash[work], work))
        if SPLIT_TEST_COLOR not in work_split.values():
            work_split[by_hash[0]] = SPLIT_TEST_COLOR
        if SPLIT_TRAIN not in work_split.values():
            work_split[by_hash[-1]] = SPLIT_TRAIN
    split: dict[str, str | None] = {}
    for row in paintings.itertuples():
        if row.kind == kind.KIND_COLORED:
            split[row.painting_id] = work_split[row.work_id]
        else:
            split[row.painting_id] = None if row.work_id in work_split else SPLIT_TEST_INK
    return split


def _unit_hash(seed: int, key: str) -> float:
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def write_dataset_tables(
    layout: StorageLayout, paintings: pd.DataFrame, tiles: pd.DataFrame, rejections: pd.DataFrame
) -> dict[str, Path]:
    """Write paintings.parquet, tiles.parquet and rejections.parquet under ``<storage>/dataset/``."""
    paths = {"paintings": layout.paintings_table, "tiles": layout.tiles_table, "rejections": layout.rejections_table}
    write_parquet_atomic(paintings, paths["paintings"])
    write_parquet_atomic(tiles, paths["tiles"])
    write_parquet_atomic(rejections[REJECTION_COLUMNS], paths["rejections"])
    return paths


# ------------------------------------------------------------------------------------------- 5. export

PIX2PIX_FOLDER_OF_SPLIT = {SPLIT_TRAIN: "train", SPLIT_TEST_COLOR: "test", SPLIT_TEST_INK: "test_ink"}


def export_pix2pix_aligned(tiles: pd.DataFrame, layout: StorageLayout) -> tuple[dict[str, int], pd.DataFrame]:
    """Write ``A|B`` images (A = grayscale as RGB, B = colour) in pix2pix's aligned layout.

    ``<storage>/dataset/pix2pix_aligned/{train,test,test_ink}/<tile_id>.png``. An existing export is reused
    only when it is complete and was made from the tile files as they are now (``exports.json`` in each folder
    records the sha256 pair from the tiles' ``pairs.json``); files of tiles no longer in the dataset are
    removed. A tile whose files cannot be read is left out and reported. Returns (images per folder, rejections).
    """
    counts: dict[str, int] = {}
    rejections: list[dict] = []
    pair_manifests: dict[str, dict] = {}
    for split, folder in PIX2PIX_FOLDER_OF_SPLIT.items():
        out_dir = layout.pix2pix_dir / folder
        out_dir.mkdir(parents=True, exist_ok=True)
        # A killed run's hidden temp PNGs would be read as images by loaders that list every *.png.
        remove_stale_temp_files(out_dir, min_age_s=STALE_TEMP_AGE_S)
        rows = tiles[tiles["split"] == split]
        wanted = {f"{tid}.png" for tid in rows["tile_id"]}
        for stale in out_dir.glob("*.png"):
            # Hidden names are in-flight temp files (files.atomic_path) of a writer that may still rename them.
            if stale.name not in wanted and not stale.name.startswith("."):
                stale.unlink(missing_ok=True)
        made_from = read_json_object(out_dir / EXPORT_MANIFEST)
        current: dict[str, str] = {}
        exported = 0
        for row in rows.itertuples():
            target = out_dir / f"{row.tile_id}.png"
            source_key = _pair_key(layout, row, pair_manifests)
            if source_key is not None and made_from.get(row.tile_id) == source_key and imaging.png_complete(target):
                current[row.tile_id] = source_key
                exported += 1
                continue
            try:
                gray = imaging.decode_image(layout.path(row.gray_path))
                color = imaging.decode_image(layout.path(row.color_path))
            except imaging.ImageDecodeError as error:
                target.unlink(missing_ok=True)
                rejections.append(_rejection(row.tile_id, "export", error.reason, str(error)))
                continue
            imaging.save_image(target, np.concatenate([gray, color], axis=1))
            exported += 1
            if source_key is not None:
                current[row.tile_id] = source_key
        write_text_atomic(out_dir / EXPORT_MANIFEST, json.dumps(current, sort_keys=True))
        counts[folder] = exported
    return counts, rejections_frame(rejections)



def _pair_key(layout: StorageLayout, row, manifests: dict[str, dict]) -> str | None:
    """``"<gray sha256>:<colour sha256>"`` of a kept tile from its painting's pair manifest, or None."""
    if row.painting_id not in manifests:
        manifests[row.painting_id] = read_json_object(layout.tiles_dir / row.painting_id / PAIR_MANIFEST)
    hashes = manifests[row.painting_id].get("sha256")
    hashes = hashes if isinstance(hashes, dict) else {}
    gray, color = hashes.get(Path(row.gray_path).name), hashes.get(Path(row.color_path).name)
    return f"{gray}:{color}" if gray and color else None


def curation_config_fingerprint(config: CurationConfig) -> str:
    """A short hash of the config, recorded in asset metadata so runs with different knobs are told apart."""
    payload = config.to_dict()
    payload["kind_overrides"] = dict(sorted(config.kind_overrides.items()))
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:12]
