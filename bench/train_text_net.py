"""Train the text detector (lpd_pipeline/curation/text_net.pt) on generated inscriptions over train-fold tiles.

    .venv/bin/python bench/train_text_net.py [--shared DIR] [--out PATH] [--epochs 10]
    .venv/bin/python bench/train_text_net.py --select-tiles   # rewrite bench/labels/text_net_tiles.csv

Tiles: the clean grid tiles (256 px) listed in ``bench/labels/text_net_tiles.csv`` (painting, x, y). Each epoch
every tile is shown once clean and once with a generated inscription
(``lpd_pipeline.curation.synthetic_inscriptions``, Kai font; a fresh seed per epoch), flipped at random: the
watermark CNN's recipe (``train_watermark_net.train``: Adam, binary cross-entropy, one thread, seeded and
deterministic), with the narrower network of ``text_net.CHANNELS``. Threshold: the P that 2 % of the clean
training tiles exceed. Needs ``fonts-arphic-ukai``.

The tile list (``--select-tiles``; issue 12 sixth pass, drawn after that pass's labels were added and before the
stumps were refitted, so with the fifth pass's model; rerun now it would use the bundled model): up to
``--per-painting`` grid tiles drawn at random (seeded by the painting's name) from every train-fold painting
(``filter_accuracy.assign_fold``), never a labelled tile (the network's score on every labelled tile is then
out of sample, which keeps the stumps' cross-validation honest), and none that the learned filter bundled
*when the list was made* (the fifth pass's, without this network) calls inscription: a clean tile showing real
calligraphy would teach the network that real text is no text. The list, not the model, is the definition of
the training set, so retraining after the stumps are refitted gives the same weights. The test fold is never
read.

Printed after training: the network's P on the train fold's labelled tiles (never trained on) — per class, the
share above the threshold, and the AUC of inscription against keep tiles.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "bench"))

import filter_accuracy as bench  # noqa: E402
import train_watermark_net as recipe  # noqa: E402

from lpd_pipeline.curation import synthetic_inscriptions, text_net, tile_model  # noqa: E402
from lpd_pipeline.curation.filters import FilterThresholds  # noqa: E402
from lpd_pipeline.curation.tiling import tile_origins  # noqa: E402
from lpd_pipeline.files import write_text_atomic  # noqa: E402
from lpd_pipeline.imaging import decode_image  # noqa: E402

TILE = 256
TILES_CSV = REPO_ROOT / "bench" / "labels" / "text_net_tiles.csv"
FALSE_POSITIVE = 0.02


def _painting_rng(painting: str) -> np.random.Generator:
    return np.random.default_rng(int.from_bytes(hashlib.sha256(f"text:{painting}".encode()).digest()[:8], "big"))


def select_tiles(paintings_dir: Path, labels: Sequence[bench.LabelledTile], per_painting: int,
                 model: tile_model.TileModel | None) -> list[tuple[str, int, int]]:
    """Up to ``per_painting`` random unlabelled grid tiles per train painting, without those ``model`` (or the
    rules) call inscription."""
    labelled = {(r.painting, r.x, r.y) for r in labels}
    chosen = []
    for painting in bench.train_fold_paintings(paintings_dir):
        rgb = decode_image(paintings_dir / painting)
        origins = [o for o in tile_origins(rgb.shape[0], rgb.shape[1], TILE, TILE)
                   if (painting, *o) not in labelled]
        for k in _painting_rng(painting).permutation(len(origins))[:per_painting]:
            x, y = origins[k]
            tile = np.ascontiguousarray(rgb[y:y + TILE, x:x + TILE])
            if "inscription" not in bench.decide(tile, FilterThresholds(), model)[1]:
                chosen.append((painting, int(x), int(y)))
    return chosen


def read_tiles(paintings_dir: Path, path: Path = TILES_CSV) -> list[np.ndarray]:
    """The listed tiles, each painting decoded once; an error naming the file when a row does not fit."""
    with open(path, newline="", encoding="utf-8") as handle:
        rows = [(r["painting"], int(r["x"]), int(r["y"])) for r in csv.DictReader(handle)]
    tiles, by_painting = [], {}
    for painting, x, y in rows:
        by_painting.setdefault(painting, []).append((x, y))
    for painting, origins in by_painting.items():
        rgb = decode_image(paintings_dir / painting)
        for x, y in origins:
            if x + TILE > rgb.shape[1] or y + TILE > rgb.shape[0]:
                raise ValueError(f"{path}: tile ({x}, {y}) lies outside {painting} ({rgb.shape[1]}x{rgb.shape[0]})")
            tiles.append(np.ascontiguousarray(rgb[y:y + TILE, x:x + TILE]))
    return tiles


def auc(positive: np.ndarray, negative: np.ndarray) -> float:
    """P(a positive scores above a negative), ties half."""
    if not len(positive) or not len(negative):
        return float("nan")
    greater = (positive[:, None] > negative[None, :]).mean()
    return float(greater + 0.5 * (positive[:, None] == negative[None, :]).mean())


def labelled_report(network, threshold: float, paintings_dir: Path, labels: Sequence[bench.LabelledTile]) -> str:
    """Per class of the train fold's sure 256-px labelled tiles: how many the network calls text, and the AUC
    of inscription against keep."""
    rows = [r for r in labels if r.fold == "train" and not r.unsure and r.size == TILE]
    scores = np.zeros(len(rows))
    for painting, indices in bench._by_painting(rows).items():
        rgb = decode_image(paintings_dir / painting)
        tiles = [np.ascontiguousarray(bench.crop_tile(rgb, rows[i], painting)) for i in indices]
        scores[indices] = recipe.probabilities(network, tiles)
    lines = []
    for name in ("keep", *(n for n in bench.FILTER_NAMES if n != "watermark")):
        mine = np.array([name in r.labels for r in rows])
        lines.append(f"{name}: {int((scores[mine] > threshold).sum())}/{int(mine.sum())} above the threshold")
    keep = np.array([tuple(r.labels) == ("keep",) for r in rows])
    inscription = np.array(["inscription" in r.labels for r in rows])
    lines.append(f"AUC inscription vs keep: {auc(scores[inscription], scores[keep]):.3f}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared", type=Path, default=REPO_ROOT.parent / "shared")
    parser.add_argument("--out", type=Path, default=text_net.BUNDLED_WEIGHTS)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--tiles", type=Path, default=TILES_CSV)
    parser.add_argument("--select-tiles", action="store_true", help="write the tile list (--tiles) and stop")
    parser.add_argument("--per-painting", type=int, default=3)
    args = parser.parse_args(argv)
    paintings_dir = bench.training_paintings(args.shared)
    if paintings_dir is None:
        return 1
    labels = bench.read_labels()
    if args.select_tiles:
        chosen = select_tiles(paintings_dir, labels, args.per_painting, tile_model.resolve_model("bundled", TILE))
        write_text_atomic(args.tiles, "painting,x,y\n" + "".join(f"{p},{x},{y}\n" for p, x, y in chosen))
        print(f"wrote {args.tiles}: {len(chosen)} tiles")
        return 0
    if synthetic_inscriptions.font_path() is None:
        print("the Kai font is missing: apt-get install -y fonts-arphic-ukai")
        return 1
    tiles = read_tiles(paintings_dir, args.tiles)
    print(f"{len(tiles)} clean train-fold tiles", flush=True)
    network = recipe.train(tiles, args.epochs, mark=synthetic_inscriptions.add_inscription,
                           channels=text_net.CHANNELS)
    threshold = recipe.threshold_for(recipe.probabilities(network, tiles), FALSE_POSITIVE)
    network.threshold.fill_(threshold)
    tmp = args.out.with_name(f".{args.out.name}.tmp")
    torch.save(network.state_dict(), tmp)
    tmp.replace(args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes); threshold {threshold:.3f}")
    print(labelled_report(network, threshold, paintings_dir, labels))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
