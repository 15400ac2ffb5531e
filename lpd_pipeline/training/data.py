"""Training data: the tiles of one split decoded once into a compact uint8 memmap store, and a torch Dataset.

Decoding thousands of PNGs every epoch would dominate a CPU run, so each split is decoded once into two raw
arrays (``color.u8`` N×H×W×3 and ``gray.u8`` N×H×W) plus ``index.json``. The store is reused while its data
fingerprint (tile ids + sha256 and size of every tile file) matches the current tiles table.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from lpd_pipeline import imaging
from lpd_pipeline.curation.dataset import SPLITS  # the one definition: curation decides the splits
from lpd_pipeline.files import atomic_path, read_json_object, sha256_file, write_text_atomic
from lpd_pipeline.settings import PathEscapeError, safe_join
from lpd_pipeline.training.remedies import augment_ink

log = logging.getLogger(__name__)

STORE_FORMAT = 1
REQUIRED_COLUMNS = ("tile_id", "split", "size", "color_path", "gray_path")


class DataError(ValueError):
    """The tiles table or a tile file is unusable (the message names the file and the reason)."""


@dataclass(frozen=True)
class TileStore:
    """A decoded split on disk: ``n`` tiles of ``size``×``size`` as uint8 memmaps."""

    store_dir: Path
    split: str
    tile_ids: tuple[str, ...]
    size: int
    fingerprint: str

    @property
    def n(self) -> int:
        return len(self.tile_ids)

    @property
    def color_path(self) -> Path:
        return self.store_dir / "color.u8"

    @property
    def gray_path(self) -> Path:
        return self.store_dir / "gray.u8"

    def color(self) -> np.memmap:
        return np.memmap(self.color_path, dtype=np.uint8, mode="r", shape=(self.n, self.size, self.size, 3))

    def gray(self) -> np.memmap:
        return np.memmap(self.gray_path, dtype=np.uint8, mode="r", shape=(self.n, self.size, self.size))


def read_split_tiles(tiles_parquet: str | os.PathLike, split: str) -> pd.DataFrame:
    """The rows of ``split`` from tiles.parquet, sorted by tile_id (a stable order independent of row order)."""
    tiles_parquet = Path(tiles_parquet)
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; expected one of {list(SPLITS)}")
    if not tiles_parquet.is_file():
        raise DataError(f"tiles table {tiles_parquet} does not exist")
    try:
        frame = pd.read_parquet(tiles_parquet)
    except Exception as exc:  # pyarrow raises several unrelated types for a corrupt file
        raise DataError(f"tiles table {tiles_parquet} is not readable Parquet: {exc}") from exc
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(f"tiles table {tiles_parquet} lacks column(s) {missing}")
    rows = frame[frame["split"] == split].sort_values("tile_id", kind="stable").reset_index(drop=True)
    if rows.empty:
        raise DataError(f"tiles table {tiles_parquet} has no tiles in split {split!r}")
    if rows["tile_id"].duplicated().any():
        dupes = rows.loc[rows["tile_id"].duplicated(), "tile_id"].head(3).tolist()
        raise DataError(f"tiles table {tiles_parquet} repeats tile_id(s) {dupes}")
    sizes = rows["size"].unique()
    if len(sizes) != 1:
        raise DataError(f"tiles table {tiles_parquet}: split {split!r} mixes tile sizes {sorted(sizes.tolist())}")
    return rows


def train_tile_size(tiles_parquet: str | os.PathLike) -> int:
    """The side of the training tiles in tiles.parquet (one size per split, checked)."""
    return int(read_split_tiles(tiles_parquet, "train")["size"].iat[0])


def data_fingerprint(rows: pd.DataFrame, storage_root: str | os.PathLike) -> str:
    """sha256 over tile ids, the content hash and the byte size of every tile file, in tile_id order."""
    digest = hashlib.sha256(f"lpd-tiles-v{STORE_FORMAT}\n".encode())
    for row in rows.itertuples(index=False):
        digest.update(f"{row.tile_id}\t{int(row.size)}".encode())
        for rel in (row.color_path, row.gray_path):
            path = _tile_file(storage_root, rel)
            digest.update(f"\t{path.stat().st_size}:{sha256_file(path)}".encode())
        digest.update(b"\n")
    return digest.hexdigest()


def _tile_file(storage_root: str | os.PathLike, rel: str) -> Path:
    try:
        path = safe_join(storage_root, str(rel))
    except PathEscapeError as exc:
        raise DataError(f"tile path {rel!r} in tiles.parquet is refused: {exc}") from None
    if not path.is_file():
        raise DataError(f"tile file {path} (listed in tiles.parquet as {rel!r}) does not exist")
    return path


def _decode_tile(path: Path, mode: str, size: int) -> np.ndarray:
    """A tile as (size, size, 3) RGB or (size, size) gray, through the project's one decoder."""
    try:
        rgb = imaging.decode_image(path)
    except imaging.ImageDecodeError as exc:
        raise DataError(f"tile file {path} cannot be decoded: {exc.reason} {exc.detail}") from exc
    if rgb.shape[:2] != (size, size):
        raise DataError(f"tile file {path} is {rgb.shape[1]}x{rgb.shape[0]}, the table says {size}x{size}")
    # Gray tiles decode to three equal channels; a colour file given as gray is reduced by BT.601 luma.
    return rgb if mode == "RGB" else imaging.luma_bt601(rgb)


