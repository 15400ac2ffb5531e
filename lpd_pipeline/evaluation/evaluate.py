"""Scoring checkpoints: each checkpoint once per test set, through the shared inference path and the metrics.

The rule, per row of a variant's checkpoint table:

1. the file is hashed (sha256; reused for an unchanged file); a cached row with the same checkpoint content,
   test-set fingerprint and settings key is returned as is: a new checkpoint evaluates only itself;
2. a checkpoint of another variant, another tile size, or whose training tiles overlap the current test split
   (see ``leakage``) is skipped with the reason, never scored;
3. otherwise the test_color gray tiles are coloured (``generation``) and scored against the real colour tiles:
   paired metrics (LPIPS, ΔE, PSNR, SSIM), FID/KID with bootstrap intervals against the real tiles' Inception
   features (computed once per test set and cached on disk), colourfulness; the test_ink tiles are coloured
   and scored by FID/KID against the same real test_color features and by colourfulness; a sample sheet is saved.

Times are split into generation, feature extraction (Inception on generated tiles) and metrics (LPIPS and the
rest of the arithmetic, bootstrap included).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lpd_pipeline import imaging
from lpd_pipeline.evaluation import leakage, store
from lpd_pipeline.evaluation.generation import generate, load_for_evaluation
from lpd_pipeline.evaluation.samples import sample_sheet
from lpd_pipeline.evaluation.settings import EvaluationSettings
from lpd_pipeline.evaluation.testsets import EvaluationTiles, load_test_set, sample_indices, tiles_table_path
from lpd_pipeline.models.inference import DEFAULT_INFERENCE_MODE
from lpd_pipeline.models.options import parse_variant
from lpd_pipeline.settings import StorageLayout
from lpd_pipeline.training.checkpoints import CheckpointError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RealStatistics:
    """Inception features and colourfulness of the real test_color tiles (per test set, cached on disk)."""

    features: np.ndarray
    colorfulness: float


@dataclass
class EvaluationRun:
    """What :func:`evaluate_checkpoints` did: the current rows and which were computed, reused or skipped."""

    rows: pd.DataFrame
    evaluated: list[int] = field(default_factory=list)
    reused: list[int] = field(default_factory=list)
    skipped: list[tuple[int, str]] = field(default_factory=list)


def _metrics():
    # Imported when scoring is needed: a run that reuses every row never loads the metric networks' code.
    from lpd_pipeline import metrics

    return metrics


def default_models(device: str):
    """The metric networks (weights provisioned offline by the metrics package on first use)."""
    return _metrics().MetricModels(device)


def real_statistics(layout: StorageLayout, tiles: EvaluationTiles, models) -> RealStatistics:
    """The real test_color tiles' Inception features (cached in ``evaluation/features/`` by the files' content,
    through the metrics package's feature cache) and colourfulness."""
    metrics = _metrics()
    real = np.array(tiles.color.color())  # in memory: torch wants writable arrays
    features = metrics.cached_features(tiles.color_files, store.features_dir(layout),
                                       lambda: models.inception_features(real))
    return RealStatistics(np.asarray(features, dtype=np.float64), float(metrics.colorfulness(real)))


def score_generated(real: np.ndarray, generated: np.ndarray, real_stats: RealStatistics, models,
                    settings: EvaluationSettings, *, ink_generated: np.ndarray | None = None) -> dict[str, Any]:
    """Every metric of one checkpoint's generated tiles, with ``features_s`` and ``metrics_s`` timings."""
    metrics = _metrics()
    started = time.perf_counter()
    fake_features = np.asarray(models.inception_features(generated), dtype=np.float64)
    ink_features = (np.asarray(models.inception_features(ink_generated), dtype=np.float64)
                    if ink_generated is not None else None)
    features_s = time.perf_counter() - started
    started = time.perf_counter()
    values: dict[str, Any] = dict(metrics.paired_metrics(real, generated, models))
    values.update(metrics.distribution_metrics(real_stats.features, fake_features, bootstrap=settings.bootstrap,
                                               seed=settings.seed))
    cf_fake = float(metrics.colorfulness(generated))
    values.update(colorfulness_real=real_stats.colorfulness, colorfulness_fake=cf_fake,
                  delta_cf=abs(cf_fake - real_stats.colorfulness))
    if ink_features is not None:
        if len(ink_features) >= 2:  # FID/KID need two images a side; one ink tile still gets colourfulness
            ink = metrics.distribution_metrics(real_stats.features, ink_features, bootstrap=settings.bootstrap,
                                               seed=settings.seed)
            values.update({f"ink_{k}": v for k, v in ink.items()})
        cf_ink = float(metrics.colorfulness(ink_generated))
        values.update(ink_colorfulness=cf_ink, ink_delta_cf=abs(cf_ink - real_stats.colorfulness))
    values.update(features_s=features_s, metrics_s=time.perf_counter() - started)
    return {k: store.as_plain(v) for k, v in values.items()}


def short_id(tile_id: str) -> str:
    """A tile id short enough for a caption: ``<painting[:8]> x,y`` for curated ids."""
    parts = tile_id.rsplit("_", 3)
    if len(parts) == 4 and all(p.isdigit() for p in parts[1:]):
        return f"{parts[0][:8]} {parts[1]},{parts[2]}"
    return tile_id[-14:]


