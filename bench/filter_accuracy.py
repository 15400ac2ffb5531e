"""Accuracy of the tile filters against hand labels (docs/FILTER_RULES.md is the labelling specification).

    .venv/bin/python bench/filter_accuracy.py [--shared DIR] [--fold test|train|all] [--sample all|random|scored]
        [--filters pipeline|rules] [--cv [--watermark-cv FILE]] [--cv-splits SALT ...] [--watermarks]

Reads ``bench/labels/tile_labels.csv`` (one row per labelled tile: ``folder, file, x, y, size, labels, unsure,
fold``; paths relative to ``<shared>/paintings``), decodes each painting as the pipeline does
(``lpd_pipeline.imaging.decode_image``), crops the tile and decides it as the pipeline does (``--filters
pipeline``, the default: the bundled learned filter, ``lpd_pipeline.curation.tile_model``, for the classes it
models and the rule filters at their default thresholds for the rest; ``--filters rules``: the rules alone), and
prints, on the chosen fold:

- per filter: precision and recall against its own class (a tile of class *c* counts as caught by filter *c*
  when that filter fires on it), with the counts behind them;
- overall: the fraction of bad tiles (any drop class) rejected by at least one filter, and the fraction of good
  (``keep``) tiles rejected;
- the confusion of which filter fired for which label (rows: label classes, columns: filters; a tile with two
  labels counts in both rows).

``--cv`` scores the train fold with out-of-fold models instead (``bench/train_tile_model.py``: 5 groups by
painting within the train fold): the figures a model fitted on the train fold earns on paintings it has not
seen, without touching the test fold; with ``--watermark-cv FILE`` (``bench/train_watermark_net.py --cv
--cv-out FILE``) the watermark CNN's decisions are its out-of-fold ones too, else the bundled CNN's (in-sample).
``--cv-splits cv cv2 cv3 cv4 cv5`` does it on several splits into 5 groups (the split alone moves a class's
recall by up to 0.3 on these few paintings), each by the stumps alone and by stumps with linear heads, and
prints one line each and the means.
``--watermarks`` adds generated watermarks (``lpd_pipeline.curation.synthetic_watermarks``) on the fold's sure
keep tiles: the watermark recall on them,
beside the real watermark tiles' and the watermark filter's firing on real keep tiles.

``--sample random`` keeps only the tiles drawn at random (one per web painting, random museum tiles), whose
class mix is the collection's; ``--sample scored`` only those pre-selected by a filter score or a colour cue
(``bench/labels/tile_selection.csv`` records how each tile was chosen). Figures on the whole set (``all``, the
default) are measured on a mix enriched in high-scoring tiles, so they flatter the filters' recall.

Tiles flagged ``unsure`` are left out of every figure; their count is shown. The test fold was frozen (by
painting, :func:`assign_fold`) before any filter was tuned against these labels: tune and fit on the train fold
only.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from lpd_pipeline.curation.filters import (  # noqa: E402
    FILTER_NAMES,
    MIN_TILE_SIDE,
    FilterThresholds,
    rejection_reasons,
    score_tile,
)
from lpd_pipeline.curation import filters, synthetic_watermarks, tile_model  # noqa: E402
from lpd_pipeline.curation.tile_features import tile_features  # noqa: E402
from lpd_pipeline.imaging import IMAGE_SUFFIXES, decode_image  # noqa: E402

LABELS_CSV = REPO_ROOT / "bench" / "labels" / "tile_labels.csv"
SELECTION_CSV = REPO_ROOT / "bench" / "labels" / "tile_selection.csv"
SELECTION_COLUMNS = ("folder", "file", "x", "y", "size", "selected_by")
# How a tile came to be labelled: drawn at random, or pre-selected by a score/cue (the label is still by eye).
RANDOM_SELECTIONS = ("web_random", "museum_random")
SCORED_SELECTIONS = ("seal_score", "red_fraction", "inscription_score", "blank_score", "flat_low_contrast",
                     "blur_score", "watermark_score", "padding_score", "colour_shift", "watermark_search",
                     "learned_score", "watermark_cnn",  # these two and the next two: bench/label_candidates.py
                     "text_net", "inscription_top",  # issue 12 sixth pass: highest text-detector / P(inscription)
                     "odd_colour_top")  # seventh pass: highest P(odd colour) (label_candidates.py --top)
COLUMNS = ("folder", "file", "x", "y", "size", "labels", "unsure", "fold")
KEEP = "keep"
# The drop classes: one per filter (same name).
DROP_CLASSES = FILTER_NAMES
CLASSES = (KEEP, *DROP_CLASSES)
FOLDS = ("train", "test")
FOLDERS = ("colored", "ink", "web/colored", "web/ink")
# The frozen test fold: a painting is in it when its seeded hash falls below this fraction.
FOLD_SEED = 4
TEST_FRACTION = 1 / 3


class LabelFileError(ValueError):
    """The label file is malformed; the message names the file, the line and the reason."""


@dataclass(frozen=True)
class LabelledTile:
    folder: str
    file: str
    x: int
    y: int
    size: int
    labels: tuple[str, ...]
    unsure: bool
    fold: str

    @property
    def painting(self) -> str:
        """The painting's path relative to ``<shared>/paintings`` (the unit of the folds)."""
        return f"{self.folder}/{self.file}"

    @property
    def bad(self) -> bool:
        return self.labels != (KEEP,)


