"""Invariants of the curated dataset. Each returns a list of problems; empty means the invariant holds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from lpd_pipeline import imaging
from lpd_pipeline.curation import dedup
from lpd_pipeline.settings import PathEscapeError, safe_join


def split_leaks(paintings: pd.DataFrame, tiles: pd.DataFrame, tile_max_distance: int) -> list[str]:
    """Paintings, works, near-duplicate painting clusters or near-duplicate tiles found in two splits."""
    problems: list[str] = []
    per_painting = tiles.groupby("painting_id")["split"].nunique()
    problems += [f"painting {pid} has tiles in {n} splits" for pid, n in per_painting[per_painting > 1].items()]
    placed = paintings[paintings["split"] != ""]
    for column in ("work_id", "dup_cluster"):
        if column in placed:
            per_group = placed.groupby(column)["split"].nunique()
            problems += [f"{column} {gid} spans {n} splits" for gid, n in per_group[per_group > 1].items()]
    # Non-representative copies must not end up in a split of their own.
    if "is_representative" in paintings:
        leaked = paintings[~paintings["is_representative"] & (paintings["split"] != "")]
        problems += [f"near-duplicate copy {pid} was given a split" for pid in leaked["painting_id"]]
    hashes = tiles["phash"].to_numpy(dtype=np.int64)  # dedup reads int64 as the same 64 bits
    pairs = dedup.near_duplicate_pairs(hashes, tile_max_distance)
    splits = tiles["split"].to_numpy()
    for i, j in pairs:
        if splits[i] != splits[j]:
            problems.append(f"near-duplicate tiles {tiles['tile_id'].iat[i]} ({splits[i]}) and "
                            f"{tiles['tile_id'].iat[j]} ({splits[j]})")
    return problems


def pair_problems(tiles: pd.DataFrame, storage_root: Path, *, check_luma: bool = True) -> list[str]:
    """Missing files, size mismatches, and grayscale tiles that are not the BT.601 luma of their colour tile."""
    problems: list[str] = []
    for row in tiles.itertuples():
        try:
            color_file, gray_file = safe_join(storage_root, row.color_path), safe_join(storage_root, row.gray_path)
            color = imaging.decode_image(color_file)
            gray = imaging.decode_image(gray_file)
        except (imaging.ImageDecodeError, PathEscapeError) as error:
            problems.append(f"{row.tile_id}: {error}")
            continue
        expected = (row.size, row.size)
        if color.shape[:2] != expected or gray.shape[:2] != expected:
            problems.append(f"{row.tile_id}: colour {color.shape[:2]} / gray {gray.shape[:2]}, expected {expected}")
            continue
        if check_luma:
            luma = imaging.luma_bt601(color)
            if not np.array_equal(luma, gray[:, :, 0]):
                diff = int(np.abs(luma.astype(int) - gray[:, :, 0].astype(int)).max())
                problems.append(f"{row.tile_id}: grayscale differs from the colour tile's luma (max diff {diff})")
    return problems