def build_tile_store(
    tiles_parquet: str | os.PathLike,
    storage_root: str | os.PathLike,
    split: str,
    store_dir: str | os.PathLike,
) -> TileStore:
    """Decode ``split`` into ``store_dir`` (or reuse it when its fingerprint matches) and return the store.

    Crash safety: index.json is the commit marker. It is removed before any array is rewritten and written
    (atomically) only after both arrays are complete, so a store is never read with mismatched contents.
    """
    store_dir = Path(store_dir)
    rows = read_split_tiles(tiles_parquet, split)
    size = int(rows["size"].iloc[0])
    fingerprint = data_fingerprint(rows, storage_root)
    tile_ids = tuple(str(t) for t in rows["tile_id"])
    store = TileStore(store_dir, split, tile_ids, size, fingerprint)

    index = read_json_object(store_dir / "index.json")
    expected_bytes = {"color.u8": store.n * size * size * 3, "gray.u8": store.n * size * size}
    if (
        index.get("format") == STORE_FORMAT
        and index.get("fingerprint") == fingerprint
        and all((store_dir / name).is_file() and (store_dir / name).stat().st_size == nbytes
                for name, nbytes in expected_bytes.items())
    ):
        log.info("tile store %s reused (%d %s tiles, fingerprint %s)", store_dir, store.n, split, fingerprint[:12])
        return store

    store_dir.mkdir(parents=True, exist_ok=True)
    (store_dir / "index.json").unlink(missing_ok=True)
    log.info("decoding %d %s tiles into %s", store.n, split, store_dir)
    with atomic_path(store.color_path) as color_tmp, atomic_path(store.gray_path) as gray_tmp:
        color = np.memmap(color_tmp, dtype=np.uint8, mode="w+", shape=(store.n, size, size, 3))
        gray = np.memmap(gray_tmp, dtype=np.uint8, mode="w+", shape=(store.n, size, size))
        for i, row in enumerate(rows.itertuples(index=False)):
            color[i] = _decode_tile(_tile_file(storage_root, row.color_path), "RGB", size)
            gray[i] = _decode_tile(_tile_file(storage_root, row.gray_path), "L", size)
            # The data contract (and the method): gray is the BT.601 luma of the colour tile. Anything else is
            # a damaged or swapped file, and training on it would teach the wrong mapping.
            if not np.array_equal(gray[i], imaging.luma_bt601(color[i])):
                raise DataError(
                    f"tile {row.tile_id}: {row.gray_path} is not the BT.601 luma of {row.color_path}; "
                    "run prepare_dataset again (it rewrites damaged tile files)"
                )
        color.flush()
        gray.flush()
        del color, gray
    index = {
        "format": STORE_FORMAT,
        "split": split,
        "fingerprint": fingerprint,
        "shape": [store.n, size, size],
        "tile_ids": list(tile_ids),
        "tiles_parquet": str(tiles_parquet),
    }
    write_text_atomic(store_dir / "index.json", json.dumps(index))
    return store