def assign_fold(painting: str, seed: int = FOLD_SEED, test_fraction: float = TEST_FRACTION) -> str:
    """``test`` or ``train`` for a painting (``folder/file``), from a seeded hash of its path: every tile of one
    painting lands in the same fold, and adding labels never moves a painting."""
    digest = hashlib.sha256(f"{seed}:{painting}".encode()).digest()
    return "test" if int.from_bytes(digest[:8], "big") / 2**64 < test_fraction else "train"


def read_labels(path: Path = LABELS_CSV) -> list[LabelledTile]:
    """Parse and validate the label file: columns, the class vocabulary, ``keep`` alone, 0/1 flags, known
    folds and folders, sizes the filters accept. Raises :class:`LabelFileError` naming the line and the reason."""
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if tuple(reader.fieldnames or ()) != COLUMNS:
            raise LabelFileError(f"{path}: columns must be {', '.join(COLUMNS)}; got {reader.fieldnames}")
        rows = []
        for line, raw in enumerate(reader, start=2):
            rows.append(_parse_row(raw, f"{path}:{line}"))
    return rows


def _parse_row(raw: dict, where: str) -> LabelledTile:
    try:
        x, y, size = int(raw["x"]), int(raw["y"]), int(raw["size"])
    except (TypeError, ValueError):
        raise LabelFileError(f"{where}: x, y and size must be integers, got {raw['x']!r}, {raw['y']!r}, "
                             f"{raw['size']!r}") from None
    if x < 0 or y < 0 or size < MIN_TILE_SIDE:
        raise LabelFileError(f"{where}: need x, y >= 0 and size >= {MIN_TILE_SIDE}, got x={x} y={y} size={size}")
    labels = tuple(raw["labels"].split(";")) if raw["labels"] else ()
    unknown = [label for label in labels if label not in CLASSES]
    if not labels or unknown:
        raise LabelFileError(f"{where}: labels must be a ';' list from {CLASSES}, got {raw['labels']!r}")
    if len(set(labels)) != len(labels) or (KEEP in labels and len(labels) > 1):
        raise LabelFileError(f"{where}: 'keep' stands alone and no class repeats, got {raw['labels']!r}")
    if raw["unsure"] not in ("0", "1"):
        raise LabelFileError(f"{where}: unsure must be 0 or 1, got {raw['unsure']!r}")
    if raw["fold"] not in FOLDS:
        raise LabelFileError(f"{where}: fold must be one of {FOLDS}, got {raw['fold']!r}")
    if raw["folder"] not in FOLDERS or not raw["file"] or "/" in raw["file"] or raw["file"].startswith("."):
        raise LabelFileError(f"{where}: folder must be one of {FOLDERS} and file a plain name, got "
                             f"{raw['folder']!r}/{raw['file']!r}")
    return LabelledTile(raw["folder"], raw["file"], x, y, size, labels, raw["unsure"] == "1", raw["fold"])