def evaluate_checkpoints(
    layout: StorageLayout,
    variant: str,
    checkpoint_table: pd.DataFrame,
    settings: EvaluationSettings | None = None,
    *,
    models_factory: Callable[[str], Any] = default_models,
    log_fn: Callable[[str], None] = log.info,
) -> EvaluationRun:
    """Score every checkpoint in ``checkpoint_table`` (columns epoch, path) of ``variant``; write the tables.

    Metric networks, real features and the test tiles are loaded only when some checkpoint needs scoring.
    """
    settings = settings or EvaluationSettings()
    backbone, color_space = parse_variant(variant)
    cache = store.read_cache(layout, variant)
    tiles = load_test_set(layout)
    cache_key = settings.cache_key(DEFAULT_INFERENCE_MODE)
    tiles_frame = pd.read_parquet(tiles_table_path(layout))
    test_rows = tiles_frame[tiles_frame["split"].isin(["test_color", "test_ink"])]
    run = EvaluationRun(store.empty_rows())
    rows: list[dict[str, Any]] = []
    models = real_stats = None
    for record in checkpoint_table.sort_values("epoch").to_dict("records"):
        epoch, path = int(record["epoch"]), Path(str(record["path"]))
        base = {"variant": variant, "epoch": epoch, "checkpoint": str(path), "test_fingerprint": tiles.fingerprint,
                "cache_key": cache_key, "inference_mode": DEFAULT_INFERENCE_MODE}
        if not path.is_file():
            rows.append(_skip(run, base, f"checkpoint file {path} does not exist"))
            continue
        sha, size, mtime = store.checkpoint_sha256(path, cache)
        base.update(checkpoint_sha256=sha, file_size=size, file_mtime_ns=mtime)
        hit = cache[(cache["checkpoint_sha256"] == sha) & (cache["test_fingerprint"] == tiles.fingerprint)
                    & (cache["cache_key"] == cache_key)] if len(cache) else cache
        if len(hit):
            row = {**hit.iloc[-1].to_dict(), **base}
            rows.append(row)
            run.reused.append(epoch)
            continue
        started = time.perf_counter()
        try:
            loaded = load_for_evaluation(path, settings.device)
        except CheckpointError as exc:
            rows.append(_skip(run, base, str(exc)))
            continue
        reason = _refusal(layout, loaded, variant, backbone, color_space, tiles, tiles_frame, test_rows)
        if reason:
            rows.append(_skip(run, base, f"checkpoint {path} refused: {reason}"))
            continue
        if models is None:
            log_fn(f"loading the metric networks on {settings.device}")
            models = models_factory(settings.device)
            real_stats = real_statistics(layout, tiles, models)
        log_fn(f"evaluating {variant} epoch {epoch} ({path.name}) on {tiles.color.n} test_color + "
               f"{tiles.ink.n if tiles.ink else 0} test_ink tiles")
        row = {**base, **_score(layout, variant, epoch, loaded, tiles, real_stats, models, settings)}
        row["wall_time_s"] = time.perf_counter() - started
        row["evaluated_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        rows.append(row)
        run.evaluated.append(epoch)
    run.rows = pd.DataFrame(rows).reindex(columns=store.ROW_COLUMNS) if rows else store.empty_rows()
    store.write_rows(layout, variant, run.rows, cache)
    return run


def _skip(run: EvaluationRun, base: dict[str, Any], reason: str) -> dict[str, Any]:
    run.skipped.append((int(base["epoch"]), reason))
    log.warning("%s", reason)
    return {**base, "status": "skipped", "reason": reason}


def _refusal(layout, loaded, variant, backbone, color_space, tiles, tiles_frame, test_rows) -> str | None:
    config = loaded.config
    if (config.backbone, config.color_space) != (backbone, color_space):
        return (f"it is a {config.backbone}/{config.color_space} model, not of variant {variant!r}")
    if config.tile_size != tiles.color.size:
        return f"it was trained on {config.tile_size}px tiles, the test tiles are {tiles.color.size}px"
    training_set = leakage.known_training_set(layout, loaded.data_fingerprint, tiles_frame)
    return leakage.overlap_reason(training_set, loaded.data_fingerprint, test_rows)


def _score(layout, variant, epoch, loaded, tiles: EvaluationTiles, real_stats, models,
           settings: EvaluationSettings) -> dict[str, Any]:
    started = time.perf_counter()
    real = np.array(tiles.color.color())  # in memory: torch wants writable arrays
    generated = generate(loaded, np.asarray(tiles.color.gray()), batch_size=settings.batch_size)
    ink_gray = np.asarray(tiles.ink.gray()) if tiles.ink else None
    ink_generated = generate(loaded, ink_gray, batch_size=settings.batch_size) if tiles.ink else None
    generation_s = time.perf_counter() - started
    values = score_generated(real, generated, real_stats, models, settings, ink_generated=ink_generated)
    color_pick = sample_indices(tiles.color.n, settings.sample_color_tiles)
    ink_pick = sample_indices(tiles.ink.n, settings.sample_ink_tiles) if tiles.ink else []
    sheet = sample_sheet(
        f"{variant}  epoch {epoch}  FID {values['fid']:.2f}  LPIPS {values['lpips']:.4f}",
        [short_id(tiles.color.tile_ids[i]) for i in color_pick], np.asarray(tiles.color.gray())[color_pick],
        generated[color_pick], real[color_pick],
        [short_id(tiles.ink.tile_ids[i]) for i in ink_pick] if tiles.ink else [],
        ink_gray[ink_pick] if tiles.ink else None, ink_generated[ink_pick] if tiles.ink else None)
    sheet_path = imaging.save_image(store.sample_sheet_path(layout, variant, epoch), sheet)
    return {**values, "status": "ok", "reason": "", "n_color": tiles.color.n,
            "n_ink": tiles.ink.n if tiles.ink else 0, "generation_s": generation_s,
            "sample_sheet": str(sheet_path)}
