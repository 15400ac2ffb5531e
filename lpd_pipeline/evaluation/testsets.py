"""The test sets a checkpoint is scored on, decoded once and identified by their content.

``test_color`` (gray input, real colour as ground truth) and ``test_ink`` (ink paintings: gray input only, no
ground truth) come from ``<storage>/dataset/tiles.parquet``. Each split is decoded through the training's tile
store (same decoder, same BT.601 check, reused while the files are unchanged) into
``<storage>/evaluation/tile_store/<split>/``; its fingerprint (tile ids + sha256 of every file) identifies it.
The test set's fingerprint combines both splits' fingerprints: a refreshed dataset is a new test set.
An empty ``test_ink`` split is allowed (no ink metrics); an empty ``test_color`` split is an error.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lpd_pipeline.settings import StorageLayout, safe_join
from lpd_pipeline.training.data import DataError, TileStore, build_tile_store, read_split_tiles


@dataclass(frozen=True)
class EvaluationTiles:
    """Decoded test tiles (uint8 memmaps, tile_id order) and the fingerprint of what they were decoded from."""

    color: TileStore
    ink: TileStore | None
    color_files: tuple[Path, ...]  # the real colour tile files, in store order (the feature cache's key)

    @property
    def fingerprint(self) -> str:
        return combined_fingerprint(self.color.fingerprint, self.ink.fingerprint if self.ink else "")

    @property
    def tile_ids(self) -> set[str]:
        return set(self.color.tile_ids) | (set(self.ink.tile_ids) if self.ink else set())


def combined_fingerprint(color_fingerprint: str, ink_fingerprint: str) -> str:
    return hashlib.sha256(f"test_color:{color_fingerprint}\ntest_ink:{ink_fingerprint}\n".encode()).hexdigest()


def tiles_table_path(layout: StorageLayout):
    return layout.dataset_dir / "tiles.parquet"


def store_dir(layout: StorageLayout, split: str):
    return layout.path("evaluation", "tile_store", split)


def load_test_set(layout: StorageLayout) -> EvaluationTiles:
    """Decode (or reuse) the test_color and test_ink tiles; DataError names the file and the reason."""
    tiles = tiles_table_path(layout)
    color = build_tile_store(tiles, layout.root, "test_color", store_dir(layout, "test_color"))
    rows = read_split_tiles(tiles, "test_color")  # the store's rows, in its order (checked below)
    if tuple(rows["tile_id"].astype(str)) != color.tile_ids:
        raise DataError(f"tiles table {tiles} changed while its test_color tiles were decoded; run again")
    color_files = tuple(safe_join(layout.root, str(p)) for p in rows["color_path"])
    if color.n < 2:
        raise DataError(f"tiles table {tiles} has {color.n} test_color tile(s): FID and KID need at least two")
    ink = None
    if _has_split(tiles, "test_ink"):
        ink = build_tile_store(tiles, layout.root, "test_ink", store_dir(layout, "test_ink"))
    return EvaluationTiles(color, ink, color_files)


def _has_split(tiles, split: str) -> bool:
    try:
        read_split_tiles(tiles, split)
    except DataError as exc:
        if "has no tiles in split" in str(exc):
            return False
        raise
    return True


def sample_indices(n: int, count: int) -> list[int]:
    """``count`` fixed, evenly spread indices into ``n`` tiles (the same tiles for every checkpoint)."""
    if n <= 0 or count <= 0:
        return []
    return sorted(set(np.linspace(0, n - 1, min(count, n)).round().astype(int).tolist()))
