"""Painting-level context for the odd-colour filter, measured on the train fold's cross-validation (issue 12,
eighth pass).

    .venv/bin/python bench/cast_context.py [--shared DIR] [--cache FILE] [--target-good 0.12]
        [--watermark-cv FILE]

A colour cast belongs to the reproduction, not to one tile, so a tile's odd-colour decision might borrow from
every grid tile of its painting. For every train-fold painting with a sure labelled 256-px tile this computes
the features of *all* its grid tiles (``tile_origins``, as ingest cuts them; ``train_tile_model.labelled_features``
on each; cached in ``--cache``), fits the stump models of ``bench/train_tile_model.py`` on the labelled tiles of
four CV groups and scores every grid tile of the fifth group's paintings (so each painting's aggregate is out of
fold too), and then, per form, replaces the labelled tiles' P(odd colour) (or the odd-colour rule's decision) by
a blend with an aggregate over the painting's grid tiles. Thresholds are chosen as the trainer chooses them
(``choose_thresholds`` at ``--target-good``, odd colour's rule always on). Printed per form: each modelled
class's recall for its own class, bad and good tiles rejected (with the watermark CNN: the bundled one,
in-sample, whose keep tiles are a lower bound of the out-of-fold CNN's, unless ``--watermark-cv``), and the
fewest keep tiles each class's probabilities must reject for recall 0.72 (``min keep``), and how well odd
colour's P ranks its tiles above keep tiles (``odd AUC``). ``--salts`` scores the per-tile recipe and a few
blends again on other random splits into 5 groups by painting: how much a figure moves with the split alone;
``--leave-out-mixed`` leaves out the keep tiles of paintings that also hold odd-colour tiles.

Rule of the forms: ``blend``: ``(1 - w) p + w A`` with ``A`` an aggregate of the painting's grid-tile P
(median, trimmed mean, mean, a quantile, the maximum), or of its logits; ``rule``: the odd-colour rule fires
where the blend of its score with the painting's median score exceeds the rule threshold; ``min``/``max`` of
``p`` and the median; ``features``: the painting's median ground colour appended to the odd-colour model's
features; ``painting``: a painting-level stump model (a painting is a cast when at least half its sure
labelled tiles are odd colour) blended with ``p``. Measurement only: ingest decides odd colour per tile, and
no form here was kept (bench/RESULTS.md, issue 12 eighth pass). The test fold is never read.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "bench"))

import filter_accuracy as bench  # noqa: E402
import train_tile_model as training  # noqa: E402
from train_text_net import auc as rank_auc  # noqa: E402  (P(odd colour ranks above keep), ties half)

from lpd_pipeline.curation import tile_model  # noqa: E402
from lpd_pipeline.curation.filters import FilterThresholds  # noqa: E402
from lpd_pipeline.curation.tile_features import FEATURE_NAMES  # noqa: E402
from lpd_pipeline.curation.tiling import tile_origins  # noqa: E402
from lpd_pipeline.files import atomic_path  # noqa: E402
from lpd_pipeline.imaging import decode_image, image_size  # noqa: E402

CLASSES = training.MODELLED
ODD = CLASSES.index("odd_colour")
RECALL_GOAL = 0.72
# The forms scored again on the other splits of --salts.
SPLIT_FORMS = ("per tile (the shipped recipe)", "blend max w=0.25", "blend max w=0.5", "blend median w=0.5",
               "blend trim0.2 w=0.5")
GROUND = ("paper_a", "paper_b", "paper_chroma", "paper_hue", "colour_median_a", "colour_median_b", "rule_odd_colour")


def grid_tiles(rows: Sequence[bench.LabelledTile], paintings_dir: Path) -> list[bench.LabelledTile]:
    """Every 256-px grid tile of the paintings of ``rows``, as rows (their labels are not used)."""
    grid = []
    for painting in sorted({r.painting for r in rows}):
        folder, file = painting.rsplit("/", 1)
        width, height = image_size(paintings_dir / painting)
        grid += [bench.LabelledTile(folder, file, x, y, training.TILE_SIZE, (bench.KEEP,), False, "train")
                 for x, y in tile_origins(height, width, training.TILE_SIZE, training.TILE_SIZE)]
    return grid


def cached_features(grid: Sequence[bench.LabelledTile], paintings_dir: Path, cache: Path) -> np.ndarray:
    """The grid tiles' features (with the text detector's P): read from ``cache`` when it holds these tiles."""
    keys = np.array([f"{t.painting}|{t.x}|{t.y}" for t in grid])
    if cache.is_file():
        stored = np.load(cache)
        if np.array_equal(stored["keys"], keys):
            return stored["features"]
    features = training.labelled_features(grid, paintings_dir, training.text_detector())
    with atomic_path(cache) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(handle, keys=keys, features=features)
    return features


def watermark_decisions(rows: Sequence[bench.LabelledTile], paintings_dir: Path) -> np.ndarray:
    """The bundled watermark CNN's decision on each labelled tile (in-sample: it trained on these keep tiles)."""
    network = tile_model.resolve_model("bundled", training.TILE_SIZE).watermark
    fired = np.zeros(len(rows), bool)
    for painting, indices in bench._by_painting(rows).items():
        rgb = decode_image(paintings_dir / painting)
        tiles = [np.ascontiguousarray(bench.crop_tile(rgb, rows[i], painting)) for i in indices]
        fired[indices] = network.probabilities(tiles) > network.threshold
    return fired


