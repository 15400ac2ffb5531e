"""Train the learned tile filter (lpd_pipeline/curation/tile_model.json) on the hand labels' train fold.

    .venv/bin/python bench/train_tile_model.py [--shared DIR] [--out PATH] [--target-good 0.12]

Reads ``bench/labels/tile_labels.csv`` (train fold only, sure 256-px tiles), computes
``lpd_pipeline.curation.tile_features`` on each tile of ``<shared>/paintings``, and for each modelled class fits
boosted stumps (``tile_model.fit_class``; tiles of *other* drop classes weigh OTHER_BAD_WEIGHT as negatives: a
seal model that also fires on an inscription tile costs nothing the goals measure). Class thresholds, and
whether each class's rule filter also rejects (``with_rule``), are chosen on out-of-fold probabilities of a
5-fold cross-validation *by painting* within the train fold: a greedy spending of the good tiles the filters
may reject (``--target-good``) where it buys the most recall of each filter for its own class
(:func:`choose_thresholds`). The final
model is fitted on the whole train fold with those thresholds. The test fold is never read. Deterministic: the
same labels and paintings give the same file (a few seconds of fitting after ~1 minute of features).

With the text detector's weights present (``lpd_pipeline/curation/text_net.pt``, ``bench/train_text_net.py``),
its P(inscription) is one more feature, ``text_net`` (computed on every labelled tile; the network never trained
on one, so the cross-validation stays out of sample), and the model file lists it.

With the AlexNet weights provisioned (the metric weights, ``python -m lpd_pipeline.metrics.weights``), each
class also gets a linear head (``tile_model.fit_linear``, L2 :data:`LINEAR_L2`) over the standardised features
and the ImageNet trunk's (``lpd_pipeline.curation.trunk_features``); the class's probability is then the mean of
stumps and head, and a second set of thresholds and rule flags is chosen the same way for that mean, on the same
cross-validation (the heads' out-of-fold P too). The stumps keep their own set: ingest without the AlexNet
weights decides with them alone. Without the weights here, the file has stumps only.

Watermark is not modelled: the features do not see overlay text (generated overlays and their clean originals
are indistinguishable to them, see bench/RESULTS.md), so it stays with its rule.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "bench"))

import filter_accuracy as bench  # noqa: E402

from lpd_pipeline.curation import text_net, tile_model, trunk_features, watermark_net  # noqa: E402
from lpd_pipeline.curation.filters import FilterThresholds, score_tile  # noqa: E402
from lpd_pipeline.curation.tile_features import FEATURE_NAMES, tile_features  # noqa: E402
from lpd_pipeline.imaging import decode_image  # noqa: E402
from lpd_pipeline.metrics.alexnet import AlexNetWeightsMissing  # noqa: E402

MODELLED = ("blank", "blur", "seal", "inscription", "padding", "odd_colour")
TILE_SIZE = 256
CV_FOLDS = 5
THRESHOLD_GRID = np.round(np.arange(0.1, 0.951, 0.025), 3)
NEVER = 1.0  # a threshold no probability exceeds: the class's model does not reject
RECALL_CAP = 0.8
RECALL_GOAL = 0.72  # recall below this (the goal 0.70 and a margin) counts twice
# A tile of another drop class is a negative of this class's model, but one it rejects is rejected rightly:
# such tiles weigh this much in the loss (keep tiles and tiles of the class weigh 1).
OTHER_BAD_WEIGHT = 0.1  # sixth pass (0.15 in the fourth and fifth, 0.3 before)
# Classes whose rule always rejects too (``with_rule`` from the start of the threshold search; its cost counts in
# the budget): odd colour's rule measures casts *off* the aged-silk locus (mint, blue, violet), which the labels
# barely hold, so the stumps alone do not learn them (a generated mint cast scored P 0.002; sixth pass).
RULE_ALWAYS_ON = ("odd_colour",)
# The linear heads' L2 weight (on the mean loss): chosen on the train CV, ninth pass (bench/RESULTS.md).
LINEAR_L2 = 0.01


def cv_group(painting: str, salt: str = "cv") -> int:
    """The cross-validation group of a painting (by painting, as the frozen folds are); another ``salt`` draws
    another split (bench/cast_context.py --salts: how much a figure moves with the split)."""
    return int.from_bytes(hashlib.sha256(f"{salt}:{painting}".encode()).digest()[:8], "big") % CV_FOLDS


def text_detector() -> text_net.TextNet | None:
    """The bundled text detector, whose P(inscription) becomes the feature ``text_net``; None without its weights
    (the model then reads the hand-made features alone)."""
    return text_net.TextNet() if text_net.BUNDLED_WEIGHTS.is_file() else None


def trunk_extractor() -> trunk_features.TrunkFeatures | None:
    """The ImageNet trunk the linear heads read; None, after saying so, without the AlexNet weights (the model
    then has stumps only)."""
    try:
        return trunk_features.TrunkFeatures()
    except AlexNetWeightsMissing as error:
        print(f"{error}: training the stumps only, without linear heads")
        return None


def labelled_features(rows: Sequence[bench.LabelledTile], paintings_dir: Path,
                      text: text_net.TextNet | None = None,
                      trunk: trunk_features.TrunkFeatures | None = None) -> np.ndarray:
    """Features of each labelled tile (rows must be TILE_SIZE tiles), each painting decoded once. The first
    columns are the rule scores (``rule_<filter>``); with ``text``, its P (``text_net``) follows the hand-made
    features; with ``trunk``, its FEATURE_COUNT features come last."""
    width = len(FEATURE_NAMES) + (text is not None)
    out = np.zeros((len(rows), width + (trunk_features.FEATURE_COUNT if trunk is not None else 0)))
    for painting, indices in bench._by_painting(rows).items():
        rgb = decode_image(paintings_dir / painting)
        tiles = [np.ascontiguousarray(bench.crop_tile(rgb, rows[i], painting)) for i in indices]
        for i, tile in zip(indices, tiles):
            out[i, :len(FEATURE_NAMES)] = tile_features(tile, score_tile(tile))
            if text is not None:
                out[i, width - 1] = text.probabilities([tile])[0]
        if trunk is not None:
            out[indices, width:] = trunk.features(tiles)
    return out


def training_rows(rows: Sequence[bench.LabelledTile]) -> list[bench.LabelledTile]:
    return [r for r in rows if r.fold == "train" and not r.unsure and r.size == TILE_SIZE]


def label_matrix(rows: Sequence[bench.LabelledTile], classes: Sequence[str]) -> np.ndarray:
    return np.array([[name in r.labels for name in classes] for r in rows], np.float64)


def loss_weights(labels: np.ndarray, bad: np.ndarray) -> np.ndarray:
    """(n, classes) weights: OTHER_BAD_WEIGHT for a bad tile that is not of the class, 1 elsewhere."""
    return np.where((labels == 0) & bad[:, None], OTHER_BAD_WEIGHT, 1.0)


def out_of_fold(features: np.ndarray, labels: np.ndarray, groups: np.ndarray, bad: np.ndarray,
                unlabelled: tuple[np.ndarray, np.ndarray] | None = None
                ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Probabilities of each row from models fitted without its painting's group. ``unlabelled``: (features,
    groups) of more tiles (every grid tile of the paintings, bench/cast_context.py) scored by the same models;
    their probabilities are then returned as a second array."""
    probabilities = np.zeros(labels.shape)
    scored = None if unlabelled is None else np.zeros((len(unlabelled[0]), labels.shape[1]))
    weights = loss_weights(labels, bad)
    for group in range(CV_FOLDS):
        fit, held = groups != group, groups == group
        for c in range(labels.shape[1]):
            model = tile_model.fit_class(features[fit], labels[fit, c], weights=weights[fit, c])
            probabilities[held, c] = model.probability(features[held])
            if scored is not None:
                scored[unlabelled[1] == group, c] = model.probability(unlabelled[0][unlabelled[1] == group])
    return probabilities if scored is None else (probabilities, scored)