def select(rows: Iterable[LabelledTile], fold: str) -> list[LabelledTile]:
    """The rows of one fold (``all``: every row)."""
    return [row for row in rows if fold == "all" or row.fold == fold]


def read_selection(path: Path = SELECTION_CSV) -> dict[tuple[str, int, int, int], str]:
    """``(painting, x, y, size) -> selected_by`` from the selection file, validated like the labels."""
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if tuple(reader.fieldnames or ()) != SELECTION_COLUMNS:
            raise LabelFileError(f"{path}: columns must be {', '.join(SELECTION_COLUMNS)}; got {reader.fieldnames}")
        selection = {}
        for line, raw in enumerate(reader, start=2):
            if raw["selected_by"] not in RANDOM_SELECTIONS + SCORED_SELECTIONS:
                raise LabelFileError(f"{path}:{line}: unknown selected_by {raw['selected_by']!r}")
            try:
                key = (f"{raw['folder']}/{raw['file']}", int(raw["x"]), int(raw["y"]), int(raw["size"]))
            except ValueError:
                raise LabelFileError(f"{path}:{line}: x, y and size must be integers") from None
            selection[key] = raw["selected_by"]
    return selection


def select_sample(rows: Iterable[LabelledTile], sample: str,
                  selection: dict[tuple[str, int, int, int], str]) -> list[LabelledTile]:
    """The rows drawn at random (``random``), pre-selected by a cue (``scored``) or all of them (``all``)."""
    if sample == "all":
        return list(rows)
    wanted = RANDOM_SELECTIONS if sample == "random" else SCORED_SELECTIONS
    return [row for row in rows if selection[(row.painting, row.x, row.y, row.size)] in wanted]


# --------------------------------------------------------------------------------------------------------------
# Scoring


@dataclass
class ScoredTile:
    tile: LabelledTile
    scores: dict[str, float]
    fired: tuple[str, ...]


def crop_tile(rgb: np.ndarray, row: LabelledTile, where: str) -> np.ndarray:
    """The labelled square of a decoded painting; an error naming the painting when it does not fit."""
    height, width = rgb.shape[:2]
    if row.x + row.size > width or row.y + row.size > height:
        raise LabelFileError(f"{where}: tile ({row.x}, {row.y}) size {row.size} lies outside the "
                             f"{width}x{height} painting")
    return rgb[row.y:row.y + row.size, row.x:row.x + row.size]


def decide(tile: np.ndarray, thresholds: FilterThresholds,
           model: tile_model.TileModel | None) -> tuple[dict[str, float], tuple[str, ...]]:
    """Scores and the filters that reject one tile, as the pipeline decides: the learned model's classes where
    a model is given and the tile has its size, the rules elsewhere."""
    images = filters._Tile(tile)
    scores = filters.scores_of(images)
    if model is None or tile.shape[0] != model.tile_size:
        return scores, tuple(rejection_reasons(scores, thresholds))
    probabilities = model.tile_probabilities(tile_features(tile, scores, images), [tile])[0]
    return scores, tuple(model.reasons(scores, probabilities, thresholds))


def score_labelled(rows: Sequence[LabelledTile], paintings_dir: Path,
                   thresholds: FilterThresholds | None = None,
                   model: tile_model.TileModel | None = None) -> list[ScoredTile]:
    """Score every labelled tile with the pipeline's filters (``model``: the learned filter, None = rules only).
    Each painting is decoded once, as ingest does."""
    thresholds = thresholds or FilterThresholds()
    scored: list[ScoredTile | None] = [None] * len(rows)
    for painting, indices in _by_painting(rows).items():
        path = paintings_dir / painting
        rgb = decode_image(path)
        for i in indices:
            scores, fired = decide(np.ascontiguousarray(crop_tile(rgb, rows[i], str(path))), thresholds, model)
            scored[i] = ScoredTile(rows[i], scores, fired)
    return [s for s in scored if s is not None]


def _by_painting(rows: Sequence[LabelledTile]) -> dict[str, list[int]]:
    by_painting: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        by_painting.setdefault(row.painting, []).append(i)
    return by_painting


GENERATED_PER_TILE = 2