def painting_aggregate(values: np.ndarray, paintings: np.ndarray, how: str) -> np.ndarray:
    """Per tile, an aggregate of ``values`` over all tiles of its painting: ``median``, ``mean``, ``max``,
    ``trim<f>`` (mean without the lowest and highest fraction f) or ``q<f>`` (quantile f)."""
    out = np.empty(len(values))
    for painting in np.unique(paintings):
        members = paintings == painting
        v = np.sort(values[members])
        if how == "median":
            out[members] = np.median(v)
        elif how == "mean":
            out[members] = v.mean()
        elif how == "max":
            out[members] = v[-1]
        elif how.startswith("trim"):
            cut = int(len(v) * float(how[4:]))
            out[members] = v[cut:len(v) - cut].mean()
        elif how.startswith("q"):
            out[members] = np.quantile(v, float(how[1:]))
        else:
            raise ValueError(f"unknown aggregate {how!r}")
    return out


def fewest_keep(probability: np.ndarray, positives: np.ndarray, keep: np.ndarray, rule: np.ndarray | None,
                goal: float = RECALL_GOAL) -> int | None:
    """The fewest keep tiles a class must reject for recall >= goal over the trainer's threshold grid (with its
    rule's decisions where given); None when no threshold reaches the goal."""
    best = None
    for threshold in training.THRESHOLD_GRID:
        fired = probability > threshold if rule is None else (probability > threshold) | rule
        if fired[positives].mean() >= goal:
            best = min(best if best is not None else len(keep), int((fired & keep).sum()))
    return best


