"""The pipeline's tile decisions (learned filter + rules, as ingest decides) on real labelled tiles of
../shared that no model was trained on: the frozen test fold of bench/labels/tile_labels.csv.

Every drop class is covered by its real test-fold examples (skipped without ../shared, which holds the
paintings; the labels alone are in the repo). The bars are below what bench/RESULTS.md records, so the test
fails when a change loses a class, not when the figures move by a tile or two."""

from __future__ import annotations

import numpy as np
import pytest

from lpd_pipeline.curation import tile_model
from lpd_pipeline.curation.filters import FILTER_NAMES, FilterThresholds
from lpd_pipeline_tests.test_filter_labels import _bench
# At least this share of each class's sure test-fold tiles is rejected by some filter...
MIN_REJECTED = {"blank": 0.8, "blur": 0.8, "watermark": 0.5, "seal": 0.85, "inscription": 0.8, "padding": 0.8,
                "odd_colour": 0.8}
# ...and at least this share by the filter of its own class (the issue's per-filter recall; recorded in
# bench/RESULTS.md, ninth pass, stumps and heads: blank 0.86, blur 0.81, seal 0.70, inscription 0.74, padding 0.82,
# odd colour 0.94; the stumps alone: 0.77, 0.81, 0.89, 0.70, 0.76, 0.88)...
MIN_OWN_RECALL = {"blank": 0.68, "blur": 0.7, "watermark": 0.5, "seal": 0.7, "inscription": 0.7, "padding": 0.7,
                  "odd_colour": 0.8}
# ...and at most this share of the sure keep tiles (recorded: 0.12 with the heads, 0.18 by the stumps alone).
MAX_GOOD_REJECTED = 0.25
# Issue 12's goals on the frozen fold, which the model with its linear heads meets (bench/RESULTS.md, ninth pass).
GOAL_BAD_REJECTED, GOAL_GOOD_REJECTED = 0.80, 0.15


@pytest.fixture(scope="module")
def scored_test_fold(shared_paintings):
    model = tile_model.resolve_model("bundled", 256)
    if model is None:
        pytest.skip("no bundled tile model in this checkout: the rules decide (see test_filters.py)")
    bench = _bench()
    rows = [r for r in bench.select(bench.read_labels(), "test") if not r.unsure]
    return bench.score_labelled(rows, shared_paintings, FilterThresholds(), model)


@pytest.mark.parametrize("name", FILTER_NAMES)
def test_real_bad_tiles_of_each_class_are_rejected(scored_test_fold, name):
    of_class = [s for s in scored_test_fold if name in s.tile.labels]
    assert of_class, f"no sure {name} tile in the test fold"
    rejected = np.mean([bool(s.fired) for s in of_class])
    assert rejected >= MIN_REJECTED[name], (name, rejected, len(of_class))


@pytest.mark.parametrize("name", FILTER_NAMES)
def test_each_filter_catches_its_own_class(scored_test_fold, name):
    of_class = [s for s in scored_test_fold if name in s.tile.labels]
    recall = np.mean([name in s.fired for s in of_class])
    assert recall >= MIN_OWN_RECALL[name], (name, recall, len(of_class))


def test_real_good_tiles_are_mostly_kept(scored_test_fold):
    good = [s for s in scored_test_fold if not s.tile.bad]
    assert len(good) >= 30
    assert np.mean([bool(s.fired) for s in good]) <= MAX_GOOD_REJECTED


def test_the_issue_goals_hold_where_the_linear_heads_decide(scored_test_fold):
    """Bad tiles rejected >= 0.80 and good tiles rejected <= 0.15 (6 of 49 recorded: one more keep tile rejected
    still passes, two more fail). The heads need the metric weights, which the test session provisions."""
    if not tile_model.resolve_model("bundled", 256).uses_heads():
        pytest.skip("the AlexNet weights are not provisioned: the stumps decide alone (goals not claimed for them)")
    bad = [bool(s.fired) for s in scored_test_fold if s.tile.bad]
    good = [bool(s.fired) for s in scored_test_fold if not s.tile.bad]
    assert np.mean(bad) >= GOAL_BAD_REJECTED and np.mean(good) <= GOAL_GOOD_REJECTED, (np.mean(bad), np.mean(good))