def generated_seed(painting: str, x: int, y: int, k: int) -> int:
    """The seed of the ``k``-th generated watermark on the keep tile at (x, y) of a painting."""
    return int.from_bytes(hashlib.sha256(f"{painting}:{x}:{y}:{k}".encode()).digest()[:4], "big")


@dataclass
class WatermarkFigures:
    generated: int = 0
    generated_caught: int = 0  # the watermark filter fired
    generated_rejected: int = 0  # any filter fired
    by_kind: Counter = field(default_factory=Counter)
    caught_by_kind: Counter = field(default_factory=Counter)


def generated_watermarks(rows: Sequence[LabelledTile], paintings_dir: Path, thresholds: FilterThresholds,
                         model: tile_model.TileModel | None) -> WatermarkFigures:
    """Generated watermarks (``synthetic_watermarks``, seeds from the tile's position in the label file) on
    every sure ``keep`` tile of ``rows``: how many the watermark filter catches, and how many any filter
    rejects, per kind of mark."""
    figures = WatermarkFigures()
    keep = [r for r in rows if not r.unsure and not r.bad]
    for painting, indices in _by_painting(keep).items():
        rgb = decode_image(paintings_dir / painting)
        for i in indices:
            clean = np.ascontiguousarray(crop_tile(rgb, keep[i], painting))
            for k in range(GENERATED_PER_TILE):
                marked, info = synthetic_watermarks.add_watermark(clean, generated_seed(painting, keep[i].x,
                                                                                         keep[i].y, k))
                _, fired = decide(marked, thresholds, model)
                figures.generated += 1
                figures.by_kind[info["kind"]] += 1
                figures.generated_caught += "watermark" in fired
                figures.caught_by_kind[info["kind"]] += "watermark" in fired
                figures.generated_rejected += bool(fired)
    return figures


def format_watermarks(figures: WatermarkFigures, result: Accuracy) -> str:
    real = result.per_filter["watermark"]
    kinds = ", ".join(f"{kind} {figures.caught_by_kind[kind]}/{n}" for kind, n in sorted(figures.by_kind.items()))
    return "\n".join([
        f"generated watermarks on the fold's {figures.generated // GENERATED_PER_TILE} sure keep tiles "
        f"({GENERATED_PER_TILE} each): watermark recall {_fmt(_ratio(figures.generated_caught, figures.generated))} "
        f"({figures.generated_caught}/{figures.generated}; {kinds}); rejected by any filter "
        f"{_fmt(_ratio(figures.generated_rejected, figures.generated))}",
        f"real watermark tiles: recall {_fmt(real.recall)} ({real.true_positive}/{real.positives}); "
        f"watermark filter on real keep tiles: {result.confusion['keep']['watermark']}/{result.class_counts['keep']}",
    ])


def _ratio(part: int, whole: int) -> float:
    return part / whole if whole else float("nan")


# --------------------------------------------------------------------------------------------------------------
# Figures


def _fraction(part: int, whole: int) -> float:
    """``part / whole``; NaN (shown as "–") when there is nothing to divide by."""
    return part / whole if whole else float("nan")


@dataclass
class FilterFigures:
    name: str
    fired: int = 0  # tiles the filter rejects
    true_positive: int = 0  # of those, labelled with the filter's class
    positives: int = 0  # tiles labelled with the filter's class

    @property
    def precision(self) -> float:
        return _fraction(self.true_positive, self.fired)

    @property
    def recall(self) -> float:
        return _fraction(self.true_positive, self.positives)


@dataclass
class Accuracy:
    tiles: int
    unsure: int
    bad: int
    good: int
    bad_rejected: int
    good_rejected: int
    per_filter: dict[str, FilterFigures]
    # confusion[label][filter] = tiles with that label on which that filter fired; "none" = no filter fired.
    confusion: dict[str, Counter] = field(default_factory=dict)
    class_counts: Counter = field(default_factory=Counter)

    @property
    def bad_rejected_fraction(self) -> float:
        return _fraction(self.bad_rejected, self.bad)

    @property
    def good_rejected_fraction(self) -> float:
        return _fraction(self.good_rejected, self.good)


