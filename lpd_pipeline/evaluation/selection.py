"""Choosing the best checkpoint of a variant from its evaluation rows, by a named, documented rule.

Rules (``EvaluationSettings.selection_rule``):

- ``fid_then_lpips`` (default): the lowest FID wins, unless its bootstrap 95% interval overlaps the intervals of
  other checkpoints: FID on a few hundred tiles is noisy, so those checkpoints are indistinguishable by FID and
  the lowest LPIPS (the paired, per-tile perceptual distance to the real colours) among them wins. Without
  intervals (bootstrap 0) this is the lowest FID.
- ``fid``: the lowest FID.
- ``lpips``: the lowest LPIPS.

Only rows with status "ok" and finite values of the rule's metrics compete; ties go to the earlier epoch (the
same quality for less training).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from lpd_pipeline.evaluation.settings import SELECTION_RULES
from lpd_pipeline.evaluation.store import finite


@dataclass(frozen=True)
class Choice:
    row: pd.Series
    chosen_by: str


def choose_best(rows: pd.DataFrame, rule: str = "fid_then_lpips") -> Choice | None:
    """The winning row and why; None when no row can compete."""
    if rule not in SELECTION_RULES:
        raise ValueError(f"unknown selection rule {rule!r}; known: {list(SELECTION_RULES)}")
    needed = {"fid_then_lpips": ["fid", "lpips"], "fid": ["fid"], "lpips": ["lpips"]}[rule]
    usable = rows[(rows["status"] == "ok")]
    usable = usable[usable[needed].apply(lambda r: all(finite(v) for v in r), axis=1)] if len(usable) else usable
    if usable.empty:
        return None
    usable = usable.sort_values("epoch", kind="stable")
    if rule == "lpips":
        best = usable.loc[usable["lpips"].astype(float).idxmin()]
        return Choice(best, f"lowest LPIPS ({float(best['lpips']):.4f}) of {len(usable)} checkpoint(s)")
    best = usable.loc[usable["fid"].astype(float).idxmin()]
    what = f"lowest FID ({float(best['fid']):.2f}) of {len(usable)} checkpoint(s)"
    if rule == "fid" or not (finite(best["fid_lo"]) and finite(best["fid_hi"])):
        return Choice(best, what)
    lo, hi = float(best["fid_lo"]), float(best["fid_hi"])
    overlapping = usable[usable.apply(
        lambda r: finite(r["fid_lo"]) and finite(r["fid_hi"]) and float(r["fid_lo"]) <= hi
        and float(r["fid_hi"]) >= lo, axis=1)]
    if len(overlapping) <= 1:
        return Choice(best, f"{what}; its 95% interval [{lo:.2f}, {hi:.2f}] overlaps no other")
    winner = overlapping.loc[overlapping["lpips"].astype(float).idxmin()]
    epochs = ", ".join(str(int(e)) for e in overlapping["epoch"])
    return Choice(winner, f"{what} at epoch {int(best['epoch'])}, its 95% interval [{lo:.2f}, {hi:.2f}] "
                          f"overlapping those of epochs {epochs}; lowest LPIPS among them at epoch "
                          f"{int(winner['epoch'])} ({float(winner['lpips']):.4f})")


RECORD_METRICS = ("fid", "fid_lo", "fid_hi", "kid", "kid_lo", "kid_hi", "lpips", "delta_e", "psnr", "ssim",
                  "colorfulness_real", "colorfulness_fake", "delta_cf", "ink_fid", "ink_kid", "ink_colorfulness",
                  "n_color", "n_ink")


def best_record(variant: str, choice: Choice, rule: str) -> dict:
    """The content of best_checkpoint.json for ``choice``."""
    row = choice.row
    record = {"variant": variant, "epoch": int(row["epoch"]), "checkpoint": str(row["checkpoint"]),
              "checkpoint_sha256": str(row["checkpoint_sha256"]), "test_fingerprint": str(row["test_fingerprint"]),
              "cache_key": str(row["cache_key"]), "inference_mode": str(row["inference_mode"])}
    for name in RECORD_METRICS:
        value = row.get(name)
        record[name] = (int(value) if name.startswith("n_") else float(value)) if finite(value) else None
    record.update(rule=rule, chosen_by=choice.chosen_by, sample_sheet=str(row.get("sample_sheet") or ""))
    return record
