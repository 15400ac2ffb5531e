"""Agreement of the coloured/ink rule with the human labels of ../shared/paintings.

    .venv/bin/python bench/kind_agreement.py [--shared DIR] [--sweep] [--two-fold] [--list-errors]

Prints per-group counts and accuracy, the confusion matrix, and beside it the mean-HSV-saturation baseline
(with its threshold chosen *on this same data*, so the baseline figure is optimistic).
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from lpd_pipeline.curation.kind import KIND_COLORED, KIND_INK, KindRule, off_axis_chroma  # noqa: E402
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


def measure(paintings: Path, rule: KindRule) -> dict:
    """Scores for every labelled painting: rule fraction, sat baseline, plus fractions over a chroma grid."""
    rows = load_manifest(paintings)
    labels, fractions, saturations, files = [], [], [], []
    chroma_grid = np.array([4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 12.0])
    grid_fractions = []
    for row in rows:
        rgb = decode_image(paintings / row["file"])
        chroma = off_axis_chroma(rgb)
        labels.append(row["group"])
        files.append(row["file"])
        fractions.append(float((chroma > rule.chroma_threshold).mean()))
        grid_fractions.append([(chroma > c).mean() for c in chroma_grid])
        saturations.append(mean_hsv_saturation(rgb))
    return {"labels": labels, "files": files, "fractions": np.array(fractions),
            "saturations": np.array(saturations), "chroma_grid": chroma_grid,
            "grid_fractions": np.array(grid_fractions)}


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
    parser.add_argument("--list-errors", action="store_true", help="print the disagreeing files")
    parser.add_argument("--two-fold", action="store_true",
                        help="tune (chroma, fraction) on even rows, test on odd rows, and vice versa")
    args = parser.parse_args(argv)
    paintings = args.shared / "paintings"
    if not (paintings / "MANIFEST.tsv").is_file():
        print(f"no labelled paintings at {paintings}", file=sys.stderr)
        return 2

    rule = KindRule(args.chroma, args.fraction)
    started = time.perf_counter()
    data = measure(paintings, rule)
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
    if args.list_errors:
        print("\ndisagreements (label, predicted, colorfulness, file)")
        for label, guess, frac, name in zip(labels, predicted, data["fractions"], data["files"]):
            if label != guess:
                print(f"  {label:8s} {guess:8s} {frac:.4f} {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