def accuracy(scored: Sequence[ScoredTile]) -> Accuracy:
    """Per-filter precision/recall against its class, overall rejection of bad and good tiles, and the
    label x fired-filter confusion, leaving out tiles labelled unsure."""
    sure = [s for s in scored if not s.tile.unsure]
    per_filter = {name: FilterFigures(name) for name in FILTER_NAMES}
    confusion = {label: Counter() for label in CLASSES}
    class_counts: Counter = Counter()
    for s in sure:
        for label in s.tile.labels:
            class_counts[label] += 1
            confusion[label].update(s.fired or ("none",))
        for name, figures in per_filter.items():
            has_class = name in s.tile.labels
            fired = name in s.fired
            figures.positives += has_class
            figures.fired += fired
            figures.true_positive += has_class and fired
    bad = [s for s in sure if s.tile.bad]
    good = [s for s in sure if not s.tile.bad]
    return Accuracy(
        tiles=len(sure), unsure=len(scored) - len(sure), bad=len(bad), good=len(good),
        bad_rejected=sum(bool(s.fired) for s in bad), good_rejected=sum(bool(s.fired) for s in good),
        per_filter=per_filter, confusion=confusion, class_counts=class_counts)


def _fmt(value: float) -> str:
    return "  n/a" if value != value else f"{value:5.2f}"


def format_report(result: Accuracy, fold: str) -> str:
    lines = [f"fold {fold}: {result.tiles} tiles scored ({result.unsure} unsure left out); "
             f"{result.bad} bad, {result.good} good", ""]
    lines.append(f"{'filter':<12} {'precision':>9} {'recall':>7} {'fired':>6} {'correct':>8} {'class n':>8}")
    for f in result.per_filter.values():
        lines.append(f"{f.name:<12} {_fmt(f.precision):>9} {_fmt(f.recall):>7} {f.fired:>6} {f.true_positive:>8} "
                     f"{f.positives:>8}")
    lines += ["",
              f"bad tiles rejected:  {_fmt(result.bad_rejected_fraction)} ({result.bad_rejected}/{result.bad})",
              f"good tiles rejected: {_fmt(result.good_rejected_fraction)} ({result.good_rejected}/{result.good})",
              "", "which filter fired (columns) for which label (rows); a tile counts once per label and filter:"]
    columns = (*FILTER_NAMES, "none")
    lines.append(f"{'label':<12} {'n':>4} " + " ".join(f"{c:>11}" for c in columns))
    for label in CLASSES:
        counts = result.confusion[label]
        lines.append(f"{label:<12} {result.class_counts[label]:>4} " + " ".join(f"{counts[c]:>11}" for c in columns))
    return "\n".join(lines)


def cross_validated(rows: Sequence[LabelledTile], paintings_dir: Path, target_good: float,
                    watermark_cv: dict[tuple[str, int, int, int], bool] | None = None, salt: str = "cv",
                    heads: bool = True, prepared: tuple | None = None) -> list[ScoredTile]:
    """The train fold scored by out-of-fold models (``bench/train_tile_model.py``: 5 groups by painting, drawn by
    ``salt``; the thresholds chosen on these same out-of-fold probabilities; ``heads``: stumps and linear heads,
    else stumps alone), and as the pipeline decides for the other classes (the watermark CNN, trained on these
    paintings, is in-sample here unless ``watermark_cv`` gives its out-of-fold decisions,
    :func:`watermark_cv_decisions`) and for tiles of another size. ``prepared``: :func:`prepare_cv`'s result, to
    score several splits on one computation of the features. What a model fitted on the train fold may be
    expected to do on paintings it has not seen."""
    import train_tile_model

    data, pipeline = prepared or prepare_cv(rows, paintings_dir)
    model, held_out = train_tile_model.fit(data, target_good, salt=salt, heads=heads)
    thresholds = FilterThresholds()
    classes = train_tile_model.MODELLED
    chosen = [train_tile_model.deciding(model, name).threshold for name in classes]
    with_rule = [train_tile_model.deciding(model, name).with_rule for name in classes]
    probability_of = {(r.painting, r.x, r.y, r.size): dict(zip(classes, p)) for r, p in zip(data.rows, held_out)}
    scored = []
    for s in pipeline:
        key = (s.tile.painting, s.tile.x, s.tile.y, s.tile.size)
        if key in probability_of:
            by_rule = set(rejection_reasons(s.scores, thresholds))
            fired = tuple(name for name in FILTER_NAMES
                          if (name in classes and ((with_rule[classes.index(name)] and name in by_rule)
                                                   or probability_of[key][name] > chosen[classes.index(name)]))
                          or (name == "watermark" and watermark_cv is not None and watermark_cv.get(key, False))
                          or (name not in classes and name in s.fired
                              and not (name == "watermark" and watermark_cv is not None and key in watermark_cv)))
            s = ScoredTile(s.tile, s.scores, fired)
        scored.append(s)
    return scored


