"""Checkpoints: atomic, loadable with ``torch.load(weights_only=True)``, with retention and generator export.

A checkpoint holds everything needed to continue a run exactly: both networks, both optimizers and
schedulers, the AMP grad scaler, RNG states, the epoch and step counters, the config, the data fingerprint
and the per-epoch loss history. Every value is a tensor or a plain Python container of primitives, so
loading never unpickles arbitrary objects.
"""

from __future__ import annotations

import logging
import os
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from lpd_pipeline import files
from lpd_pipeline.files import atomic_path, write_parquet_atomic
from lpd_pipeline.models.build import build_model_generator
from lpd_pipeline.training.config import LOSS_NAMES, MODEL_FIELDS, TrainConfig

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = 1
GENERATOR_FORMAT = "lpd-generator-v1"
# What every refusal to resume says to do, in each of the three ways a run is started.
RESTART_HINT = ("start a new run with restart (restart=True in Python, --restart on the command line, "
                "restart: true in the Dagster run config; the old run is kept in previous_runs/) or use another "
                "run directory")
CHECKPOINT_NAME = re.compile(r"^epoch_(\d{4,})\.pt$")
TABLE_COLUMNS = ["epoch", "path", "global_step", *LOSS_NAMES, "lr", "wall_time_s"]


class CheckpointError(ValueError):
    """A checkpoint is unreadable or does not belong to the current run (message names file and reason)."""


def checkpoint_dir(run_dir: str | os.PathLike) -> Path:
    return Path(run_dir) / "checkpoints"


def checkpoint_path(run_dir: str | os.PathLike, epoch: int) -> Path:
    return checkpoint_dir(run_dir) / f"epoch_{epoch:04d}.pt"


def table_path(run_dir: str | os.PathLike) -> Path:
    return Path(run_dir) / "checkpoints.parquet"


# ---- RNG state as weights_only-safe values --------------------------------------------------------------
def capture_rng_state() -> dict[str, Any]:
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": [int(version), [int(v) for v in internal], gauss],
        "numpy": {
            "kind": str(kind),
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "torch_cpu": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((int(version), tuple(int(v) for v in internal), gauss))
    numpy_state = state["numpy"]
    np.random.set_state(
        (
            numpy_state["kind"],
            numpy_state["keys"].numpy().astype(np.uint32),
            int(numpy_state["pos"]),
            int(numpy_state["has_gauss"]),
            float(numpy_state["cached_gaussian"]),
        )
    )
    torch.set_rng_state(state["torch_cpu"])
    if "cuda" in state and torch.cuda.is_available():
        cuda_states = state["cuda"][: torch.cuda.device_count()]
        torch.cuda.set_rng_state_all(cuda_states)


# ---- atomic save / safe load -----------------------------------------------------------------------------
def save_torch_atomic(obj: Any, final_path: str | os.PathLike) -> Path:
    """torch.save through a durable atomic write (fsynced temp file renamed over ``final_path``)."""
    with atomic_path(final_path, durable=True) as tmp:
        torch.save(obj, tmp)
    return Path(final_path)


def load_failure_reason(path: Path, error: BaseException) -> str:
    """Why ``torch.load(path, weights_only=True)`` failed, in words that never advise loading the file unsafely.

    An empty file says so (PyTorch raises a bare EOFError); a refusal of the weights-only unpickler keeps its
    finding (the unsupported global or opcode) but not PyTorch's advice to retry with ``weights_only=False``,
    which would run whatever code a hostile file carries.
    """
    try:
        if path.stat().st_size == 0:
            return "file is empty"
    except OSError as exc:
        return f"{type(exc).__name__}: {exc}"
    text = str(error)
    if "Weights only load failed" in text:
        finding = text.split("WeightsUnpickler error:", 1)[1] if "WeightsUnpickler error:" in text else ""
        finding = " ".join(line.strip() for line in finding.splitlines()
                           if line.strip() and "weights_only" not in line and "torch.load" not in line)
        return ("refused by the weights-only loader: it holds objects other than tensors and plain containers"
                + (f" ({finding})" if finding else "") + "; never load it with weights_only=False")
    lines = [line.strip() for line in text.splitlines() if line.strip() and "weights_only" not in line]
    return " ".join(lines) or f"{type(error).__name__} (damaged or truncated file)"


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a training checkpoint with ``weights_only=True`` (never executes pickled code)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"checkpoint {path} cannot be loaded: {load_failure_reason(path, exc)}") from exc
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"checkpoint {path} is not an lpd training checkpoint (format {CHECKPOINT_FORMAT})")
    return payload


