"""Checkpoint evaluation: seconds per checkpoint vs the floor, and eval vs pix2pix inference mode.

    python bench/evaluate.py speed [--n-color 100 --n-ink 100 --size 256 --backbone unet256 --ngf 64
                                    --batch-size 16 --bootstrap 200 --device cpu --repeats 1]
    python bench/evaluate.py modes --storage STORAGE --variant unet256 [--bootstrap 200]

``speed``: one checkpoint evaluation (lpd_pipeline.evaluation.evaluate_checkpoints, exactly as the asset runs it)
on ``n-color`` test_color + ``n-ink`` test_ink synthetic tiles with the paper's generator (untrained weights:
time does not depend on them), split into generation / feature extraction / metrics, beside the floor measured in
the same run: only the forward passes an evaluation cannot avoid (the generator on the test tiles in batches, the
Inception network on the generated tiles, LPIPS on the pairs). The real tiles' features are computed once per
test set (cached) and reported apart. Goal: total <= 1.2x floor. Evaluation and floor alternate per repeat.

``modes``: every checkpoint of a trained run scored in "eval" mode (running BatchNorm statistics, no dropout) and
"pix2pix" mode (the reference test script: batch statistics of each tile, dropout on, fixed seed), on the
storage's test tiles, with the real metric networks: the figures behind DEFAULT_INFERENCE_MODE.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lpd_pipeline import imaging  # noqa: E402
from lpd_pipeline.evaluation import store  # noqa: E402
from lpd_pipeline.evaluation.evaluate import (  # noqa: E402
    default_models,
    evaluate_checkpoints,
    real_statistics,
    score_generated,
)
from lpd_pipeline.evaluation.generation import generate, load_for_evaluation  # noqa: E402
from lpd_pipeline.evaluation.settings import EvaluationSettings  # noqa: E402
from lpd_pipeline.evaluation.testsets import load_test_set  # noqa: E402
from lpd_pipeline.models.colorspace import encode_batch  # noqa: E402
from lpd_pipeline.models.options import variant_key  # noqa: E402
from lpd_pipeline.settings import StorageLayout  # noqa: E402
from lpd_pipeline.models.build import build_model_generator  # noqa: E402
from lpd_pipeline.training.checkpoints import export_generator, read_checkpoint_table  # noqa: E402
from lpd_pipeline.training.config import TrainConfig  # noqa: E402
from lpd_pipeline.training.data import data_fingerprint, read_split_tiles  # noqa: E402

BENCH_SETTINGS = ("device", "batch_size", "bootstrap")  # the EvaluationSettings fields this bench takes


def _landscape_like(rng: np.random.Generator, size: int) -> np.ndarray:
    """A smooth colour tile with some fine texture (coarse grid upsampled + noise)."""
    import cv2

    coarse = rng.uniform(0, 255, size=(6, 6, 3)).astype(np.float32)
    tile = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)
    tile += rng.normal(0, 8, size=tile.shape).astype(np.float32)
    return np.clip(tile, 0, 255).astype(np.uint8)


def _synthetic_storage(root: Path, n_color: int, n_ink: int, size: int) -> None:
    rng = np.random.default_rng(0)
    rows = []
    for split, count in (("train", 4), ("test_color", n_color), ("test_ink", n_ink)):
        for i in range(count):
            color = _landscape_like(rng, size)
            if split == "test_ink":
                color = np.repeat(imaging.luma_bt601(color)[:, :, None], 3, axis=2)
            painting = f"{split}{i // 4:03d}"
            tile_id = f"{painting}_{(i % 4) * size}_0_{size}"
            rel = f"dataset/tiles/{painting}/{(i % 4) * size}_0_{size}"
            imaging.save_image(root / f"{rel}_color.png", color)
            imaging.save_image(root / f"{rel}_gray.png", imaging.luma_bt601(color))
            rows.append({"tile_id": tile_id, "painting_id": painting, "split": split, "x": (i % 4) * size, "y": 0,
                         "size": size, "color_path": f"{rel}_color.png", "gray_path": f"{rel}_gray.png"})
    pd.DataFrame(rows).to_parquet(root / "dataset" / "tiles.parquet", index=False)


def _checkpoint(layout: StorageLayout, backbone: str, ngf: int, size: int) -> Path:
    """The paper's generator (initialised, untrained) as an lpd generator file trained on the train split."""
    config = TrainConfig(backbone=backbone, ngf=ngf, tile_size=size, device="cpu")
    net = build_model_generator(config)
    train = read_split_tiles(layout.dataset_dir / "tiles.parquet", "train")
    payload = {"generator": net.state_dict(), "config": config.to_dict(), "epoch": 1,
               "data_fingerprint": data_fingerprint(train, layout.root)}
    return export_generator(payload, layout.training_dir(backbone) / "checkpoints" / "epoch_0001.pt", dtype="fp32")