def prepare_cv(rows: Sequence[LabelledTile], paintings_dir: Path) -> tuple:
    """What :func:`cross_validated` needs once for any split: the trainer's features of the train fold and the
    pipeline's decisions on its tiles (the bundled model's, for the watermark CNN and the rules)."""
    sys.path.insert(0, str(REPO_ROOT / "bench"))
    import train_tile_model

    bundled = tile_model.resolve_model("bundled", train_tile_model.TILE_SIZE)
    return (train_tile_model.training_data(rows, paintings_dir),
            score_labelled([r for r in rows if r.fold == "train"], paintings_dir, FilterThresholds(), bundled))


CV_CLASSES = ("blank", "blur", "seal", "inscription", "padding", "odd_colour")


def format_splits(results: dict[tuple[str, str], Accuracy]) -> str:
    """One line per (split, filter) of :func:`cross_validated` figures, and their means over the splits."""
    head = f"{'split':<6} {'filter':<16} " + " ".join(f"{c[:11]:>11}" for c in CV_CLASSES) + "  bad rej.  good rej."
    lines = [head]
    for (salt, name), result in results.items():
        lines.append(f"{salt:<6} {name:<16} " + " ".join(f"{result.per_filter[c].recall:>11.2f}" for c in CV_CLASSES)
                     + f"  {result.bad_rejected_fraction:>8.2f}  {result.good_rejected_fraction:>5.3f} "
                     f"({result.good_rejected}/{result.good})")
    for name in dict.fromkeys(n for _, n in results):
        rows = [r for (_, n), r in results.items() if n == name]
        recall = [np.mean([r.per_filter[c].recall for r in rows]) for c in CV_CLASSES]
        lowest = [min(r.per_filter[c].recall for r in rows) for c in CV_CLASSES]
        lines.append(f"{'mean':<6} {name:<16} " + " ".join(f"{v:>11.2f}" for v in recall)
                     + f"  {np.mean([r.bad_rejected_fraction for r in rows]):>8.2f}"
                     + f"  {np.mean([r.good_rejected_fraction for r in rows]):>5.3f}")
        lines.append(f"{'lowest':<6} {name:<16} " + " ".join(f"{v:>11.2f}" for v in lowest))
    return "\n".join(lines)


def watermark_cv_decisions(path: Path, false_positive: float) -> dict[tuple[str, int, int, int], bool]:
    """``(painting, x, y, size) -> fired`` for the labelled tiles of a ``bench/train_watermark_net.py --cv``
    file: the out-of-fold CNN's P(watermark) against its split's threshold at ``false_positive``."""
    import json

    result = json.loads(Path(path).read_text(encoding="utf-8"))
    if false_positive not in result["false_positive"]:
        raise SystemExit(f"{path}: no threshold at false positive {false_positive}; has {result['false_positive']}")
    i = result["false_positive"].index(false_positive)
    return {(s["painting"], s["x"], s["y"], s["size"]): s["p"] > split["thresholds"][i]
            for split in result["groups"] for s in split["scores"] if s["kind"] == "real"}


def train_fold_paintings(paintings_dir: Path) -> list[str]:
    """Every train-fold painting (``folder/file``) of :data:`FOLDERS` under ``paintings_dir``, folder by folder,
    by name within each: the one list the training and labelling tools walk (the test fold is never read)."""
    return [f"{folder}/{p.name}" for folder in FOLDERS for p in sorted((paintings_dir / folder).glob("*"))
            if p.suffix.lower() in IMAGE_SUFFIXES and assign_fold(f"{folder}/{p.name}") == "train"]