def list_checkpoints(run_dir: str | os.PathLike) -> list[tuple[int, Path]]:
    """``(epoch, path)`` of the checkpoint files in ``run_dir``, oldest first (temp files ignored)."""
    directory = checkpoint_dir(run_dir)
    if not directory.is_dir():
        return []
    found = []
    for path in directory.iterdir():
        match = CHECKPOINT_NAME.match(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found)


def latest_checkpoint(run_dir: str | os.PathLike) -> tuple[Path, dict[str, Any]] | None:
    """The newest checkpoint that loads, with its payload. An unreadable one is skipped with a warning."""
    for epoch, path in reversed(list_checkpoints(run_dir)):
        try:
            return path, load_checkpoint(path)
        except CheckpointError as exc:
            log.warning("skipping unreadable checkpoint: %s", exc)
    return None


def corrupt_name(path: Path) -> Path:
    """Where an unreadable checkpoint is set aside: ``epoch_N.pt.corrupt``, or ``epoch_N.pt.2.corrupt``,
    ``.3.corrupt``... when an earlier corruption of the same epoch is already there (never overwritten)."""
    candidate, number = path.with_name(path.name + ".corrupt"), 1
    while candidate.exists() or candidate.is_symlink():
        number += 1
        candidate = path.with_name(f"{path.name}.{number}.corrupt")
    return candidate


def set_aside_unreadable_checkpoints(run_dir: str | os.PathLike) -> list[Path]:
    """Rename the unreadable checkpoints newer than the newest readable one to ``*.pt.corrupt``.

    They would otherwise stay "the latest" for retention (which keeps the latest and could delete the new
    checkpoints of the resumed run) and for generator export. Raises CheckpointError, renaming nothing, when
    checkpoints exist but none loads: silently starting the run over would waste it. Returns the renamed files.
    """
    present = list_checkpoints(run_dir)
    unreadable: list[tuple[Path, str]] = []
    for _, path in reversed(present):
        try:
            load_checkpoint(path)
            break
        except CheckpointError as exc:
            unreadable.append((path, str(exc)))
    if present and len(unreadable) == len(present):
        raise CheckpointError(
            f"no checkpoint in {checkpoint_dir(run_dir)} can be loaded "
            f"({'; '.join(e.splitlines()[0] for _, e in unreadable)}); "
            f"{RESTART_HINT}"
        )
    set_aside = []
    for path, error in unreadable:
        corrupt = corrupt_name(path)
        os.rename(path, corrupt)
        set_aside.append(corrupt)
        log.warning("set aside unreadable checkpoint as %s: %s", corrupt, error)
    return set_aside


def remove_stale_temp_files(run_dir: str | os.PathLike) -> int:
    """Delete temp files a killed writer left among the checkpoints; returns how many (one writer per run)."""
    return files.remove_stale_temp_files(checkpoint_dir(run_dir))


# ---- retention -------------------------------------------------------------------------------------------
def retained_epochs(epochs: list[int], keep_every: int | None, checkpoint_every: int) -> set[int]:
    """Which checkpoint epochs to keep: every ``keep_every``-th regular checkpoint plus the latest.

    Regular checkpoints fall on multiples of ``checkpoint_every``; with keep_every=k those at multiples of
    k·checkpoint_every survive. Extra checkpoints (end of a run that stopped between multiples) survive only
    while they are the latest. ``keep_every`` 0/None keeps everything.
    """
    if not epochs:
        return set()
    if not keep_every:
        return set(epochs)
    period = keep_every * checkpoint_every
    return {e for e in epochs if e % period == 0} | {max(epochs)}


