"""Ingest-stage edge cases: tiny images, and when the decode cache may (not) be reused."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from lpd_pipeline import demo, imaging
from lpd_pipeline.curation import dataset as curation
from lpd_pipeline.curation.kind import KindRule
from lpd_pipeline.settings import StorageLayout
from lpd_pipeline.sources.local import scan_local_folder


@pytest.fixture()
def raw(tmp_path) -> Path:
    folder = tmp_path / "raw"
    rng = np.random.default_rng(0)
    imaging.save_image(folder / "blue_green.bmp", demo.render_landscape(64, 96, rng, "blue_green"))
    imaging.save_image(folder / "ink.png", demo.render_landscape(64, 96, rng, "ink_paper"))
    return folder


def _ingest(folder: Path, config=curation.CurationConfig(workers=1), cache=None):
    items, failures = scan_local_folder(folder)
    assert failures == []
    return curation.ingest_paintings(items, config, cache=cache)


@pytest.mark.parametrize("shape", [(1, 1, 3), (4, 4, 3), (1, 300, 3), (300, 1, 3), (7, 50, 3)])
def test_images_too_small_to_hash_are_rejected_and_the_run_goes_on(raw, shape):
    imaging.save_image(raw / "tiny.png", np.full(shape, 128, np.uint8))
    paintings, rejections = _ingest(raw)
    assert sorted(Path(p).name for p in paintings["path"]) == ["blue_green.bmp", "ink.png"]
    row = rejections.iloc[0]
    assert Path(row["item"]).name == "tiny.png" and row["reason"] == "too_small"
    assert f"{shape[1]}x{shape[0]}" in row["detail"]


def test_smallest_hashable_image_is_kept(raw):
    imaging.save_image(raw / "eight.png", np.random.default_rng(1).integers(0, 256, (8, 9, 3), dtype=np.uint8))
    paintings, rejections = _ingest(raw)
    assert "eight.png" in {Path(p).name for p in paintings["path"]} and rejections.empty


def test_cache_reused_only_while_file_and_settings_are_unchanged(raw):
    first, _ = _ingest(raw)
    # Unchanged: every row comes from the cache (a poisoned cached value shows through).
    poisoned = first.assign(colorfulness=0.123)
    again, _ = _ingest(raw, cache=poisoned)
    assert (again["colorfulness"] == 0.123).all()

    # Same size and mtime but new pixels (cp -p / rsync -t restore the mtime): described again.
    path = raw / "blue_green.bmp"
    before = path.stat()
    imaging.save_image(path, demo.render_landscape(64, 96, np.random.default_rng(5), "ink_paper"))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert path.stat().st_size == before.st_size and path.stat().st_mtime_ns == before.st_mtime_ns
    rewritten, _ = _ingest(raw, cache=poisoned)
    row = rewritten.set_index("path").loc[str(path)]
    assert row["painting_id"] == imaging.content_hash(path) != first.set_index("path").at[str(path), "painting_id"]
    assert row["colorfulness"] != 0.123
    assert rewritten.set_index("path").at[str(raw / "ink.png"), "colorfulness"] == 0.123  # untouched file

    # A different kind rule changes the cached score's meaning: described again.
    other_rule = curation.CurationConfig(workers=1, kind_rule=KindRule(chroma_threshold=60.0))
    rescored, _ = _ingest(raw, config=other_rule, cache=poisoned)
    assert (rescored["colorfulness"] != 0.123).all()

    # A table from an older version without the cache-key columns is ignored, not an error.
    old_format = poisoned.drop(columns=["file_ctime_ns", "describe_key"])
    fresh, _ = _ingest(raw, cache=old_format)
    assert (fresh["colorfulness"] != 0.123).all()


def test_relative_storage_root_works_for_tiles(raw, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    paintings, _ = _ingest(raw)
    config = curation.CurationConfig(workers=1, tile_size=32, stride=32)
    marked, _ = curation.dedup_paintings(paintings, config)
    tiles, _ = curation.cut_tiles(marked, StorageLayout(Path("relative_store")), config)
    kept = tiles[tiles["rejected_by"] == ""]
    assert len(kept) and (tmp_path / "relative_store" / kept["color_path"].iat[0]).is_file()