def training_paintings(shared: Path) -> Path | None:
    """``<shared>/paintings`` for a training command (the labelled tiles live there), or None, after saying so,
    when it is missing."""
    paintings_dir = shared / "paintings"
    if paintings_dir.is_dir():
        return paintings_dir
    print(f"{paintings_dir} not found: training needs the real paintings of ../shared (pass --shared DIR).")
    return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared", type=Path, default=REPO_ROOT.parent / "shared",
                        help="folder holding paintings/ (default ../shared)")
    parser.add_argument("--fold", choices=("test", "train", "all"), default="test")
    parser.add_argument("--sample", choices=("all", "random", "scored"), default="all",
                        help="all tiles, only those drawn at random, or only those pre-selected by a cue")
    parser.add_argument("--filters", choices=("pipeline", "rules"), default="pipeline",
                        help="pipeline: the bundled learned model where present (as ingest decides); rules: "
                             "the rule filters alone")
    parser.add_argument("--cv", action="store_true",
                        help="the train fold, scored by out-of-fold models (5-fold cross-validation by painting)")
    parser.add_argument("--cv-splits", nargs="+", metavar="SALT", default=None,
                        help="the train fold cross-validated on each of these splits into 5 groups by painting "
                             "(train_tile_model.cv_group's salt; the documented split is 'cv'), by the stumps "
                             "alone and by stumps and linear heads: one line each, then the means")
    parser.add_argument("--watermarks", action="store_true",
                        help="also measure the watermark filter on generated overlays on the fold's keep tiles")
    parser.add_argument("--target-good", type=float, default=0.12, help="for --cv: as bench/train_tile_model.py")
    parser.add_argument("--watermark-cv", type=Path, default=None,
                        help="for --cv: the out-of-fold watermark CNN (bench/train_watermark_net.py --cv --cv-out)")
    parser.add_argument("--watermark-fp", type=float, default=0.02,
                        help="for --watermark-cv: the false-positive rate of the threshold rule")
    parser.add_argument("--labels", type=Path, default=LABELS_CSV)
    parser.add_argument("--selection", type=Path, default=SELECTION_CSV)
    args = parser.parse_args(argv)
    paintings_dir = args.shared / "paintings"
    if not paintings_dir.is_dir():
        print(f"{paintings_dir} not found: the labelled tiles live in the real paintings of ../shared, "
              "nothing to measure here (pass --shared DIR).")
        return 0
    model = tile_model.resolve_model("bundled" if args.filters == "pipeline" else "none", 256)
    labels = read_labels(args.labels)
    watermark_cv = (watermark_cv_decisions(args.watermark_cv, args.watermark_fp) if args.watermark_cv
                    else None)
    if args.cv_splits:
        prepared = prepare_cv(labels, paintings_dir)
        results = {(salt, name): accuracy(cross_validated(labels, paintings_dir, args.target_good, watermark_cv,
                                                          salt, heads, prepared))
                   for salt in args.cv_splits for name, heads in (("stumps", False), ("stumps + heads", True))}
        print("train fold, cross-validated on each split (recall of each filter for its own class):")
        print(format_splits(results))
        return 0
    if args.cv:
        scored, name = cross_validated(labels, paintings_dir, args.target_good, watermark_cv), "train, cross-validated"
        args.fold = "train"
    else:
        scored, name = score_labelled(select(labels, args.fold), paintings_dir, model=model), args.fold
    if args.sample != "all":
        wanted = {id(r) for r in select_sample([s.tile for s in scored], args.sample, read_selection(args.selection))}
        scored = [s for s in scored if id(s.tile) in wanted]
        name = f"{name}, {args.sample} sample"
    filters_used = "rules only" if model is None else f"learned model {model.fingerprint()} + rules"
    result = accuracy(scored)
    print(f"filters: {filters_used}")
    print(format_report(result, name))
    if args.watermarks:
        figures = generated_watermarks([s.tile for s in scored], paintings_dir, FilterThresholds(), model)
        print("\n" + format_watermarks(figures, result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