class Experiment:
    """The labelled train tiles, every grid tile of their paintings and their out-of-fold probabilities."""

    def __init__(self, rows: Sequence[bench.LabelledTile], grid: Sequence[bench.LabelledTile], features: np.ndarray,
                 watermark: np.ndarray, target_good: float, salt: str = "cv") -> None:
        where = {(t.painting, t.x, t.y): i for i, t in enumerate(grid)}
        self.rows, self.raw, self.watermark, self.target_good, self.salt = rows, features, watermark, target_good, salt
        self.index = np.array([where[(r.painting, r.x, r.y)] for r in rows])
        self.paintings = np.array([t.painting for t in grid])
        self.groups = np.array([training.cv_group(r.painting, salt) for r in rows])
        self.grid_groups = np.array([training.cv_group(t.painting, salt) for t in grid])
        self.labels = training.label_matrix(rows, CLASSES)
        self.bad = np.array([r.bad for r in rows])
        self.rule, self.other = training.rule_decisions(features[self.index], CLASSES)
        self.features = training.without_cnn_rules(features)
        self.p_grid = self.grid_probabilities(self.features)

    def grid_probabilities(self, features: np.ndarray) -> np.ndarray:
        """Out-of-fold P of every grid tile (models fitted on the labelled tiles of the other CV groups)."""
        return training.out_of_fold(features[self.index], self.labels, self.groups, self.bad,
                                    (features, self.grid_groups))[1]

    def score(self, p_odd: np.ndarray, rule_odd: np.ndarray | None = None) -> dict:
        """The CV figures with odd colour's grid-tile P (and rule decisions) replaced."""
        probabilities = self.p_grid[self.index].copy()
        probabilities[:, ODD] = p_odd[self.index]
        rule = self.rule.copy()
        if rule_odd is not None:
            rule[:, ODD] = rule_odd[self.index]
        thresholds, with_rule = training.choose_thresholds(
            probabilities, self.labels, self.bad, self.target_good, rule, self.other,
            [CLASSES.index(n) for n in training.RULE_ALWAYS_ON])
        fired = (probabilities > thresholds) | (rule & with_rule)
        rejected = fired.any(axis=1) | self.watermark
        keep = ~self.bad
        positives = [self.labels[:, c] > 0 for c in range(len(CLASSES))]
        return {
            "recall": [float(fired[positives[c], c].mean()) for c in range(len(CLASSES))],
            "bad": float(rejected[self.bad].mean()), "good": int(rejected[keep].sum()), "keep": int(keep.sum()),
            "good_by": {name: int(fired[keep, c].sum()) for c, name in enumerate(CLASSES)},
            "fewest": [fewest_keep(probabilities[:, c], positives[c], keep, rule[:, c] if c == ODD else None)
                       for c in range(len(CLASSES))],
            "auc": rank_auc(probabilities[positives[ODD], ODD], probabilities[keep, ODD]),
        }


def forms(x: Experiment) -> list[tuple[str, Callable[[], tuple[np.ndarray, np.ndarray | None]]]]:
    """(name, maker of odd colour's grid-tile P and rule decisions) for every form measured."""
    p = x.p_grid[:, ODD]
    score = x.raw[:, FEATURE_NAMES.index("rule_odd_colour")]
    limit = FilterThresholds().odd_colour
    logit = np.log(np.clip(p, 1e-6, 1 - 1e-6) / np.clip(1 - p, 1e-6, 1))
    out = [("per tile (the shipped recipe)", lambda: (p, None))]
    for how in ("median", "trim0.2", "mean", "q0.25", "q0.75", "max"):
        for w in (0.25, 0.5, 0.75, 1.0):
            out.append((f"blend {how} w={w}",
                        lambda how=how, w=w: ((1 - w) * p + w * painting_aggregate(p, x.paintings, how), None)))
    for w in (0.5, 1.0):
        out.append((f"blend logit median w={w}", lambda w=w: (
            1 / (1 + np.exp(-((1 - w) * logit + w * painting_aggregate(logit, x.paintings, "median")))), None)))
    for w in (0.5, 1.0):
        out.append((f"rule score blend median w={w}", lambda w=w: (
            p, (1 - w) * score + w * painting_aggregate(score, x.paintings, "median") > limit)))
    out.append(("min(p, median)", lambda: (np.minimum(p, painting_aggregate(p, x.paintings, "median")), None)))
    out.append(("max(p, median)", lambda: (np.maximum(p, painting_aggregate(p, x.paintings, "median")), None)))
    out.append(("painting median ground colour as features", lambda: (ground_features(x), None)))
    for w in (0.25, 0.5, 1.0):
        out.append((f"painting classifier blend w={w}", lambda w=w: ((1 - w) * p + w * painting_classifier(x), None)))
    return out


def ground_features(x: Experiment) -> np.ndarray:
    """Odd colour's out-of-fold grid P with the painting medians of :data:`GROUND` appended to its features."""
    columns = [FEATURE_NAMES.index(n) for n in GROUND]
    medians = np.stack([painting_aggregate(x.raw[:, j], x.paintings, "median") for j in columns], axis=1)
    widened = np.concatenate([x.features, medians], axis=1)
    return training.out_of_fold(widened[x.index], x.labels[:, ODD:ODD + 1], x.groups, x.bad,
                                (widened, x.grid_groups))[1][:, 0]