def apply_retention(run_dir: str | os.PathLike, keep_every: int | None, checkpoint_every: int) -> list[Path]:
    """Delete checkpoints outside the retention set; returns the deleted paths."""
    present = list_checkpoints(run_dir)
    keep = retained_epochs([e for e, _ in present], keep_every, checkpoint_every)
    deleted = []
    for epoch, path in present:
        if epoch not in keep:
            path.unlink(missing_ok=True)
            deleted.append(path)
    return deleted


def write_checkpoint_table(run_dir: str | os.PathLike, rows: list[dict[str, Any]]) -> Path:
    """checkpoints.parquet: one row per checkpoint file that exists, oldest first."""
    existing = {e for e, _ in list_checkpoints(run_dir)}
    frame = pd.DataFrame([r for r in rows if r["epoch"] in existing], columns=TABLE_COLUMNS)
    frame = frame.sort_values("epoch").drop_duplicates("epoch", keep="last").reset_index(drop=True)
    return write_parquet_atomic(frame, table_path(run_dir))


def generator_path(run_dir: str | os.PathLike) -> Path:
    """The run's generator-only export (see :func:`export_generator`)."""
    return Path(run_dir) / "generator.pt"


def history_path(run_dir: str | os.PathLike) -> Path:
    return Path(run_dir) / "history.parquet"


def write_loss_history(run_dir: str | os.PathLike, history: list[dict[str, Any]]) -> Path:
    """history.parquet: one row per finished epoch (losses, lr, img/s, times), for curves and monitoring."""
    return write_parquet_atomic(pd.DataFrame(history), history_path(run_dir))


def read_loss_history(run_dir: str | os.PathLike) -> pd.DataFrame:
    path = history_path(run_dir)
    return pd.read_parquet(path) if path.is_file() else pd.DataFrame(columns=["epoch"])


def read_checkpoint_table(run_dir: str | os.PathLike) -> pd.DataFrame:
    path = table_path(run_dir)
    if not path.is_file():
        return pd.DataFrame(columns=TABLE_COLUMNS)
    return pd.read_parquet(path)


# ---- generator export ------------------------------------------------------------------------------------
@dataclass
class LoadedGenerator:
    """An exported generator rebuilt for inference and the config it was trained with."""

    net: torch.nn.Module
    config: TrainConfig
    epoch: int
    data_fingerprint: str


def export_generator(
    checkpoint: str | os.PathLike | dict[str, Any], path: str | os.PathLike, *, dtype: str = "fp16"
) -> Path:
    """Write a small generator-only file (weights + what is needed to rebuild the network) for inference."""
    if dtype not in ("fp16", "fp32"):
        raise ValueError(f"export dtype must be 'fp16' or 'fp32', got {dtype!r}")
    payload = checkpoint if isinstance(checkpoint, dict) else load_checkpoint(checkpoint)
    target = torch.float16 if dtype == "fp16" else torch.float32
    weights = {
        name: (t.to(target) if t.is_floating_point() else t).clone() for name, t in payload["generator"].items()
    }
    exported = {
        "format": GENERATOR_FORMAT,
        "generator": weights,
        "config": dict(payload["config"]),
        "epoch": int(payload["epoch"]),
        "data_fingerprint": payload["data_fingerprint"],
        "dtype": dtype,
    }
    return save_torch_atomic(exported, path)


# How a loaded generator normalises and uses dropout at inference.
INFERENCE_MODES = ("pix2pix", "eval")


