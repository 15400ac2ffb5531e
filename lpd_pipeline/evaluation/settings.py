"""The knobs of checkpoint evaluation: one :class:`lpd_pipeline.config.Settings` model (no Dagster), shared by the
assets (run config generated from it), the metrics CLI (flags generated from it) and bench.

Every field that changes a metric value (bootstrap, seed) is part of the cache key of an evaluation row
(:func:`EvaluationSettings.cache_key`); the others (device, batch size, sample counts, selection rule, retention)
change only speed, pictures or decisions taken from the rows.
"""

from __future__ import annotations

import hashlib
import json
from typing import Literal

from pydantic import Field

from lpd_pipeline.config import Settings

# Bumped when the evaluation's own arithmetic or row layout changes: cached rows of another version are redone.
EVALUATION_VERSION = 1

SELECTION_RULES = ("fid_then_lpips", "fid", "lpips")


class EvaluationSettings(Settings):
    """How checkpoints are scored, how the best is chosen and which checkpoints are kept afterwards."""

    device: str = Field("cpu", description="torch device for the generator and the metric networks ('cpu', "
                                           "'cuda', 'cuda:1', ...)")
    batch_size: int = Field(16, ge=1, description="test tiles per generator forward pass in eval mode (pix2pix "
                                                  "mode always colours one tile at a time, as the reference)")
    bootstrap: int = Field(200, ge=0, description="bootstrap resamples for the 95% intervals of FID and KID "
                                                  "(0: no interval)")
    seed: int = Field(0, description="seed of the bootstrap resampling and of KID's subsets")
    sample_color_tiles: int = Field(8, ge=0, description="fixed test_color tiles on each sample sheet "
                                                         "(gray | generated | real)")
    sample_ink_tiles: int = Field(4, ge=0, description="fixed test_ink tiles on each sample sheet "
                                                       "(ink | generated)")
    selection_rule: Literal["fid_then_lpips", "fid", "lpips"] = Field(
        "fid_then_lpips",
        description="how best_checkpoint is chosen: 'fid_then_lpips' (lowest FID; when its bootstrap interval "
                    "overlaps others', the lowest LPIPS among those), 'fid' (lowest FID), 'lpips' (lowest LPIPS)")
    keep_every_epochs: int = Field(0, ge=0, description="evaluation-aware retention: after evaluation, delete "
                                                        "evaluated checkpoints except the best, the latest and "
                                                        "epochs that are multiples of this (0: delete nothing)")

    def cache_key(self, inference_mode: str) -> str:
        """What a cached evaluation row must match besides the checkpoint and test set content."""
        fields = {"version": EVALUATION_VERSION, "bootstrap": self.bootstrap, "seed": self.seed,
                  "inference_mode": inference_mode}
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]
