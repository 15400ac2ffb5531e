"""bench/train_tile_model.py: the threshold allocation and the loss weights (no real paintings needed)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import train_tile_model as training  # noqa: E402


def _toy():
    # 10 good tiles, class A (10 tiles) easy, class B (10 tiles) only separable at the price of good tiles.
    good = np.zeros((10, 2))
    good[:2, 1] = 0.8  # two good tiles look like B
    a = np.column_stack([np.full(10, 0.9), np.zeros(10)])
    b = np.column_stack([np.zeros(10), np.r_[np.full(5, 0.9), np.full(5, 0.7)]])
    probabilities = np.vstack([good, a, b])
    labels = np.zeros((30, 2))
    labels[10:20, 0] = labels[20:, 1] = 1
    bad = np.r_[np.zeros(10, bool), np.ones(20, bool)]
    return probabilities, labels, bad


def test_thresholds_spend_the_good_budget_on_recall():
    probabilities, labels, bad = _toy()
    none = np.zeros((30, 2), bool)
    th, rule = training.choose_thresholds(probabilities, labels, bad, 0.0, none, np.zeros(30, bool))
    assert not rule.any()
    assert (probabilities[10:20, 0] > th[0]).all()  # free: no good tile costs
    assert (probabilities[20:25, 1] > th[1]).all() and not (probabilities[:10, 1] > th[1]).any()
    th, _ = training.choose_thresholds(probabilities, labels, bad, 0.2, none, np.zeros(30, bool))
    assert (probabilities[20:, 1] > th[1]).all()  # two good tiles bought the other five B tiles
    assert ((probabilities[:10] > th).any(axis=1)).sum() == 2


def test_a_rule_is_switched_on_when_it_adds_recall_for_free():
    probabilities, labels, bad = _toy()
    rule_fired = np.zeros((30, 2), bool)
    rule_fired[25:, 1] = True  # the rule catches the faint B tiles and no good tile
    th, rule = training.choose_thresholds(probabilities, labels, bad, 0.0, rule_fired, np.zeros(30, bool))
    assert rule[1] and (((probabilities > th) | (rule_fired & rule))[20:, 1]).all()


def test_an_always_on_rule_stays_on_and_its_cost_counts_in_the_budget():
    probabilities, labels, bad = _toy()
    rule_fired = np.zeros((30, 2), bool)
    rule_fired[2:4, 0] = True  # class A's rule fires on two good tiles (not those that look like B), nothing else
    th, rule = training.choose_thresholds(probabilities, labels, bad, 0.2, rule_fired, np.zeros(30, bool),
                                          always_rule=[0])
    assert rule[0]
    fired = (probabilities > th) | (rule_fired & rule)
    assert fired[:10].any(axis=1).sum() <= 2  # the rule's two good tiles spend the whole budget of 2
    assert not (probabilities[20:, 1] > th[1]).all()  # so the other five B tiles are not bought this time


def test_other_classes_bad_tiles_weigh_less():
    labels = np.array([[1, 0], [0, 1], [0, 0]], float)
    bad = np.array([True, True, False])
    assert training.loss_weights(labels, bad).tolist() == [[1.0, training.OTHER_BAD_WEIGHT],
                                                           [training.OTHER_BAD_WEIGHT, 1.0], [1.0, 1.0]]


def test_out_of_fold_scores_unlabelled_tiles_with_the_models_of_their_group():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(60, 4))
    labels = (features[:, :1] + 0.3 * rng.normal(size=(60, 1)) > 0).astype(float)
    groups, bad = np.arange(60) % training.CV_FOLDS, labels[:, 0] > 0
    alone = training.out_of_fold(features, labels, groups, bad)
    same, scored = training.out_of_fold(features, labels, groups, bad, (features, groups))
    assert np.array_equal(alone, same)
    assert np.array_equal(scored, alone)  # a labelled tile scored as one of the grid gets its out-of-fold P
    _, moved = training.out_of_fold(features, labels, groups, bad, (features, (groups + 1) % training.CV_FOLDS))
    assert not np.array_equal(moved, alone)  # another group's models: another P


def test_cv_group_salt_draws_another_split_and_the_default_is_unchanged():
    paintings = [f"colored/p{i}.jpg" for i in range(50)]
    assert [training.cv_group(p) for p in paintings] == [training.cv_group(p, "cv") for p in paintings]
    assert [training.cv_group(p) for p in paintings] != [training.cv_group(p, "cv2") for p in paintings]


def test_fit_adds_heads_whose_thresholds_are_chosen_for_the_mean_of_stumps_and_heads():
    """A class the hand-made features cannot see but the trunk's can: the stumps' own thresholds stay (for ingest
    without the AlexNet weights) and the heads get theirs, chosen on the mean's out-of-fold P."""
    import filter_accuracy as bench

    from lpd_pipeline.curation import trunk_features
    from lpd_pipeline.curation.tile_features import FEATURE_NAMES

    rng = np.random.default_rng(0)
    n = 200
    labels = rng.random(n) < 0.3
    rows = [bench.LabelledTile("web", f"p{i}.jpg", 0, 0, 256, ("seal",) if labels[i] else (bench.KEEP,), False,
                               "train") for i in range(n)]
    features = rng.normal(size=(n, len(FEATURE_NAMES)))
    features[:, [FEATURE_NAMES.index(f"rule_{name}") for name in ("seal", "odd_colour", "watermark")]] = 0.0
    deep = rng.normal(size=(n, trunk_features.FEATURE_COUNT))
    deep[:, :40] += 1.5 * labels[:, None]  # the trunk sees the seal; the hand-made features are noise
    data = training.TrainingData(rows, features, deep, tuple(FEATURE_NAMES))
    model, held_out = training.fit(data, 0.1, classes=("seal",))
    stumps_only, stumps_held_out = training.fit(data, 0.1, classes=("seal",), heads=False)
    assert set(model.heads) == {"seal"} and not stumps_only.heads
    assert model.classes["seal"] == stumps_only.classes["seal"]  # the stumps and their thresholds are unchanged
    assert training.deciding(model, "seal") is model.heads["seal"]
    keep = ~labels

    def recall_at_budget(p, threshold):
        return (p[labels] > threshold).mean(), (p[keep] > threshold).mean()

    recall, good = recall_at_budget(held_out[:, 0], model.heads["seal"].threshold)
    recall_stumps, _ = recall_at_budget(stumps_held_out[:, 0], stumps_only.classes["seal"].threshold)
    assert good <= 0.1 + 1e-9 and recall > recall_stumps + 0.3
    # The columns constant in training (rules ingest may skip) are not read by the heads.
    assert FEATURE_NAMES.index("rule_watermark") not in model.linear_inputs.columns
