"""A tiny fake dataset for training tests: smooth random colour tiles, their BT.601 gray, a tiles.parquet."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from lpd_pipeline import imaging
from lpd_pipeline.training.config import TrainConfig


def smooth_tile(rng: np.random.Generator, size: int) -> np.ndarray:
    """A smooth RGB uint8 tile: a coarse random grid upsampled bilinearly (landscape-like low frequencies)."""
    coarse = rng.uniform(0, 255, size=(4, 4, 3)).astype(np.float32)
    image = Image.fromarray(coarse.astype(np.uint8), "RGB").resize((size, size), Image.BILINEAR)
    return np.asarray(image, dtype=np.uint8)


def write_fake_tiles(
    storage_root: Path,
    *,
    n_train: int = 8,
    n_test: int = 2,
    size: int = 32,
    seed: int = 0,
) -> Path:
    """Write PNG tile pairs and ``<storage>/dataset/tiles.parquet``; returns the parquet path."""
    rng = np.random.default_rng(seed)
    tiles_dir = storage_root / "dataset" / "tiles"
    tiles_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    splits = ["train"] * n_train + ["test_color"] * n_test
    for i, split in enumerate(splits):
        color = smooth_tile(rng, size)
        tile_id = f"p{i // 4:02d}_t{i:03d}"
        color_rel = f"dataset/tiles/{tile_id}_color.png"
        gray_rel = f"dataset/tiles/{tile_id}_gray.png"
        imaging.save_image(storage_root / color_rel, color)
        imaging.save_image(storage_root / gray_rel, imaging.luma_bt601(color))
        rows.append({"tile_id": tile_id, "painting_id": f"p{i // 4:02d}", "split": split, "x": 0, "y": 0,
                     "size": size, "color_path": color_rel, "gray_path": gray_rel})
    path = storage_root / "dataset" / "tiles.parquet"
    pd.DataFrame(rows).to_parquet(path, index=False)
    return path


def tiny_config(**changes) -> TrainConfig:
    """A config small enough to train in about a second on one CPU core."""
    base = dict(backbone="resnet9", ngf=8, ndf=8, n_layers_d=2, tile_size=32, n_epochs=1, n_epochs_decay=1,
                batch_size=2, checkpoint_every=1, num_workers=0, device="cpu")
    base.update(changes)
    return TrainConfig(**base)
