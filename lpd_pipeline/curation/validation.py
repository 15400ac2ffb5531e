"""Invariants of the curated dataset. Each returns a list of problems; empty means the invariant holds."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from lpd_pipeline import imaging
from lpd_pipeline.curation import dedup
from lpd_pipeline.settings import PathEscapeError, safe_join


def split_leaks(paintings: pd.DataFrame, tiles: pd.DataFrame, tile_max_distance: int) -> list[str]:
    """Paintings, works, near-duplicate painting clusters or near-duplicate tiles found in two splits."""
    problems: list[str] = []
    repeated = tiles.loc[tiles["tile_id"].duplicated(), "tile_id"].unique()
    problems += [f"tile {tid} is listed more than once" for tid in repeated]
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


def pair_problems(
    tiles: pd.DataFrame,
    storage_root: Path,
    *,
    painting_paths: Mapping[str, str] | None = None,
    check_luma: bool = True,
) -> list[str]:
    """Missing files, size mismatches, grayscale tiles that are not single-channel BT.601 luma of their colour
    tile, and (given ``painting_paths``: painting_id -> file) colour tiles that are not the crop of their
    painting at (x, y): pairs swapped between tiles or cut from another version of the painting."""
    problems: list[str] = []
    for painting_id, group in tiles.groupby("painting_id", sort=False):
        painting = None
        if painting_paths is not None:
            try:
                painting = imaging.decode_image(painting_paths[painting_id])
            except KeyError:
                problems.append(f"painting {painting_id} of tile {group['tile_id'].iat[0]} is not in the table")
            except imaging.ImageDecodeError as error:
                problems.append(f"painting {painting_id}: {error}")
        for row in group.itertuples():
            problems += _pair_problems_of(row, storage_root, painting, check_luma)
    return problems


def _pair_problems_of(row, storage_root: Path, painting: np.ndarray | None, check_luma: bool) -> list[str]:
    try:
        color_file, gray_file = safe_join(storage_root, row.color_path), safe_join(storage_root, row.gray_path)
        color = imaging.decode_image(color_file)
        gray = imaging.decode_image(gray_file)
    except (imaging.ImageDecodeError, PathEscapeError) as error:
        return [f"{row.tile_id}: {error}"]
    expected = (row.size, row.size)
    if color.shape[:2] != expected or gray.shape[:2] != expected:
        return [f"{row.tile_id}: colour {color.shape[:2]} / gray {gray.shape[:2]}, expected {expected}"]
    problems = []
    if not (np.array_equal(gray[..., 0], gray[..., 1]) and np.array_equal(gray[..., 0], gray[..., 2])):
        problems.append(f"{row.tile_id}: the grayscale file has colour (its channels differ)")
    elif check_luma:
        luma = imaging.luma_bt601(color)
        if not np.array_equal(luma, gray[:, :, 0]):
            diff = int(np.abs(luma.astype(int) - gray[:, :, 0].astype(int)).max())
            problems.append(f"{row.tile_id}: grayscale differs from the colour tile's luma (max diff {diff})")
    if painting is not None:
        crop = painting[row.y:row.y + row.size, row.x:row.x + row.size]
        if crop.shape != color.shape or not np.array_equal(crop, color):
            problems.append(f"{row.tile_id}: colour tile is not the painting's crop at x={row.x}, y={row.y}")
    return problems
