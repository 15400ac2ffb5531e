"""Train the watermark CNN (lpd_pipeline/curation/watermark_net.pt) on generated overlays, with hard negatives.

    .venv/bin/python bench/train_watermark_net.py [--shared DIR] [--out PATH] [--epochs 10]
        [--hard-negatives 300] [--false-positive 0.02] [--cv [--cv-out FILE]]

Tiles: up to ``--per-painting`` grid tiles (256 px) of every painting of ``<shared>/paintings`` whose fold
(``filter_accuracy.assign_fold``, the frozen by-painting rule) is ``train``, except the paintings with a
labelled real watermark; plus every sure labelled train-fold tile that is not a watermark (inscriptions, seals,
padding, and the keep tiles: hard negatives). Each epoch every tile is shown once clean and once with a
generated watermark (``synthetic_watermarks.add_watermark``, a fresh seed per epoch), flipped at random. Adam,
binary cross-entropy, one thread, seeded and deterministic: the same inputs give the same weights. The test fold
is never read.

Hard negatives (issue 12, fifth pass): a first network (``--mining-epochs``) scores *every* grid tile of those
paintings; the ``--hard-negatives`` clean tiles it rates most like a watermark (dense pine needles, rock
texture strokes, tree branches on brown silk: what the CNN of the fourth pass fired on) join the tiles, each
shown clean and marked like the others, and the final network is trained afresh on them. None of the CNN's top
tiles of the train fold is a real watermark (docs/FILTER_RULES.md: they were looked at).

Threshold: the P(watermark) that ``--false-positive`` of the clean training tiles exceed (in-sample). ``--cv``
instead cross-validates the recipe by painting (the 5 groups of ``train_tile_model.cv_group``, in
``--cv-splits`` splits): for each split, the whole recipe (mining included) without its paintings, then their
labelled tiles and generated marks on their keep tiles (the seeds of ``filter_accuracy --watermarks``) are
scored; it prints, per
false-positive rate of the threshold rule, the firing on real keep tiles, the recall on real and generated
watermarks, and writes the out-of-fold decisions (``--cv-out``, JSON) that ``filter_accuracy.py --cv
--watermark-cv FILE`` uses in place of the in-sample CNN.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Collection, Sequence
from pathlib import Path

import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "bench"))

import filter_accuracy as bench  # noqa: E402
from train_tile_model import CV_FOLDS, cv_group  # noqa: E402

from lpd_pipeline.curation import synthetic_watermarks, watermark_net  # noqa: E402
from lpd_pipeline.curation.tiling import tile_origins  # noqa: E402
from lpd_pipeline.files import write_text_atomic  # noqa: E402
from lpd_pipeline.imaging import decode_image, image_size  # noqa: E402

TILE = 256
FALSE_POSITIVE_GRID = (0.005, 0.01, 0.02, 0.03, 0.05)


def _eligible(paintings_dir: Path, labels: Sequence[bench.LabelledTile], held_out: Collection[int] = ()) -> list[str]:
    """Train-fold paintings (``folder/file``) without a labelled real watermark, outside the held-out group."""
    watermarked = {r.painting for r in labels if "watermark" in r.labels}
    return [p for p in bench.train_fold_paintings(paintings_dir)
            if p not in watermarked and cv_group(p) not in held_out]


def training_tiles(paintings_dir: Path, per_painting: int, labels: Sequence[bench.LabelledTile],
                   held_out: Collection[int] = (), seed: int = 0) -> list[np.ndarray]:
    """Clean train-fold tiles: grid tiles of unlabelled-watermark paintings, plus the labelled hard negatives
    (outside the held-out CV groups)."""
    rng = np.random.default_rng(seed)
    tiles = []
    for painting in _eligible(paintings_dir, labels):
        width, height = image_size(paintings_dir / painting)
        origins = tile_origins(height, width, TILE, TILE)
        picks = rng.permutation(len(origins))[:per_painting]  # drawn for every painting: same picks in CV
        if cv_group(painting) in held_out:
            continue
        rgb = decode_image(paintings_dir / painting)
        for k in picks:
            x, y = origins[k]
            tiles.append(np.ascontiguousarray(rgb[y:y + TILE, x:x + TILE]))
    for painting, rows in _labelled(labels, negatives=True, groups_out=held_out).items():
        rgb = decode_image(paintings_dir / painting)
        tiles += [np.ascontiguousarray(bench.crop_tile(rgb, r, painting)) for r in rows]
    return tiles


def _labelled(labels: Sequence[bench.LabelledTile], negatives: bool,
              groups_out: Collection[int] = (), groups_in: Collection[int] | None = None
              ) -> dict[str, list[bench.LabelledTile]]:
    """Sure 256-px train-fold labelled tiles by painting: the non-watermark ones (``negatives``) or all, of
    paintings outside ``groups_out`` (and inside ``groups_in`` when given)."""
    out: dict[str, list[bench.LabelledTile]] = {}
    for r in labels:
        if r.fold != "train" or r.unsure or r.size != TILE or (negatives and "watermark" in r.labels):
            continue
        group = cv_group(r.painting)
        if group in groups_out or (groups_in is not None and group not in groups_in):
            continue
        out.setdefault(r.painting, []).append(r)
    return out


def probabilities(network, tiles: Sequence[np.ndarray], batch: int = 64) -> np.ndarray:
    """P(watermark) of each tile by the (training-form) network, in eval mode."""
    network.eval()
    with torch.inference_mode():
        return np.concatenate([torch.sigmoid(network(watermark_net.network_input(list(tiles[i:i + batch]))))
                               .numpy() for i in range(0, len(tiles), batch)] or [np.zeros(0)])


def mine_hard_negatives(network, paintings_dir: Path, paintings: Sequence[str],
                        count: int) -> tuple[list[np.ndarray], list[tuple[str, int, int, float]]]:
    """The ``count`` grid tiles of ``paintings`` that ``network`` rates most like a watermark (ties: in painting
    and grid order), and their (painting, x, y, P(watermark))."""
    scored: list[tuple[float, int, str, int, int]] = []
    for n, painting in enumerate(paintings):
        rgb = decode_image(paintings_dir / painting)
        origins = tile_origins(rgb.shape[0], rgb.shape[1], TILE, TILE)
        tiles = [np.ascontiguousarray(rgb[y:y + TILE, x:x + TILE]) for x, y in origins]
        for (x, y), p in zip(origins, probabilities(network, tiles)):
            scored.append((-float(p), n, painting, x, y))
    scored.sort()
    chosen: dict[str, list[tuple[int, int]]] = {}
    for _, _, painting, x, y in scored[:count]:
        chosen.setdefault(painting, []).append((x, y))
    hard = []
    for painting, origins in chosen.items():
        rgb = decode_image(paintings_dir / painting)
        hard += [np.ascontiguousarray(rgb[y:y + TILE, x:x + TILE]) for x, y in origins]
    return hard, [(painting, x, y, -p) for p, _, painting, x, y in scored[:count]]


def epoch_batches(tiles: list[np.ndarray], epoch: int, batch: int, mark=synthetic_watermarks.add_watermark):
    """(input, target) batches of one epoch: each tile clean and with a fresh generated mark (``mark(tile,
    seed) -> (tile, info)``), shuffled."""
    rng = np.random.default_rng(1000 + epoch)
    order = rng.permutation(2 * len(tiles))
    for start in range(0, len(order), batch):
        images, targets = [], []
        for k in order[start:start + batch]:
            tile = tiles[k // 2]
            if k % 2:
                tile, _ = mark(tile, int(rng.integers(2**31)))
            if rng.random() < 0.5:
                tile = tile[:, ::-1]
            images.append(np.ascontiguousarray(tile))
            targets.append(float(k % 2))
        yield watermark_net.network_input(images), torch.tensor(targets)


def train(tiles: list[np.ndarray], epochs: int, batch: int = 32, mark=synthetic_watermarks.add_watermark,
          channels: tuple[int, ...] = watermark_net.CHANNELS):
    """The network of ``channels`` trained to tell ``mark``-ed tiles from clean ones (seeded, one thread)."""
    torch.manual_seed(0)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    network = watermark_net.build_network(channels)
    optimiser = torch.optim.Adam(network.parameters(), lr=2e-3)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=epochs)
    for epoch in range(epochs):
        network.train()
        started, losses = time.perf_counter(), []
        for images, targets in epoch_batches(tiles, epoch, batch, mark):
            loss = torch.nn.functional.binary_cross_entropy_with_logits(network(images), targets)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            losses.append(loss.item())
        schedule.step()
        print(f"epoch {epoch + 1}/{epochs}: loss {np.mean(losses):.4f} ({time.perf_counter() - started:.0f} s)",
              flush=True)
    return network.eval()


def train_recipe(paintings_dir: Path, labels: Sequence[bench.LabelledTile], args: argparse.Namespace,
                 held_out: Collection[int] = ()) -> tuple[torch.nn.Module, np.ndarray]:
    """The network of the recipe (mining round, then the final training), and P(watermark) of its clean
    training tiles (for the threshold). ``held_out``: CV groups whose paintings are left out entirely."""
    tiles = training_tiles(paintings_dir, args.per_painting, labels, held_out)
    print(f"{len(tiles)} clean train-fold tiles" + (f" (groups {sorted(held_out)} held out)" if held_out else ""),
          flush=True)
    if args.hard_negatives:
        first = train(tiles, args.mining_epochs)
        paintings = _eligible(paintings_dir, labels, held_out)
        hard, where = mine_hard_negatives(first, paintings_dir, paintings, args.hard_negatives)
        tiles = tiles + hard
        print(f"+ {args.hard_negatives} hard negatives mined from {len(paintings)} paintings", flush=True)
        if getattr(args, "mined_out", None) and not held_out:
            write_text_atomic(args.mined_out, "painting,x,y,p\n" + "".join(f"{p},{x},{y},{q:.4f}\n"
                                                                          for p, x, y, q in where))
    network = train(tiles, args.epochs)
    return network, probabilities(network, tiles)


def threshold_for(clean: np.ndarray, false_positive: float) -> float:
    """The P(watermark) that ``false_positive`` of the clean training tiles exceed."""
    return float(np.quantile(clean, 1 - false_positive))


def held_out_scores(network, paintings_dir: Path, labels: Sequence[bench.LabelledTile],
                    groups: Collection[int]) -> list[dict]:
    """P(watermark) of the held-out groups' labelled tiles, and of generated marks on their keep tiles."""
    out = []
    for painting, rows in _labelled(labels, negatives=False, groups_in=groups).items():
        rgb = decode_image(paintings_dir / painting)
        for r in rows:
            clean = np.ascontiguousarray(bench.crop_tile(rgb, r, painting))
            tiles, kinds = [clean], ["real"]
            if not r.bad:
                for k in range(bench.GENERATED_PER_TILE):
                    marked, info = synthetic_watermarks.add_watermark(clean, bench.generated_seed(painting, r.x,
                                                                                                   r.y, k))
                    tiles.append(marked)
                    kinds.append(info["kind"])
            for kind, p in zip(kinds, probabilities(network, tiles)):
                out.append({"painting": painting, "x": r.x, "y": r.y, "size": r.size, "labels": list(r.labels),
                            "kind": kind, "p": float(p)})
    return out