def load_generator(
    path: str | os.PathLike, device: str | torch.device = "cpu", *, mode: str = "pix2pix"
) -> LoadedGenerator:
    """Rebuild the generator of an exported generator file or of a training checkpoint, in fp32 on ``device``
    (weights_only loading).

    ``mode="pix2pix"`` (default) behaves as the reference implementation's test script, which the study's
    figures come from: BatchNorm normalises with the statistics of the images being coloured (at batch 1 that
    is per-image normalisation, as in training) and dropout stays on as pix2pix's noise. ``mode="eval"`` uses
    the running statistics and no dropout (PyTorch's usual eval mode; deterministic, but for pix2pix trained
    at batch 1 usually worse). Run inference under ``torch.no_grad()`` either way.
    """
    if mode not in INFERENCE_MODES:
        raise ValueError(f"load_generator: mode must be one of {INFERENCE_MODES}, got {mode!r}")
    path = Path(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"generator file {path} cannot be loaded: {load_failure_reason(path, exc)}") from exc
    if not is_lpd_payload(payload):
        raise CheckpointError(f"{path} is neither an exported lpd generator ({GENERATOR_FORMAT}) nor an lpd "
                              f"training checkpoint (format {CHECKPOINT_FORMAT})")
    return generator_from_payload(payload, device, mode=mode)


def is_lpd_payload(payload: Any) -> bool:
    """Whether a ``torch.load``-ed object is an lpd generator export or training checkpoint."""
    return isinstance(payload, dict) and payload.get("format") in (GENERATOR_FORMAT, CHECKPOINT_FORMAT)


def generator_from_payload(payload: dict[str, Any], device: str | torch.device = "cpu", *,
                           mode: str = "pix2pix") -> LoadedGenerator:
    """The generator of an already loaded lpd payload (see :func:`load_generator` for ``mode``)."""
    if mode not in INFERENCE_MODES:
        raise ValueError(f"generator_from_payload: mode must be one of {INFERENCE_MODES}, got {mode!r}")
    config = TrainConfig.from_dict(payload["config"])
    net = build_model_generator(config)
    weights = {k: (v.float() if v.is_floating_point() else v) for k, v in payload["generator"].items()}
    net.load_state_dict(weights)
    net.to(device).train(mode == "pix2pix")
    return LoadedGenerator(net, config, int(payload["epoch"]), payload["data_fingerprint"])


def check_compatible(
    payload: dict[str, Any], path: Path, config: TrainConfig, fingerprint: str, world_size: int = 1
) -> list[str]:
    """Raise CheckpointError when ``payload`` cannot continue this run exactly; return the changed schedule
    fields (a longer schedule is allowed and applies from the next epoch)."""
    from lpd_pipeline.training.config import OPTIMISATION_FIELDS, SCHEDULE_FIELDS, config_differences

    if payload.get("data_fingerprint") != fingerprint:
        raise CheckpointError(
            f"checkpoint {path} was trained on different data "
            f"(fingerprint {str(payload.get('data_fingerprint'))[:12]}, "
            f"current tiles {fingerprint[:12]}); {RESTART_HINT}"
        )
    saved = payload.get("config", {})
    for names, what in ((MODEL_FIELDS, "model config"), (OPTIMISATION_FIELDS, "optimisation settings")):
        diff = config_differences(saved, config, names)
        if diff:
            detail = ", ".join(f"{k}: checkpoint {a!r} vs now {b!r}" for k, (a, b) in diff.items())
            raise CheckpointError(f"checkpoint {path} has different {what} ({detail}); {RESTART_HINT}")
    saved_world = int(payload.get("world_size", 1))
    if saved_world != world_size:
        raise CheckpointError(
            f"checkpoint {path} was trained by {saved_world} process(es), this run has {world_size}: the "
            f"effective batch and the data order would change; launch {saved_world} process(es) or {RESTART_HINT}"
        )
    epoch = int(payload.get("epoch", 0))
    if epoch > config.total_epochs:
        raise CheckpointError(
            f"checkpoint {path} is at epoch {epoch} but the schedule now ends at epoch {config.total_epochs} "
            f"(n_epochs + n_epochs_decay); lengthen it or {RESTART_HINT}"
        )
    return sorted(config_differences(saved, config, SCHEDULE_FIELDS))