def painting_classifier(x: Experiment, rounds: int = 60) -> np.ndarray:
    """Out-of-fold P(cast) of each grid tile's painting: stumps over the painting medians of every feature; a
    painting is a cast when at least half its sure labelled tiles are odd colour."""
    names = np.unique(x.paintings)
    medians = np.stack([painting_aggregate(x.features[:, j], x.paintings, "median")
                        for j in range(x.features.shape[1])], axis=1)
    first = np.array([np.flatnonzero(x.paintings == n)[0] for n in names])
    cast = np.array([x.labels[x.paintings[x.index] == n, ODD].mean() >= 0.5 for n in names], np.float64)
    groups = np.array([training.cv_group(n, x.salt) for n in names])
    p_painting = np.zeros(len(names))
    for group in range(training.CV_FOLDS):
        model = tile_model.fit_class(medians[first][groups != group], cast[groups != group], rounds=rounds)
        p_painting[groups == group] = model.probability(medians[first][groups == group])
    return p_painting[np.searchsorted(names, x.paintings)]


def format_row(name: str, figures: dict) -> str:
    recalls = " ".join(f"{r:.2f}" for r in figures["recall"])
    fewest = ",".join("-" if f is None else str(f) for f in figures["fewest"])
    return (f"{name:<44} {recalls} | bad {figures['bad']:.2f} good {figures['good'] / figures['keep']:.3f} "
            f"({figures['good']}/{figures['keep']}; odd colour {figures['good_by']['odd_colour']}) | min keep "
            f"{fewest} | odd AUC {figures['auc']:.3f}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared", type=Path, default=REPO_ROOT.parent / "shared")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/cast_context_features.npz"),
                        help="features of every grid tile (computed once, ~2 minutes)")
    parser.add_argument("--target-good", type=float, default=0.12, help="as bench/train_tile_model.py")
    parser.add_argument("--watermark-cv", type=Path, default=None,
                        help="the out-of-fold watermark CNN (as bench/filter_accuracy.py --cv --watermark-cv)")
    parser.add_argument("--watermark-fp", type=float, default=0.02)
    parser.add_argument("--leave-out-mixed", action="store_true",
                        help="leave out the keep tiles of paintings that also have odd-colour tiles (labels that "
                             "disagree within a painting, which no painting-level decision can match)")
    parser.add_argument("--salts", default="",
                        help="comma-separated: also score the per-tile recipe and the chosen blends on other CV splits "
                             "(train_tile_model.cv_group's salt; the documented split is 'cv')")
    args = parser.parse_args(argv)
    paintings_dir = bench.training_paintings(args.shared)
    if paintings_dir is None:
        return 1
    rows = training.training_rows(bench.read_labels())
    grid = grid_tiles(rows, paintings_dir)
    if args.leave_out_mixed:
        cast = {r.painting for r in rows if "odd_colour" in r.labels}
        rows = [r for r in rows if r.bad or r.painting not in cast]
    if args.watermark_cv:
        decisions = bench.watermark_cv_decisions(args.watermark_cv, args.watermark_fp)
        watermark = np.array([decisions.get((r.painting, r.x, r.y, r.size), False) for r in rows])
    else:
        watermark = watermark_decisions(rows, paintings_dir)
    features = cached_features(grid, paintings_dir, args.cache)
    x = Experiment(rows, grid, features, watermark, args.target_good)
    print(f"{len(rows)} labelled tiles ({int((~x.bad).sum())} keep) of {len(set(x.paintings))} paintings, "
          f"{len(grid)} grid tiles; watermark CNN {'out of fold' if args.watermark_cv else 'bundled (in-sample)'} "
          f"fires on {int(watermark[~x.bad].sum())} keep tiles")
    print(f"{'form':<44} {' '.join(c[:4] for c in CLASSES)} | ... | min keep for recall {RECALL_GOAL} "
          f"({','.join(c[:4] for c in CLASSES)})")
    for name, make in forms(x):
        print(format_row(name, x.score(*make())), flush=True)
    for salt in filter(None, args.salts.split(",")):
        other = Experiment(rows, grid, features, watermark, args.target_good, salt)
        for name, make in forms(other):
            if name in SPLIT_FORMS:
                print(format_row(f"[{salt}] {name}", other.score(*make())), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
