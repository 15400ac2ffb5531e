"""Test helpers for evaluation: a tiny trained run on fake tiles (with test_ink tiles) and a small fake of the
metric networks (tests only: the real ones need the provisioned Inception and AlexNet weights)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from lpd_pipeline import imaging
from lpd_pipeline.training.loop import train
from lpd_pipeline_tests.training_fixtures import smooth_tile, tiny_config, write_fake_tiles


class FakeMetricModels:
    """Same interface as ``lpd_pipeline.metrics.MetricModels``; deterministic cheap stand-ins for the networks:
    'features' are a fixed random projection of 4×4 colour means, 'LPIPS' the mean absolute difference."""

    instances = 0

    def __init__(self, device: str = "cpu"):
        FakeMetricModels.instances += 1
        self.projection = np.random.default_rng(0).normal(size=(48, 2048))
        self.feature_calls = 0

    def inception_features(self, images: np.ndarray) -> np.ndarray:
        assert images.dtype == np.uint8 and images.ndim == 4 and images.shape[-1] == 3
        self.feature_calls += 1
        n, h, w, _ = images.shape
        pooled = images.reshape(n, 4, h // 4, 4, w // 4, 3).mean(axis=(2, 4)).reshape(n, 48) / 255.0
        return np.tanh(pooled @ self.projection)

    def lpips(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.abs(a.astype(np.float64) - b.astype(np.float64)).mean(axis=(1, 2, 3)) / 255.0


def add_ink_tiles(storage_root: Path, n: int = 3, size: int = 32, seed: int = 7) -> None:
    """Append ``n`` test_ink tile pairs (gray = BT.601 luma of a gray-ish 'ink' tile) to tiles.parquet."""
    rng = np.random.default_rng(seed)
    path = storage_root / "dataset" / "tiles.parquet"
    frame = pd.read_parquet(path)
    rows = []
    for i in range(n):
        gray = imaging.luma_bt601(smooth_tile(rng, size))
        color = np.repeat(gray[:, :, None], 3, axis=2)
        tile_id = f"ink{i:02d}_t{i:03d}"
        color_rel, gray_rel = f"dataset/tiles/{tile_id}_color.png", f"dataset/tiles/{tile_id}_gray.png"
        imaging.save_image(storage_root / color_rel, color)
        imaging.save_image(storage_root / gray_rel, gray)
        rows.append({"tile_id": tile_id, "painting_id": f"ink{i:02d}", "split": "test_ink", "x": 0, "y": 0,
                     "size": size, "color_path": color_rel, "gray_path": gray_rel})
    pd.concat([frame, pd.DataFrame(rows)], ignore_index=True).to_parquet(path, index=False)


def tiny_dataset(storage_root: Path, *, n_ink: int = 3) -> Path:
    """4 train, 5 test_color and ``n_ink`` test_ink tiles of 32 px; returns tiles.parquet."""
    path = write_fake_tiles(storage_root, n_train=4, n_test=5, size=32)
    if n_ink:
        add_ink_tiles(storage_root, n=n_ink)
    return path


def tiny_training(storage_root: Path, backbone: str = "resnet9", *, epochs: int = 2, **changes) -> pd.DataFrame:
    """Train a tiny generator on the fake tiles (one checkpoint per epoch); the checkpoint table."""
    config = tiny_config(backbone=backbone, ngf=4, ndf=4, n_epochs=epochs, n_epochs_decay=0, **changes)
    run_dir = storage_root / "training" / backbone
    result = train(config, storage_root / "dataset" / "tiles.parquet", storage_root, run_dir)
    return pd.read_parquet(result.table_path)
