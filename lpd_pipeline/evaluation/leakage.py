"""Refuse checkpoints whose training tiles overlap the current test split.

A checkpoint records the fingerprint of the tiles it was trained on (``data_fingerprint``: tile ids + sha256 of
every training tile file), not the tiles themselves. The rule:

- the tile ids (and painting ids) behind a fingerprint are learnt from the training tile store's ``index.json``
  (written when training decoded its split) and, when that does not know it, from the current train split of
  tiles.parquet; each one learnt is recorded in ``<storage>/evaluation/training_sets/<fingerprint>.json`` so it
  is still known after a dataset refresh has replaced the store;
- a checkpoint is evaluated when its training set is known and shares no tile and no painting with the current
  test_color/test_ink tiles; otherwise it is refused with the reason (overlapping ids, or an unknown training
  set whose overlap cannot be ruled out).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pandas as pd

from lpd_pipeline.files import read_json_object, write_text_atomic
from lpd_pipeline.settings import StorageLayout
from lpd_pipeline.training.data import DataError, data_fingerprint, read_split_tiles

TRAIN_STORE_INDEX = ("training", "tile_store", "train", "index.json")


@dataclass(frozen=True)
class TrainingSet:
    fingerprint: str
    tile_ids: frozenset[str]
    painting_ids: frozenset[str]


def registry_path(layout: StorageLayout, fingerprint: str):
    if not fingerprint.isalnum():
        raise ValueError(f"data fingerprint {fingerprint!r} is not a hex digest")
    return layout.path("evaluation", "training_sets", f"{fingerprint}.json")


def record_training_set(layout: StorageLayout, training_set: TrainingSet) -> None:
    path = registry_path(layout, training_set.fingerprint)
    if not path.is_file():
        write_text_atomic(path, json.dumps({"fingerprint": training_set.fingerprint,
                                            "tile_ids": sorted(training_set.tile_ids),
                                            "painting_ids": sorted(training_set.painting_ids)}))


def _painting_ids(tile_ids, tiles: pd.DataFrame) -> frozenset[str]:
    """Painting of each tile: from tiles.parquet where the tile is still listed, else from the tile id's form
    ``<painting_id>_<x>_<y>_<size>`` (curation.dataset.tile_id)."""
    known = dict(zip(tiles["tile_id"].astype(str), tiles["painting_id"].astype(str))) if "painting_id" in tiles else {}
    found = set()
    for tile_id in tile_ids:
        if tile_id in known:
            found.add(known[tile_id])
        else:
            parts = tile_id.rsplit("_", 3)
            if len(parts) == 4 and all(p.isdigit() for p in parts[1:]):
                found.add(parts[0])
    return frozenset(found)


def known_training_set(layout: StorageLayout, fingerprint: str, tiles: pd.DataFrame,
                       *, allow_hashing: bool = True) -> TrainingSet | None:
    """The training set behind ``fingerprint``, from the registry, the training store or the current train split
    (hashing every train tile file: only when the cheaper sources do not know it and ``allow_hashing``)."""
    entry = read_json_object(registry_path(layout, fingerprint))
    if entry.get("fingerprint") == fingerprint:
        return TrainingSet(fingerprint, frozenset(entry["tile_ids"]), frozenset(entry["painting_ids"]))
    store = read_json_object(layout.path(*TRAIN_STORE_INDEX))
    if store.get("fingerprint") == fingerprint and isinstance(store.get("tile_ids"), list):
        ids = frozenset(str(t) for t in store["tile_ids"])
        found = TrainingSet(fingerprint, ids, _painting_ids(ids, tiles))
        record_training_set(layout, found)
        return found
    if allow_hashing:
        try:
            train = read_split_tiles(layout.dataset_dir / "tiles.parquet", "train")
        except DataError:
            return None
        current = data_fingerprint(train, layout.root)
        ids = frozenset(train["tile_id"].astype(str))
        record_training_set(layout, TrainingSet(current, ids, _painting_ids(ids, tiles)))
        if current == fingerprint:
            return known_training_set(layout, fingerprint, tiles, allow_hashing=False)
    return None


def overlap_reason(training_set: TrainingSet | None, fingerprint: str, test_tiles: pd.DataFrame) -> str | None:
    """Why a checkpoint trained on ``training_set`` may not be scored on ``test_tiles`` (None: it may)."""
    if training_set is None:
        return (f"trained on tiles with data fingerprint {fingerprint[:12]}, which is neither the current train "
                f"split nor a training set recorded before: overlap with the test split cannot be ruled out")
    tiles = sorted(training_set.tile_ids & set(test_tiles["tile_id"].astype(str)))
    paintings = sorted(training_set.painting_ids & set(test_tiles["painting_id"].astype(str)))
    if not tiles and not paintings:
        return None
    parts = []
    if tiles:
        parts.append(f"{len(tiles)} of its training tiles are now test tiles (e.g. {', '.join(tiles[:3])})")
    if paintings:
        parts.append(f"{len(paintings)} of its training paintings now have test tiles "
                     f"(e.g. {', '.join(paintings[:3])})")
    return (f"trained on tiles (data fingerprint {fingerprint[:12]}) that overlap the current test split: "
            f"{'; '.join(parts)}; retrain on the current dataset")
