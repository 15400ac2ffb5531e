"""Where evaluation results live and how they are read back.

``<storage>/evaluation/<variant>/``:

- ``evaluation_cache.parquet``: every row ever computed, keyed by (checkpoint_sha256, test_fingerprint,
  cache_key); a checkpoint already scored on the same test set with the same settings is never scored again,
  whatever its epoch number or path;
- ``evaluations.parquet``: the rows of the checkpoints in the current checkpoint table (what the asset returns);
- ``samples/epoch_XXXX.png``: one sample sheet per evaluated checkpoint;
- ``best_checkpoint.json``: the chosen checkpoint (read with :func:`read_best_checkpoint`).

Real-image Inception features are cached per test split content in ``<storage>/evaluation/features/``.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import pandas as pd

from lpd_pipeline.files import read_json_object, sha256_file, write_parquet_atomic, write_text_atomic
from lpd_pipeline.models.options import parse_variant
from lpd_pipeline.settings import StorageLayout

KEY_COLUMNS = ["checkpoint_sha256", "test_fingerprint", "cache_key"]
# Metrics of the test_color tiles (paired and distribution) and of the test_ink tiles (distribution vs the real
# test_color tiles, colourfulness). Directions: lower is better for fid, kid, lpips, delta_e, delta_cf;
# higher is better for psnr, ssim.
COLOR_METRICS = ["fid", "fid_lo", "fid_hi", "kid", "kid_lo", "kid_hi", "lpips", "delta_e", "psnr", "ssim",
                 "colorfulness_real", "colorfulness_fake", "delta_cf"]
INK_METRICS = ["ink_fid", "ink_fid_lo", "ink_fid_hi", "ink_kid", "ink_kid_lo", "ink_kid_hi", "ink_colorfulness",
               "ink_delta_cf"]
TIME_COLUMNS = ["generation_s", "features_s", "metrics_s", "wall_time_s"]
ROW_COLUMNS = ["variant", "epoch", "checkpoint", "file_size", "file_mtime_ns", *KEY_COLUMNS, "status", "reason",
               "inference_mode", "n_color", "n_ink", *COLOR_METRICS, *INK_METRICS, *TIME_COLUMNS, "sample_sheet",
               "evaluated_at"]


class EvaluationError(ValueError):
    """An evaluation input or result is unusable (the message names the file and the reason)."""


def variant_dir(layout: StorageLayout, variant: str) -> Path:
    parse_variant(variant)  # a clear error for unknown keys; keys never leave the storage root
    return layout.path("evaluation", variant)


def cache_path(layout: StorageLayout, variant: str) -> Path:
    return variant_dir(layout, variant) / "evaluation_cache.parquet"


def evaluations_path(layout: StorageLayout, variant: str) -> Path:
    return variant_dir(layout, variant) / "evaluations.parquet"


def best_path(layout: StorageLayout, variant: str) -> Path:
    return variant_dir(layout, variant) / "best_checkpoint.json"


def sample_sheet_path(layout: StorageLayout, variant: str, epoch: int) -> Path:
    return variant_dir(layout, variant) / "samples" / f"epoch_{int(epoch):04d}.png"


def features_dir(layout: StorageLayout) -> Path:
    return layout.path("evaluation", "features")


def reports_dir(layout: StorageLayout) -> Path:
    return layout.path("reports")


def empty_rows() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="object") for c in ROW_COLUMNS})


def _read_rows(path: Path) -> pd.DataFrame:
    if not path.is_file():
        return empty_rows()
    try:
        frame = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several unrelated types for a damaged file
        raise EvaluationError(f"evaluation table {path} is not readable Parquet ({exc}); delete it to "
                              f"evaluate again") from exc
    return frame.reindex(columns=ROW_COLUMNS)


def read_cache(layout: StorageLayout, variant: str) -> pd.DataFrame:
    return _read_rows(cache_path(layout, variant))


def read_evaluations(layout: StorageLayout, variant: str) -> pd.DataFrame:
    """The rows of the variant's current checkpoints (empty before the first evaluation)."""
    return _read_rows(evaluations_path(layout, variant))


def write_rows(layout: StorageLayout, variant: str, current: pd.DataFrame, cache: pd.DataFrame) -> None:
    """The current rows, and the cache with them added (a row of the same key replaced)."""
    ok = current[current["status"] == "ok"]
    merged = pd.concat([cache, ok], ignore_index=True) if len(cache) else ok.copy()
    merged = merged.drop_duplicates(KEY_COLUMNS, keep="last").reset_index(drop=True)
    write_parquet_atomic(merged.reindex(columns=ROW_COLUMNS), cache_path(layout, variant))
    write_parquet_atomic(current.reindex(columns=ROW_COLUMNS), evaluations_path(layout, variant))


def checkpoint_sha256(path: Path, cache: pd.DataFrame) -> tuple[str, int, int]:
    """(sha256, size, mtime_ns) of a checkpoint file; the hash is reused from a cached row of the same path, size
    and modification time (a paper-sized checkpoint takes a second or more to hash)."""
    stat = path.stat()
    if len(cache):
        same = cache[(cache["checkpoint"] == str(path)) & (cache["file_size"] == stat.st_size)
                     & (cache["file_mtime_ns"] == stat.st_mtime_ns)]
        if len(same):
            return str(same["checkpoint_sha256"].iloc[-1]), stat.st_size, stat.st_mtime_ns
    return sha256_file(path), stat.st_size, stat.st_mtime_ns


# ---- best checkpoint -------------------------------------------------------------------------------------
def write_best_checkpoint(layout: StorageLayout, variant: str, record: dict[str, Any]) -> Path:
    return write_text_atomic(best_path(layout, variant), json.dumps(record, indent=2, allow_nan=True))


def read_best_checkpoint(layout: StorageLayout, variant: str) -> dict | None:
    """The variant's chosen checkpoint: ``{variant, epoch, checkpoint (absolute path), checkpoint_sha256,
    test_fingerprint, rule, chosen_by, fid, fid_lo, fid_hi, kid, ..., lpips, delta_e, psnr, ssim, delta_cf, ...}``;
    None when the variant has not been evaluated. EvaluationError when the record is damaged or its checkpoint
    file is gone (a training restart moves checkpoints to previous_runs/): evaluate again."""
    path = best_path(layout, variant)
    if not path.is_file():
        return None
    record = read_json_object(path)
    missing = [k for k in ("variant", "epoch", "checkpoint", "checkpoint_sha256") if k not in record]
    if missing or record.get("variant") != variant:
        raise EvaluationError(f"best-checkpoint record {path} is damaged (missing {missing or 'the right variant'}); "
                              f"run evaluate_checkpoints again")
    if not Path(record["checkpoint"]).is_file():
        raise EvaluationError(f"the best checkpoint of {variant}, {record['checkpoint']} (recorded in {path}), no "
                              f"longer exists; run evaluate_checkpoints again")
    return record


def finite(value: Any) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def as_plain(value: Any) -> Any:
    """JSON-friendly scalars (numpy types to Python)."""
    if hasattr(value, "item"):
        return value.item()
    return value


def relative_to_root(layout: StorageLayout, path: str | os.PathLike) -> str:
    return Path(path).resolve().relative_to(layout.root).as_posix()