def open_tile_store(store_dir: str | os.PathLike) -> TileStore:
    """Open an existing store (e.g. on DDP ranks after rank 0 built it)."""
    store_dir = Path(store_dir)
    index = read_json_object(store_dir / "index.json")
    if index.get("format") != STORE_FORMAT:
        raise DataError(f"tile store {store_dir} has no valid index.json")
    n, size, _ = index["shape"]
    return TileStore(store_dir, index["split"], tuple(index["tile_ids"]), int(size), index["fingerprint"])


def mix_seed(*parts: int) -> int:
    """A 63-bit seed from integers (splitmix-style), so nearby (seed, epoch, index) give unrelated streams."""
    value = 0x9E3779B97F4A7C15
    for part in parts:
        value = (value ^ (int(part) + 0x9E3779B97F4A7C15 + (value << 6) + (value >> 2))) & 0xFFFFFFFFFFFFFFFF
        value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
        value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return (value ^ (value >> 31)) & 0x7FFFFFFFFFFFFFFF


def flip_decision(seed: int, epoch: int, index: int) -> bool:
    """Whether tile ``index`` is mirrored in ``epoch``: a pure function, so resume and DDP agree."""
    generator = torch.Generator().manual_seed(mix_seed(seed, epoch, index))
    return bool(torch.randint(0, 2, (1,), generator=generator).item())


class TilePairDataset(Dataset):
    """(gray uint8 H×W, colour uint8 H×W×3) tensors of a TileStore, optionally horizontally flipped and with the
    gray input ink-augmented (``training.remedies.augment_ink``).

    Keys are ``(epoch, index)`` pairs (see EpochIndexSampler) so the flip depends only on (seed, epoch,
    index) — also inside persistent worker processes, which never see a ``set_epoch`` call. A plain int key
    means epoch 0. The memmaps are opened lazily in each process and never pickled.
    """

    def __init__(self, store: TileStore, *, flip: bool, seed: int, ink_augment: bool = False) -> None:
        self.store = store
        self.flip = flip
        self.seed = seed
        self.ink_augment = ink_augment
        self._arrays: tuple[np.memmap, np.memmap] | None = None

    def __len__(self) -> int:
        return self.store.n

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_arrays"] = None
        return state

    def __getitem__(self, key) -> tuple[torch.Tensor, torch.Tensor]:
        epoch, index = key if isinstance(key, tuple) else (0, key)
        if self._arrays is None:
            self._arrays = (self.store.gray(), self.store.color())
        gray, color = self._arrays[0][index], self._arrays[1][index]
        if self.flip and flip_decision(self.seed, epoch, index):
            gray, color = gray[:, ::-1], color[:, ::-1]
        if self.ink_augment:  # a pure function of (seed, epoch, index), like the flip
            gray = augment_ink(gray, torch.Generator().manual_seed(mix_seed(self.seed, epoch, index, 0xA6)))
        # Copy out of the read-only memmap: tensors must own writable memory.
        gray, color = np.array(gray, copy=True, order="C"), np.array(color, copy=True, order="C")
        return torch.from_numpy(gray), torch.from_numpy(color)


class EpochIndexSampler(Sampler):
    """Yields ``(epoch, index)`` keys: a per-epoch seeded shuffle, sharded over DDP replicas.

    Wraps DistributedSampler (also for one process: rank 0 of 1) so the order is a pure function of
    (seed, epoch, rank, world size) and never touches the global RNG.
    """

    def __init__(self, n: int, *, seed: int, rank: int = 0, world_size: int = 1, shuffle: bool = True) -> None:
        self.inner = DistributedSampler(
            range(n), num_replicas=world_size, rank=rank, shuffle=shuffle, seed=seed, drop_last=False
        )
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.inner.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.inner)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch = self.epoch
        return ((epoch, int(i)) for i in self.inner)


def make_loader(
    dataset: TilePairDataset,
    sampler: EpochIndexSampler,
    *,
    batch_size: int,
    num_workers: int,
    pin_memory: bool,
    seed: int,
) -> DataLoader:
    """DataLoader with workers and pinned memory where useful; its base seed comes from its own generator."""
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        pin_memory=pin_memory,
        persistent_workers=num_workers > 0,
        drop_last=False,
        generator=torch.Generator().manual_seed(seed),
    )
