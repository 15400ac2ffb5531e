"""Train the watermark CNN (lpd_pipeline/curation/watermark_net.pt) on generated overlays.

    .venv/bin/python bench/train_watermark_net.py [--shared DIR] [--out PATH] [--epochs 10]

Tiles: up to ``--per-painting`` grid tiles (256 px) of every painting of ``<shared>/paintings`` whose fold
(``filter_accuracy.assign_fold``, the frozen by-painting rule) is ``train``, except the paintings with a
labelled real watermark; plus every sure labelled train-fold tile that is not a watermark (inscriptions, seals,
padding: hard negatives). Each epoch every tile is shown once clean and once with a generated watermark
(``synthetic_watermarks.add_watermark``, a fresh seed per epoch), flipped at random. Adam, binary
cross-entropy, one thread, seeded and deterministic: the same inputs give the same weights. The test fold is
never read. Prints the training loss per epoch and, at the end, the threshold at which 2 % of the clean
training tiles would be called watermarks, and the recall on generated marks at it.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "bench"))

import filter_accuracy as bench  # noqa: E402

from lpd_pipeline.curation import synthetic_watermarks, watermark_net  # noqa: E402
from lpd_pipeline.curation.tiling import tile_origins  # noqa: E402
from lpd_pipeline.imaging import decode_image  # noqa: E402

TILE = 256


def training_tiles(paintings_dir: Path, per_painting: int, seed: int = 0) -> list[np.ndarray]:
    """Clean train-fold tiles: grid tiles of unlabelled-watermark paintings, plus the labelled hard negatives."""
    labels = bench.read_labels()
    watermarked = {r.painting for r in labels if "watermark" in r.labels}
    rng = np.random.default_rng(seed)
    tiles = []
    for folder in bench.FOLDERS:
        for path in sorted((paintings_dir / folder).glob("*")):
            painting = f"{folder}/{path.name}"
            if path.suffix.lower() not in (".jpg", ".jpeg", ".png") or painting in watermarked:
                continue
            if bench.assign_fold(painting) != "train":
                continue
            rgb = decode_image(path)
            origins = tile_origins(rgb.shape[0], rgb.shape[1], TILE, TILE)
            for k in rng.permutation(len(origins))[:per_painting]:
                x, y = origins[k]
                tiles.append(np.ascontiguousarray(rgb[y:y + TILE, x:x + TILE]))
    for painting, rows in _labelled_negatives(labels).items():
        rgb = decode_image(paintings_dir / painting)
        tiles += [np.ascontiguousarray(bench.crop_tile(rgb, r, painting)) for r in rows]
    return tiles


def _labelled_negatives(labels: Sequence[bench.LabelledTile]) -> dict[str, list[bench.LabelledTile]]:
    out: dict[str, list[bench.LabelledTile]] = {}
    for r in labels:
        if r.fold == "train" and not r.unsure and "watermark" not in r.labels and r.size == TILE:
            out.setdefault(r.painting, []).append(r)
    return out


def epoch_batches(tiles: list[np.ndarray], epoch: int, batch: int):
    """(input, target) batches of one epoch: each tile clean and with a fresh generated mark, shuffled."""
    rng = np.random.default_rng(1000 + epoch)
    order = rng.permutation(2 * len(tiles))
    for start in range(0, len(order), batch):
        images, targets = [], []
        for k in order[start:start + batch]:
            tile = tiles[k // 2]
            if k % 2:
                tile, _ = synthetic_watermarks.add_watermark(tile, int(rng.integers(2**31)))
            if rng.random() < 0.5:
                tile = tile[:, ::-1]
            images.append(np.ascontiguousarray(tile))
            targets.append(float(k % 2))
        yield watermark_net.network_input(images), torch.tensor(targets)


def train(tiles: list[np.ndarray], epochs: int, batch: int = 32):
    torch.manual_seed(0)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    network = watermark_net.build_network()
    optimiser = torch.optim.Adam(network.parameters(), lr=2e-3)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=epochs)
    for epoch in range(epochs):
        network.train()
        started, losses = time.perf_counter(), []
        for images, targets in epoch_batches(tiles, epoch, batch):
            loss = torch.nn.functional.binary_cross_entropy_with_logits(network(images), targets)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            losses.append(loss.item())
        schedule.step()
        print(f"epoch {epoch + 1}/{epochs}: loss {np.mean(losses):.4f} ({time.perf_counter() - started:.0f} s)",
              flush=True)
    return network.eval()


def calibrate(network, tiles: list[np.ndarray], false_positive: float = 0.02) -> tuple[float, float]:
    """The threshold calling ``false_positive`` of the clean tiles watermarks, and the generated recall at it."""
    with torch.inference_mode():
        clean = np.concatenate([torch.sigmoid(network(watermark_net.network_input(tiles[i:i + 64]))).numpy()
                                for i in range(0, len(tiles), 64)])
        marked = [synthetic_watermarks.add_watermark(t, 7_000_000 + i)[0] for i, t in enumerate(tiles)]
        generated = np.concatenate([torch.sigmoid(network(watermark_net.network_input(marked[i:i + 64]))).numpy()
                                    for i in range(0, len(marked), 64)])
    threshold = float(np.quantile(clean, 1 - false_positive))
    return threshold, float((generated > threshold).mean())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared", type=Path, default=REPO_ROOT.parent / "shared")
    parser.add_argument("--out", type=Path, default=watermark_net.BUNDLED_WEIGHTS)
    parser.add_argument("--epochs", type=int, default=10)  # the bundled weights: 10 epochs
    parser.add_argument("--per-painting", type=int, default=2)
    args = parser.parse_args(argv)
    paintings_dir = args.shared / "paintings"
    if not paintings_dir.is_dir():
        print(f"{paintings_dir} not found: training needs the real paintings of ../shared.")
        return 1
    tiles = training_tiles(paintings_dir, args.per_painting)
    print(f"{len(tiles)} clean train-fold tiles", flush=True)
    network = train(tiles, args.epochs)
    threshold, recall = calibrate(network, tiles)
    network.threshold.fill_(threshold)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(f".{args.out.name}.tmp")
    torch.save(network.state_dict(), tmp)
    tmp.replace(args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes); on the training tiles: threshold {threshold:.3f} "
          f"calls 2 % of clean tiles watermarks and catches {recall:.2f} of generated marks")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