def _floor(checkpoint: Path, gray: np.ndarray, real: np.ndarray, models, device: str, batch_size: int
           ) -> dict[str, float]:
    """The forward passes alone: generator (eval mode, batches), Inception on its output, LPIPS on the pairs."""
    loaded = load_for_evaluation(checkpoint, device)
    outputs = []
    started = time.perf_counter()
    with torch.no_grad():
        for i in range(0, len(gray), batch_size):
            inputs, _ = encode_batch(torch.from_numpy(gray[i:i + batch_size]).to(device), None, "rgb")
            outputs.append(loaded.net(inputs).float().cpu())
    generator_s = time.perf_counter() - started
    fake = ((torch.cat(outputs).clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    started = time.perf_counter()
    models.inception_features(fake)
    inception_s = time.perf_counter() - started
    started = time.perf_counter()
    models.lpips(real, fake[:len(real)])
    lpips_s = time.perf_counter() - started
    return {"generation": generator_s, "features": inception_s, "metrics": lpips_s}


def speed(args: argparse.Namespace, settings: EvaluationSettings) -> None:
    torch.set_num_threads(args.threads) if args.threads else None
    root = Path(tempfile.mkdtemp(prefix="lpd-eval-bench-"))
    try:
        layout = StorageLayout(root)
        (root / "dataset").mkdir(parents=True)
        _synthetic_storage(root, args.n_color, args.n_ink, args.size)
        checkpoint = _checkpoint(layout, args.backbone, args.ngf, args.size)
        table = pd.DataFrame({"epoch": [1], "path": [str(checkpoint)]})
        variant = variant_key(args.backbone)

        started = time.perf_counter()
        models = default_models(settings.device)
        load_s = time.perf_counter() - started
        tiles = load_test_set(layout)
        started = time.perf_counter()
        real_statistics(layout, tiles, models)
        real_s = time.perf_counter() - started
        gray = np.concatenate([np.asarray(tiles.color.gray()), np.asarray(tiles.ink.gray())])
        real = np.array(tiles.color.color())  # in memory: torch wants writable arrays
        _floor(checkpoint, gray[:4], real[:2], models, settings.device, settings.batch_size)  # warm-up

        evaluations, floors = [], []
        for _ in range(args.repeats):
            for path in (store.cache_path(layout, variant), store.evaluations_path(layout, variant)):
                path.unlink(missing_ok=True)  # score again (the real features stay cached)
            run = evaluate_checkpoints(layout, variant, table, settings, models_factory=lambda device: models,
                                       log_fn=lambda message: None)
            row = run.rows.iloc[0]
            if row["status"] != "ok":
                raise SystemExit(f"evaluation did not run: {row['reason']}")
            evaluations.append({"generation": row["generation_s"], "features": row["features_s"],
                                "metrics": row["metrics_s"], "total": row["wall_time_s"]})
            floor = _floor(checkpoint, gray, real, models, settings.device, settings.batch_size)
            floor["total"] = sum(floor.values())
            floors.append(floor)
        evaluation = {k: float(np.median([e[k] for e in evaluations])) for k in evaluations[0]}
        floor = {k: float(np.median([f[k] for f in floors])) for k in floors[0]}
        print(f"{args.backbone} ngf={args.ngf}, {args.n_color} test_color + {args.n_ink} test_ink tiles of "
              f"{args.size} px, device {settings.device}, torch threads {torch.get_num_threads()}, batch "
              f"{settings.batch_size}, bootstrap {settings.bootstrap}, median of {args.repeats}")
        print(f"metric networks loaded in {load_s:.1f} s; real test_color features (once per test set, cached) "
              f"{real_s:.1f} s")
        print()
        print("| stage | evaluation s | floor s | floor is | ratio |")
        print("| --- | ---: | ---: | --- | ---: |")
        what = {"generation": "generator forward, batches", "features": "Inception on generated tiles",
                "metrics": "LPIPS on the pairs", "total": "sum"}
        for stage in ("generation", "features", "metrics", "total"):
            print(f"| {stage} | {evaluation[stage]:.2f} | {floor[stage]:.2f} | {what[stage]} | "
                  f"{evaluation[stage] / max(floor[stage], 1e-9):.2f} |")
        ratio = evaluation["total"] / floor["total"]
        print(f"\ngoal total <= 1.2x floor: {'met' if ratio <= 1.2 else 'NOT met'} ({ratio:.2f}x)")
    finally:
        shutil.rmtree(root, ignore_errors=True)


def modes(args: argparse.Namespace, settings: EvaluationSettings) -> None:
    torch.set_num_threads(args.threads) if args.threads else None
    layout = StorageLayout(Path(args.storage))
    table = read_checkpoint_table(layout.training_dir(args.variant))
    if table.empty:
        raise SystemExit(f"no checkpoints in {layout.training_dir(args.variant)}")
    models = default_models(settings.device)
    tiles = load_test_set(layout)
    real_stats = real_statistics(layout, tiles, models)
    real = np.array(tiles.color.color())  # in memory: torch wants writable arrays
    ink_gray = np.array(tiles.ink.gray()) if tiles.ink else None
    if ink_gray is not None and args.max_ink:
        ink_gray = ink_gray[np.linspace(0, len(ink_gray) - 1, min(args.max_ink, len(ink_gray))).astype(int)]
    epochs = set(args.epochs or table["epoch"])
    print(f"{args.storage} {args.variant}: {tiles.color.n} test_color + {0 if ink_gray is None else len(ink_gray)} "
          f"test_ink tiles, bootstrap {settings.bootstrap}")
    print()
    print("| epoch | mode | FID [95%] | KID | LPIPS | ΔE | PSNR | SSIM | ΔCF | ink FID | ink CF | s |")
    print("| ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for record in table.sort_values("epoch").itertuples():
        if record.epoch not in epochs:
            continue
        for mode in ("eval", "pix2pix"):
            started = time.perf_counter()
            loaded = load_for_evaluation(record.path, settings.device, mode=mode)
            generated = generate(loaded, np.asarray(tiles.color.gray()), batch_size=settings.batch_size)
            ink = generate(loaded, ink_gray, batch_size=settings.batch_size) if ink_gray is not None else None
            v = score_generated(real, generated, real_stats, models, settings, ink_generated=ink)
            print(f"| {record.epoch} | {mode} | {v['fid']:.2f} [{v['fid_lo']:.2f}, {v['fid_hi']:.2f}] | "
                  f"{v['kid']:.4f} | {v['lpips']:.4f} | {v['delta_e']:.2f} | {v['psnr']:.2f} | {v['ssim']:.3f} | "
                  f"{v['delta_cf']:.2f} | {v.get('ink_fid', float('nan')):.2f} | "
                  f"{v.get('ink_colorfulness', float('nan')):.2f} | {time.perf_counter() - started:.0f} |",
                  flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("speed", help="seconds per checkpoint evaluation vs the floor")
    s.add_argument("--n-color", type=int, default=100)
    s.add_argument("--n-ink", type=int, default=100)
    s.add_argument("--size", type=int, default=256)
    s.add_argument("--backbone", choices=["unet256", "resnet9"], default="unet256")
    s.add_argument("--ngf", type=int, default=64)
    s.add_argument("--repeats", type=int, default=1)
    m = sub.add_parser("modes", help="eval vs pix2pix inference mode on a trained run")
    m.add_argument("--storage", required=True)
    m.add_argument("--variant", default="unet256")
    m.add_argument("--epochs", type=int, nargs="*", help="only these checkpoints (default: all)")
    m.add_argument("--max-ink", type=int, default=0, help="at most this many test_ink tiles, evenly spread (0: all)")
    for p in (s, m):  # --batch-size, --bootstrap, --device: the EvaluationSettings fields (defaults included)
        EvaluationSettings.add_cli_arguments(p, exclude=set(EvaluationSettings.model_fields) - set(BENCH_SETTINGS))
        p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    settings = EvaluationSettings.from_cli(args)
    speed(args, settings) if args.command == "speed" else modes(args, settings)


if __name__ == "__main__":
    main()