def standardiser(inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of each column (1 where a column is constant: it then reads as 0)."""
    std = inputs.std(axis=0)
    return inputs.mean(axis=0), np.where(std > 0, std, 1.0)


def linear_out_of_fold(inputs: np.ndarray, labels: np.ndarray, groups: np.ndarray, bad: np.ndarray,
                       l2: float = LINEAR_L2) -> np.ndarray:
    """Out-of-fold P of each class's linear head (standardised by the fitted groups' statistics)."""
    probabilities = np.zeros(labels.shape)
    weights = loss_weights(labels, bad)
    for group in range(CV_FOLDS):
        fit, held = groups != group, groups == group
        mean, std = standardiser(inputs[fit])
        for c in range(labels.shape[1]):
            coef, bias = tile_model.fit_linear((inputs[fit] - mean) / std, labels[fit, c], l2=l2,
                                               weights=weights[fit, c])
            head = tile_model.LinearHead(tuple(coef), bias, threshold=0.5)
            probabilities[held, c] = head.probability((inputs[held] - mean) / std)
    return probabilities


def choose_thresholds(probabilities: np.ndarray, labels: np.ndarray, bad: np.ndarray, target_good: float,
                      rule_fired: np.ndarray, other_fired: np.ndarray,
                      always_rule: Sequence[int] = ()) -> tuple[np.ndarray, np.ndarray]:
    """Per class, a threshold and whether the class's rule also rejects (``rule_fired``: per class), spending a
    budget of good tiles rejected (``target_good``) where it buys the most own-class recall: greedily, from
    "never fires", the move (one class to a lower threshold of THRESHOLD_GRID, or its rule on) with the largest
    gain per newly rejected good tile (free moves first) while within the budget. Gain: the sum over classes of
    recall capped at RECALL_CAP plus that capped at RECALL_GOAL (the goal is each filter's recall for its own
    class: recall short of it counts twice, past the cap it buys little), plus 0.3 x bad tiles rejected and
    0.05 x the mean recall. ``other_fired``: tiles some filter
    outside the stump model rejects anyway (the watermark rule where no CNN is bundled). ``always_rule``: class
    indices whose rule is on from the start (:data:`RULE_ALWAYS_ON`)."""
    n = labels.shape[1]
    positives = [labels[:, c] > 0 for c in range(n)]
    budget = target_good * int((~bad).sum())

    def state(th: np.ndarray, rule: np.ndarray) -> tuple[float, int]:
        fired = (probabilities > th) | (rule_fired & rule)
        rejected = fired.any(axis=1) | other_fired
        recalls = np.array([fired[positives[c], c].mean() if positives[c].any() else 0.0 for c in range(n)])
        gain = (np.minimum(recalls, RECALL_CAP).sum() + np.minimum(recalls, RECALL_GOAL).sum()
                + 0.3 * rejected[bad].mean() + 0.05 * recalls.mean())
        return float(gain), int(rejected[~bad].sum())

    thresholds, with_rule = np.full(n, NEVER), np.zeros(n, bool)
    with_rule[list(always_rule)] = True
    gain, good = state(thresholds, with_rule)
    while True:
        best = None
        for c, use_rule, value in _moves(thresholds, with_rule):
            trial_th, trial_rule = thresholds.copy(), with_rule.copy()
            trial_th[c], trial_rule[c] = value, use_rule
            trial_gain, trial_good = state(trial_th, trial_rule)
            if trial_good > budget or trial_gain <= gain + 1e-9:
                continue
            added = trial_good - good
            key = (added <= 0, (trial_gain - gain) / added if added > 0 else trial_gain - gain, -trial_good)
            if best is None or key > best[0]:
                best = (key, trial_th, trial_rule, trial_gain, trial_good)
        if best is None:
            return thresholds, with_rule
        _, thresholds, with_rule, gain, good = best


def _moves(thresholds: np.ndarray, with_rule: np.ndarray):
    """(class, rule on, threshold) for every move that only adds rejections."""
    for c in range(len(thresholds)):
        for use_rule in sorted({bool(with_rule[c]), True}):
            for value in THRESHOLD_GRID:
                if value < thresholds[c] or (value == thresholds[c] and use_rule != with_rule[c]):
                    yield c, use_rule, float(value)


def rule_decisions(features: np.ndarray, classes: Sequence[str],
                   outside: Sequence[str] = ("watermark",)) -> tuple[np.ndarray, np.ndarray]:
    """From the features' rule scores: which modelled classes' rules fire (n, classes), and whether a filter
    outside the stump model fires (the watermark rule, or nothing where the watermark CNN is bundled)."""
    limits = FilterThresholds().as_dict()
    column = {name: FEATURE_NAMES.index(f"rule_{name}") for name in limits}
    fired = np.stack([features[:, column[name]] > limits[name] for name in classes], axis=1)
    decided_elsewhere = [name for name in outside if not watermark_net.BUNDLED_WEIGHTS.is_file()]
    other = np.zeros(len(features), bool)
    for name in decided_elsewhere:
        other |= features[:, column[name]] > limits[name]
    return fired, other


def without_cnn_rules(features: np.ndarray, outside: Sequence[str] = ("watermark",)) -> np.ndarray:
    """The features with the scores of the rules the watermark CNN replaces set to 0 where the CNN is bundled:
    a constant column is never split on, so ingest may skip computing that rule
    (``TileModel.rules_to_skip``)."""
    if not watermark_net.BUNDLED_WEIGHTS.is_file():
        return features
    features = features.copy()
    for name in outside:
        features[:, FEATURE_NAMES.index(f"rule_{name}")] = 0.0
    return features


@dataclass
class TrainingData:
    """The sure train-fold tiles and what the models read: ``features`` (hand-made, with ``text_net`` when the
    detector is bundled; named ``names``) and ``deep`` (the trunk's, empty without it)."""

    rows: list[bench.LabelledTile]
    features: np.ndarray
    deep: np.ndarray
    names: tuple[str, ...]


def training_data(rows: Sequence[bench.LabelledTile], paintings_dir: Path, heads: bool = True) -> TrainingData:
    """Features of the sure train-fold tiles (~1 minute); ``heads=False`` or no AlexNet weights: no trunk."""
    train_rows = training_rows(rows)
    text = text_detector()
    trunk = trunk_extractor() if heads else None
    features = labelled_features(train_rows, paintings_dir, text, trunk)
    names = tile_model.WITH_TEXT if text is not None else FEATURE_NAMES
    return TrainingData(train_rows, features[:, :len(names)], features[:, len(names):], tuple(names))


def fit(data: TrainingData, target_good: float, classes: Sequence[str] = MODELLED, salt: str = "cv",
        heads: bool = True) -> tuple[tile_model.TileModel, np.ndarray]:
    """The model fitted on the train fold, and the out-of-fold probabilities (CV groups by ``salt``) behind its
    deciding thresholds: of the mean of stumps and heads where the data has trunk features and ``heads``, else
    of the stumps."""
    labels = label_matrix(data.rows, classes)
    bad = np.array([r.bad for r in data.rows])
    groups = np.array([cv_group(r.painting, salt) for r in data.rows])
    rule_fired, other_fired = rule_decisions(data.features, classes)
    features = without_cnn_rules(data.features)
    always = [classes.index(n) for n in RULE_ALWAYS_ON if n in classes]
    held_out = out_of_fold(features, labels, groups, bad)
    thresholds, with_rule = choose_thresholds(held_out, labels, bad, target_good, rule_fired, other_fired, always)
    weights = loss_weights(labels, bad)
    fitted = {name: tile_model.fit_class(features, labels[:, c], threshold=float(thresholds[c]),
                                         with_rule=bool(with_rule[c]), weights=weights[:, c])
              for c, name in enumerate(classes)}
    fitted_heads, inputs = {}, None
    if heads and data.deep.shape[1]:
        wide = np.concatenate([features, data.deep], axis=1)
        columns = np.flatnonzero(wide.std(axis=0) > 0)  # constant columns (a rule ingest skips) are not read
        held_out = 0.5 * (held_out + linear_out_of_fold(wide[:, columns], labels, groups, bad))
        thresholds, with_rule = choose_thresholds(held_out, labels, bad, target_good, rule_fired, other_fired,
                                                  always)
        mean, std = standardiser(wide[:, columns])
        inputs = tile_model.LinearInputs(trunk_features.NAME, tuple(int(j) for j in columns),
                                         tuple(float(v) for v in mean), tuple(float(v) for v in std))
        for c, name in enumerate(classes):
            coef, bias = tile_model.fit_linear(inputs.standardised(wide), labels[:, c], l2=LINEAR_L2,
                                               weights=weights[:, c])
            fitted_heads[name] = tile_model.LinearHead(tuple(float(v) for v in coef), bias, float(thresholds[c]),
                                                       bool(with_rule[c]))
    model = tile_model.TileModel(TILE_SIZE, fitted, data.names,
                                 trained_on=f"{len(data.rows)} sure train-fold tiles of "
                                 f"{bench.LABELS_CSV.relative_to(REPO_ROOT)}, target good rejected {target_good}",
                                 heads=fitted_heads, linear_inputs=inputs)
    return model, held_out


def train(rows: Sequence[bench.LabelledTile], paintings_dir: Path, target_good: float,
          classes: Sequence[str] = MODELLED) -> tuple[tile_model.TileModel, np.ndarray, list[bench.LabelledTile]]:
    """The model fitted on the train fold, the out-of-fold probabilities behind its deciding thresholds, and the
    tiles (:func:`training_data`, then :func:`fit`)."""
    data = training_data(rows, paintings_dir)
    model, held_out = fit(data, target_good, classes)
    return model, held_out, data.rows


def deciding(model: tile_model.TileModel, name: str) -> tile_model.ClassModel | tile_model.LinearHead:
    """Where a class's threshold and rule flag live for the probabilities :func:`train` returns: its head's when
    the model has heads, else its stumps'."""
    return model.heads.get(name, model.classes[name])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared", type=Path, default=REPO_ROOT.parent / "shared")
    parser.add_argument("--out", type=Path, default=tile_model.BUNDLED_MODEL)
    parser.add_argument("--target-good", type=float, default=0.12,
                        help="highest fraction of good train tiles the cross-validated thresholds may reject")
    args = parser.parse_args(argv)
    # One torch thread: the text detector's P (a feature) moves in the 8th digit with torch's thread count, and so
    # do the stumps' splits; at a fixed count the written file is byte-identical on every machine.
    torch.set_num_threads(1)
    paintings_dir = bench.training_paintings(args.shared)
    if paintings_dir is None:
        return 1
    model, _, train_rows = train(bench.read_labels(), paintings_dir, args.target_good)
    path = model.save(args.out)
    def listed(decisions) -> str:
        return ", ".join(f"{n} {m.threshold:.3f}{' (+rule)' if m.with_rule else ''}" for n, m in decisions.items())

    print(f"trained on {len(train_rows)} tiles; thresholds of the stumps alone: {listed(model.classes)}"
          + (f"; of stumps and heads: {listed(model.heads)}" if model.heads else "; no linear heads")
          + f"; wrote {path} ({path.stat().st_size} bytes, fingerprint {model.fingerprint()})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