def cross_validate(paintings_dir: Path, labels: Sequence[bench.LabelledTile], args: argparse.Namespace) -> dict:
    """Out-of-fold P(watermark) per split (split s holds out the CV groups g with g % splits == s) and each
    split's thresholds (per false-positive rate)."""
    result = {"false_positive": list(FALSE_POSITIVE_GRID), "groups": []}
    for split in range(args.cv_splits):
        held_out = [g for g in range(CV_FOLDS) if g % args.cv_splits == split]
        network, clean = train_recipe(paintings_dir, labels, args, held_out=held_out)
        result["groups"].append({"groups": held_out,
                                 "thresholds": [threshold_for(clean, q) for q in FALSE_POSITIVE_GRID],
                                 "scores": held_out_scores(network, paintings_dir, labels, held_out)})
    return result


def cv_table(result: dict) -> str:
    """Per false-positive rate: keep tiles fired on, real watermark recall, generated recall per kind."""
    lines = ["| false positive (threshold rule) | keep tiles fired | bad non-watermark fired | real watermarks | "
             "generated | site | corner | edge |", "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for i, q in enumerate(result["false_positive"]):
        counts: dict[str, list[int]] = {}
        for g in result["groups"]:
            for s in g["scores"]:
                if s["kind"] != "real":
                    key = s["kind"]
                elif "watermark" in s["labels"]:
                    key = "real watermark"
                else:
                    key = "keep" if s["labels"] == ["keep"] else "bad"
                hit = counts.setdefault(key, [0, 0])
                hit[0] += s["p"] > g["thresholds"][i]
                hit[1] += 1
        generated = [sum(counts.get(k, [0, 0])[j] for k in synthetic_watermarks.KINDS) for j in (0, 1)]

        def cell(c):
            return f"{c[0]}/{c[1]}" if c[1] else "–"
        lines.append(f"| {q} | {cell(counts.get('keep', [0, 0]))} | {cell(counts.get('bad', [0, 0]))} | "
                     f"{cell(counts.get('real watermark', [0, 0]))} | {generated[0] / max(generated[1], 1):.2f} "
                     f"({cell(generated)}) | " + " | ".join(cell(counts.get(k, [0, 0]))
                                                           for k in synthetic_watermarks.KINDS) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared", type=Path, default=REPO_ROOT.parent / "shared")
    parser.add_argument("--out", type=Path, default=watermark_net.BUNDLED_WEIGHTS)
    parser.add_argument("--epochs", type=int, default=10)  # the bundled weights: 10 epochs
    parser.add_argument("--per-painting", type=int, default=2)
    parser.add_argument("--hard-negatives", type=int, default=300, help="mined hard negatives (0: no mining)")
    parser.add_argument("--mining-epochs", type=int, default=10, help="epochs of the network that mines them")
    parser.add_argument("--false-positive", type=float, default=0.02,
                        help="threshold: this fraction of the clean training tiles are called watermarks")
    parser.add_argument("--mined-out", type=Path, default=None,
                        help="also write the mined hard negatives (painting, x, y, P) as CSV, to look at them")
    parser.add_argument("--cv", action="store_true", help="cross-validate the recipe by painting; write no weights")
    parser.add_argument("--cv-splits", type=int, default=2, choices=range(2, CV_FOLDS + 1),
                        help="with --cv: splits of the 5 CV groups (2: groups 0,2,4 | 1,3; cheaper than 5)")
    parser.add_argument("--cv-out", type=Path, default=None, help="with --cv: out-of-fold decisions (JSON)")
    args = parser.parse_args(argv)
    paintings_dir = bench.training_paintings(args.shared)
    if paintings_dir is None:
        return 1
    labels = bench.read_labels()
    if args.cv:
        result = cross_validate(paintings_dir, labels, args)
        print(cv_table(result))
        if args.cv_out:
            write_text_atomic(args.cv_out, json.dumps(result) + "\n")
        return 0
    network, clean = train_recipe(paintings_dir, labels, args)
    threshold = threshold_for(clean, args.false_positive)
    network.threshold.fill_(threshold)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(f".{args.out.name}.tmp")
    torch.save(network.state_dict(), tmp)
    tmp.replace(args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes); threshold {threshold:.3f} calls "
          f"{args.false_positive:.1%} of the clean training tiles watermarks")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
