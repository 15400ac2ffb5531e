"""Agreement of the coloured/ink rule with the human labels of ../shared/paintings.

    .venv/bin/python bench/kind_agreement.py [--shared DIR] [--folder museum|web] [--sweep] [--two-fold] [--cv]
        [--list-errors]

Prints per-group counts and accuracy, the confusion matrix, and beside it the mean-HSV-saturation baseline
(with its threshold chosen *on this same data*, so the baseline figure is optimistic).

``--cv`` runs stratified 5-fold cross-validation repeated with 3 seeds and prints a comparison table of mean
held-out accuracy, coloured recall and ink recall for (a) the off-axis rule with its (chroma, fraction)
thresholds refitted on each training fold and (b) a candidate logistic regression over a dozen interpretable
per-image features (:func:`candidate_features`), plus that model's coefficients fitted on all the data. The
candidate was *not* adopted in ``kind.py`` (it did not clear the +3 points bar, see that module's docstring);
it lives here so the comparison can be rerun.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from scipy.optimize import minimize

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from lpd_pipeline.curation.kind import (  # noqa: E402
    KIND_COLORED,
    KIND_INK,
    KindRule,
    analysis_lab,
    off_axis_chroma,
    tint_direction,
)
from lpd_pipeline.imaging import decode_image  # noqa: E402

GROUPS = (KIND_COLORED, KIND_INK)


def default_shared() -> Path:
    return Path(os.environ.get("LPD_SHARED_DIR", REPO_ROOT.parent / "shared"))


def load_manifest(paintings: Path) -> list[dict]:
    with open(paintings / "MANIFEST.tsv", newline="") as handle:
        return [row for row in csv.DictReader(handle, delimiter="\t") if row["group"] in GROUPS]


def mean_hsv_saturation(rgb: np.ndarray) -> float:
    """The naive baseline: mean HSV saturation in [0, 1]."""
    return float(cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)[..., 1].mean() / 255.0)


def confusion(labels: list[str], predicted: list[str]) -> dict[tuple[str, str], int]:
    table = {(t, p): 0 for t in GROUPS for p in GROUPS}
    for truth, guess in zip(labels, predicted):
        table[(truth, guess)] += 1
    return table


def best_threshold(scores: np.ndarray, is_colored: np.ndarray) -> tuple[float, float]:
    """(threshold, accuracy) of the best 'colored when score > threshold' cut."""
    best = (0.0, -1.0)
    for cut in np.unique(scores):
        accuracy = float(((scores > cut) == is_colored).mean())
        if accuracy > best[1]:
            best = (float(cut), accuracy)
    return best


def print_report(name: str, labels: list[str], predicted: list[str]) -> float:
    table = confusion(labels, predicted)
    total = sum(table.values())
    correct = sum(table[(g, g)] for g in GROUPS)
    print(f"\n{name}")
    print(f"  {'group':8s} {'count':>5s} {'accuracy':>8s}   predicted: {GROUPS[0]:>7s} {GROUPS[1]:>5s}")
    for group in GROUPS:
        count = sum(table[(group, p)] for p in GROUPS)
        acc = table[(group, group)] / count if count else float("nan")
        as_colored, as_ink = table[(group, GROUPS[0])], table[(group, GROUPS[1])]
        print(f"  {group:8s} {count:5d} {acc:8.3f}   {'':10s} {as_colored:7d} {as_ink:5d}")
    agreement = correct / total
    print(f"  overall agreement: {correct}/{total} = {agreement:.3f}")
    return agreement


# Small offsets inside the logs of the candidate features: fractions are often exactly 0 on ink paintings.
_FRACTION_FLOOR = 1e-3
_CHROMA_FLOOR = 0.1
# Ground colour as a function of lightness: pixels are binned by L quantile, each bin has its own median a*b*.
_LIGHTNESS_BINS = 8


def candidate_features(rgb: np.ndarray) -> dict[str, float]:
    """A dozen interpretable per-image features for the candidate logistic model (all on the analysis grid).

    Fractions and chroma levels enter as logs (ink paintings pile up near 0, coloured ones spread over
    decades). Positive "green side" means rotated +90 degrees from the tint axis, which is the green/blue side
    for the usual yellow-brown silk.
    """
    lab = analysis_lab(rgb)
    lightness, ab = lab[..., 0], np.ascontiguousarray(lab[..., 1:])
    axis = tint_direction(ab)
    tint = float(np.hypot(np.median(ab[..., 0]), np.median(ab[..., 1])))
    if axis is None:
        axis = np.array([0.0, 1.0])  # neutral ground: any axis; off-axis then mixes in a little along-axis
    perpendicular = np.array([-axis[1], axis[0]], dtype=np.float32)
    signed = ab @ perpendicular
    off = np.abs(signed)

    # Spatial coherence: a wash is a large connected region, silk grain and JPEG speckle are isolated pixels.
    _, _, stats, _ = cv2.connectedComponentsWithStats((off > 4).astype(np.uint8), connectivity=8)
    areas = stats[1:, cv2.CC_STAT_AREA]
    coherent = float(areas[areas >= 0.002 * off.size].sum() / off.size)
    blurred_q95 = float(np.percentile(np.abs(cv2.blur(signed, (9, 9))), 95))

    strong = off > 6
    if strong.sum() > 20:  # circular spread of the hue angle of clearly off-axis pixels
        hue = np.arctan2(ab[..., 1][strong], ab[..., 0][strong])
        resultant = float(np.hypot(np.cos(hue).mean(), np.sin(hue).mean()))
        hue_spread = float(np.sqrt(-2.0 * np.log(max(resultant, 1e-6))))
    else:
        hue_spread = 0.0

    # Region colour: minor-axis spread of the 8x8 cell-mean a*b* (one hue line gives ~0).
    cells = cv2.resize(ab, (8, 8), interpolation=cv2.INTER_AREA).reshape(-1, 2)
    region_spread = float(np.sqrt(max(np.linalg.eigvalsh(np.cov(cells.T))[0], 0.0)))

    # Off-axis distance from the lightness-dependent ground colour (dark ink on yellow silk drifts to olive).
    edges = np.percentile(lightness, np.linspace(0, 100, _LIGHTNESS_BINS + 1))
    bins = np.clip(np.searchsorted(edges, lightness, side="right") - 1, 0, _LIGHTNESS_BINS - 1)
    bin_ground = np.array([np.median(ab[bins == b], axis=0) if (bins == b).any() else np.zeros(2)
                           for b in range(_LIGHTNESS_BINS)], dtype=np.float32)
    lightness_off = np.abs((ab - bin_ground[bins]) @ perpendicular)
    hue_drift = float(np.ptp(bin_ground @ perpendicular))

    def log_fraction(mask: np.ndarray) -> float:
        return float(np.log(mask.mean() + _FRACTION_FLOOR))

    def log_chroma(value: float) -> float:
        return float(np.log(value + _CHROMA_FLOOR))

    return {
        "log_off_q90": log_chroma(np.percentile(off, 90)),
        "log_off_q99": log_chroma(np.percentile(off, 99)),
        "log_frac_off4": log_fraction(off > 4),
        "log_frac_off8": log_fraction(off > 8),
        "log_coherent_off4": float(np.log(coherent + _FRACTION_FLOOR)),
        "log_blur9_off_q95": log_chroma(blurred_q95),
        "hue_spread": hue_spread,
        "log_tint": log_chroma(tint),
        "green_vs_red_side": float(np.log(((signed > 4).mean() + _FRACTION_FLOOR)
                                          / ((signed < -4).mean() + _FRACTION_FLOOR))),
        "log_region_spread": log_chroma(region_spread),
        "log_lightness_off_q95": log_chroma(np.percentile(lightness_off, 95)),
        "log_hue_drift": log_chroma(hue_drift),
    }


def measure(paintings: Path, rule: KindRule, with_candidate: bool = False) -> dict:
    """Scores for every labelled painting: rule fraction, sat baseline, plus fractions over a chroma grid
    (and the candidate model's features when ``with_candidate``)."""
    rows = load_manifest(paintings)
    labels, fractions, saturations, files = [], [], [], []
    chroma_grid = np.array([4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 12.0])
    grid_fractions, features = [], []
    for row in rows:
        rgb = decode_image(paintings / row["file"])
        chroma = off_axis_chroma(rgb)
        labels.append(row["group"])
        files.append(row["file"])
        fractions.append(float((chroma > rule.chroma_threshold).mean()))
        grid_fractions.append([(chroma > c).mean() for c in chroma_grid])
        saturations.append(mean_hsv_saturation(rgb))
        if with_candidate:
            features.append(candidate_features(rgb))
    data = {"labels": labels, "files": files, "fractions": np.array(fractions),
            "saturations": np.array(saturations), "chroma_grid": chroma_grid,
            "grid_fractions": np.array(grid_fractions)}
    if with_candidate:
        data["feature_names"] = list(features[0])
        data["features"] = np.array([[f[name] for name in data["feature_names"]] for f in features])
    return data


# ---- cross-validation -------------------------------------------------------------------------------------

CV_FOLDS = 5
CV_SEEDS = (0, 1, 2)
# L2 penalty on the standardised coefficients (sum of log-losses + L2 * |w|^2); fixed a priori, not tuned.
CANDIDATE_L2 = 3.0


def stratified_folds(is_colored: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """Fold index per row, each class shuffled and dealt round-robin so every fold keeps the class ratio."""
    rng = np.random.default_rng(seed)
    fold_of = np.empty(len(is_colored), dtype=int)
    for cls in (True, False):
        rows = np.flatnonzero(is_colored == cls)
        rng.shuffle(rows)
        fold_of[rows] = np.arange(len(rows)) % folds
    return fold_of


@dataclass
class LogisticModel:
    """Logistic regression on standardised features: logit = intercept + sum(weights * (x - mean) / scale)."""

    intercept: float
    weights: np.ndarray
    mean: np.ndarray
    scale: np.ndarray

    def logit(self, features: np.ndarray) -> np.ndarray:
        return self.intercept + ((features - self.mean) / self.scale) @ self.weights


def fit_logistic(features: np.ndarray, is_colored: np.ndarray, l2: float = CANDIDATE_L2) -> LogisticModel:
    """Penalised maximum likelihood by L-BFGS (the loss is convex, so the start point does not matter)."""
    mean, scale = features.mean(axis=0), features.std(axis=0) + 1e-9
    z = (features - mean) / scale
    target = is_colored.astype(float)

    def loss_and_gradient(params: np.ndarray) -> tuple[float, np.ndarray]:
        logit = params[0] + z @ params[1:]
        residual = 1.0 / (1.0 + np.exp(-logit)) - target
        loss = float(np.logaddexp(0.0, logit).sum() - target @ logit + l2 * params[1:] @ params[1:])
        return loss, np.concatenate([[residual.sum()], z.T @ residual + 2.0 * l2 * params[1:]])

    params = minimize(loss_and_gradient, np.zeros(z.shape[1] + 1), jac=True, method="L-BFGS-B").x
    return LogisticModel(float(params[0]), params[1:], mean, scale)


def fit_rule(grid_fractions: np.ndarray, chroma_grid: np.ndarray, is_colored: np.ndarray) -> tuple[int, float]:
    """(chroma grid index, fraction cut) with the best training accuracy: the current rule, refitted."""
    best = (-1.0, 0, 0.0)
    for ci in range(len(chroma_grid)):
        cut, accuracy = best_threshold(grid_fractions[:, ci], is_colored)
        if accuracy > best[0]:
            best = (accuracy, ci, cut)
    return best[1], best[2]


def cross_validate(predict_held_out, is_colored: np.ndarray) -> np.ndarray:
    """Mean over seeds of (accuracy, coloured recall, ink recall) of held-out predictions.

    ``predict_held_out(train_rows, test_rows)`` fits on the training rows only and returns booleans
    (coloured) for the test rows.
    """
    per_seed = []
    for seed in CV_SEEDS:
        fold_of = stratified_folds(is_colored, CV_FOLDS, seed)
        predicted = np.empty(len(is_colored), dtype=bool)
        for fold in range(CV_FOLDS):
            train, test = fold_of != fold, fold_of == fold
            predicted[test] = predict_held_out(train, test)
        per_seed.append(((predicted == is_colored).mean(), predicted[is_colored].mean(),
                         (~predicted[~is_colored]).mean()))
    return np.mean(per_seed, axis=0)


def print_cv_comparison(data: dict, is_colored: np.ndarray) -> None:
    grid, chroma_grid, features = data["grid_fractions"], data["chroma_grid"], data["features"]

    def rule_held_out(train, test):
        ci, cut = fit_rule(grid[train], chroma_grid, is_colored[train])
        return grid[test, ci] > cut

    def candidate_held_out(train, test):
        return fit_logistic(features[train], is_colored[train]).logit(features[test]) > 0.0

    print(f"\nstratified {CV_FOLDS}-fold CV x {len(CV_SEEDS)} seeds, held-out means (everything refitted per fold)")
    print(f"  {'method':44s} {'accuracy':>8s} {'colored':>8s} {'ink':>6s}")
    for name, predict in (("off-axis rule, (chroma, fraction) refitted", rule_held_out),
                          (f"logistic, {features.shape[1]} features, L2={CANDIDATE_L2:g}, p>0.5",
                           candidate_held_out)):
        accuracy, colored_recall, ink_recall = cross_validate(predict, is_colored)
        print(f"  {name:44s} {accuracy:8.3f} {colored_recall:8.3f} {ink_recall:6.3f}")
    model = fit_logistic(features, is_colored)
    in_sample = float(((model.logit(features) > 0) == is_colored).mean())
    print(f"\ncandidate fitted on all {len(is_colored)} paintings (in-sample accuracy {in_sample:.3f}); "
          "standardised coefficients:")
    print(f"  {'intercept':24s} {model.intercept:+.3f}")
    for name, weight in sorted(zip(data["feature_names"], model.weights), key=lambda item: -abs(item[1])):
        print(f"  {name:24s} {weight:+.3f}")


FRACTION_GRID = (0.005, 0.01, 0.015, 0.02, 0.025, 0.03, 0.04, 0.06)


def two_fold_check(grid_fractions: np.ndarray, chroma_grid: np.ndarray,
                   is_colored: np.ndarray) -> list[tuple[str, tuple[float, float], float]]:
    """Tune on even rows and test on odd rows, then the reverse: a guard against reading in-sample gains
    as real ones. Returns (fold name, (chroma, fraction) chosen, held-out accuracy) per fold."""
    rows = np.arange(len(is_colored))
    folds = []
    for name, tune_rows, test_rows in (("even->odd", rows[::2], rows[1::2]), ("odd->even", rows[1::2], rows[::2])):
        _, ci, fraction = max(
            (float(((grid_fractions[tune_rows, ci] > f) == is_colored[tune_rows]).mean()), ci, f)
            for ci in range(len(chroma_grid)) for f in FRACTION_GRID)
        held_out = float(((grid_fractions[test_rows, ci] > fraction) == is_colored[test_rows]).mean())
        folds.append((name, (float(chroma_grid[ci]), fraction), held_out))
    return folds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", type=Path, default=default_shared(), help="folder holding paintings/")
    parser.add_argument("--chroma", type=float, default=KindRule.chroma_threshold)
    parser.add_argument("--fraction", type=float, default=KindRule.fraction_threshold)
    parser.add_argument("--sweep", action="store_true", help="also print accuracy over a threshold grid")
    parser.add_argument("--cv", action="store_true",
                        help="stratified 5-fold x 3 seeds: refitted rule vs the candidate logistic model")
    parser.add_argument("--list-errors", action="store_true", help="print the disagreeing files")
    parser.add_argument("--folder", choices=("museum", "web"), default="museum",
                        help="museum: paintings/{colored,ink} (MANIFEST.tsv); web: paintings/web/{colored,ink} "
                             "(web/MANIFEST.tsv), the web-scraped paintings")
    parser.add_argument("--two-fold", action="store_true",
                        help="tune (chroma, fraction) on even rows, test on odd rows, and vice versa")
    args = parser.parse_args(argv)
    paintings = args.shared / "paintings" / ("web" if args.folder == "web" else "")
    if not (paintings / "MANIFEST.tsv").is_file():
        print(f"no labelled paintings at {paintings}", file=sys.stderr)
        return 2

    rule = KindRule(args.chroma, args.fraction)
    started = time.perf_counter()
    data = measure(paintings, rule, with_candidate=args.cv)
    elapsed = time.perf_counter() - started
    labels = data["labels"]
    is_colored = np.array([label == KIND_COLORED for label in labels])
    predicted = [KIND_COLORED if f > rule.fraction_threshold else KIND_INK for f in data["fractions"]]

    print(f"{len(labels)} paintings from {paintings} ({elapsed:.1f} s incl. decoding)")
    print(f"majority-class agreement (all '{KIND_INK}'): {float((~is_colored).mean()):.3f}")
    agreement = print_report(
        f"off-axis chroma rule (chroma > {rule.chroma_threshold:g}, fraction > {rule.fraction_threshold:g})",
        labels, predicted)
    cut, _ = best_threshold(data["saturations"], is_colored)
    baseline = [KIND_COLORED if s > cut else KIND_INK for s in data["saturations"]]
    baseline_agreement = print_report(f"baseline: mean HSV saturation > {cut:.3f} (best cut on this data)",
                                      labels, baseline)
    print(f"\nsummary: off-axis {agreement:.3f} vs mean-saturation baseline {baseline_agreement:.3f}")

    if args.sweep:
        print("\naccuracy over chroma (rows) x fraction (columns) thresholds")
        fraction_grid = FRACTION_GRID
        print("  chroma " + " ".join(f"{f:>6g}" for f in fraction_grid))
        for i, chroma in enumerate(data["chroma_grid"]):
            cells = [float(((data["grid_fractions"][:, i] > f) == is_colored).mean()) for f in fraction_grid]
            print(f"  {chroma:6g} " + " ".join(f"{c:6.3f}" for c in cells))
    if args.two_fold:
        print("\n2-fold check: grid-tuned on one half of the rows, accuracy on the other half")
        for name, tune, test in two_fold_check(data["grid_fractions"], data["chroma_grid"], is_colored):
            print(f"  {name}: tuned chroma > {tune[0]:g}, fraction > {tune[1]:g} -> held-out {test:.3f}")
    if args.cv:
        print_cv_comparison(data, is_colored)
    if args.list_errors:
        print("\ndisagreements (label, predicted, colorfulness, file)")
        for label, guess, frac, name in zip(labels, predicted, data["fractions"], data["files"]):
            if label != guess:
                print(f"  {label:8s} {guess:8s} {frac:.4f} {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
