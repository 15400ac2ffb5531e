"""bench/cast_context.py: painting aggregates, the fewest keep tiles for a recall, the rank AUC (no paintings)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import cast_context  # noqa: E402


def test_painting_aggregate_is_taken_over_each_paintings_own_tiles():
    values = np.array([0.1, 0.9, 0.2, 0.5, 0.7])
    paintings = np.array(["a", "a", "b", "a", "b"])
    assert cast_context.painting_aggregate(values, paintings, "median") == pytest.approx([0.5, 0.5, 0.45, 0.5, 0.45])
    assert cast_context.painting_aggregate(values, paintings, "max").tolist() == [0.9, 0.9, 0.7, 0.9, 0.7]
    assert cast_context.painting_aggregate(values, paintings, "trim0.34")[0] == pytest.approx(0.5)  # 0.1, 0.9 cut
    assert cast_context.painting_aggregate(values, paintings, "q0.0").tolist() == [0.1, 0.1, 0.2, 0.1, 0.2]
    with pytest.raises(ValueError, match="unknown aggregate"):
        cast_context.painting_aggregate(values, paintings, "mode")


def test_fewest_keep_tiles_for_a_recall_and_what_a_rule_saves():
    probability = np.array([0.9, 0.8, 0.3, 0.85, 0.2])
    positives = np.array([True, True, True, False, False])
    keep = ~positives
    # Two of three positives need a threshold below 0.8, where the keep tile at 0.85 fires too.
    assert cast_context.fewest_keep(probability, positives, keep, None, goal=0.6) == 1
    # A rule that catches the faint positive (and no keep tile) lets the threshold stay above 0.85.
    rule = np.array([False, False, True, False, False])
    assert cast_context.fewest_keep(probability, positives, keep, rule, goal=0.6) == 0
    # Out of reach: a positive below every threshold of the grid and no rule.
    faint = np.array([0.9, 0.8, 0.01, 0.85, 0.2])
    assert cast_context.fewest_keep(faint, positives, keep, None, goal=1.0) is None


def test_rank_auc_counts_ties_half():
    assert cast_context.rank_auc(np.array([0.9, 0.8]), np.array([0.1, 0.8])) == pytest.approx(3.5 / 4)
    assert cast_context.rank_auc(np.array([0.9]), np.array([0.1, 0.2])) == 1.0
