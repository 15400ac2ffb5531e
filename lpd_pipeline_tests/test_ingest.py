"""Ingest-stage edge cases: tiny images, and when the decode cache may (not) be reused."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lpd_pipeline import demo, imaging
from lpd_pipeline.files import sha256_file
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


def _tiles_of(raw: Path, storage: Path, config: curation.CurationConfig):
    paintings, _ = _ingest(raw)
    marked, _ = curation.dedup_paintings(paintings, config)
    return curation.cut_tiles(marked, StorageLayout(storage), config)[0]


def test_damaged_tile_files_and_score_caches_are_repaired_on_the_next_run(raw, tmp_path):
    config = curation.CurationConfig(workers=1, tile_size=32, stride=32)
    storage = tmp_path / "store"
    first = _tiles_of(raw, storage, config)
    kept = first[first["rejected_by"] == ""]
    color, gray = storage / kept["color_path"].iat[0], storage / kept["gray_path"].iat[0]
    good_color, good_gray = color.read_bytes(), gray.read_bytes()
    color.write_bytes(good_color[:50])  # truncated
    imaging.save_image(gray, np.zeros((32, 32), np.uint8))  # replaced by a valid but wrong image
    untouched = storage / kept["color_path"].iat[1]
    before = untouched.stat().st_mtime_ns
    cache = next((storage / "dataset" / "tiles").rglob("scores_*.json"))
    cache.write_bytes(b"not json")

    again = _tiles_of(raw, storage, config)
    pd.testing.assert_frame_equal(again, first)
    assert color.read_bytes() == good_color and gray.read_bytes() == good_gray
    assert untouched.stat().st_mtime_ns == before  # intact pairs are not rewritten
    assert len(json.loads(cache.read_text())["rows"]) > 0


def test_export_rewrites_cut_off_files_and_reports_unreadable_tiles(raw, tmp_path):
    config = curation.CurationConfig(workers=1, tile_size=32, stride=32)
    storage = tmp_path / "store"
    tiles = _tiles_of(raw, storage, config)
    kept = tiles[tiles["rejected_by"] == ""].assign(split="train").reset_index(drop=True)
    layout = StorageLayout(storage)
    leftover = layout.pix2pix_dir / "train" / ".killed.ab12cd.tmp.png"  # a killed run's temp file
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(b"")
    os.utime(leftover, (0, 0))
    counts, rejections = curation.export_pix2pix_aligned(kept, layout)
    assert counts["train"] == len(kept) and rejections.empty and not leftover.exists()
    first = layout.pix2pix_dir / "train" / f"{kept['tile_id'].iat[0]}.png"
    complete = first.read_bytes()
    first.write_bytes(complete[:-20])
    (storage / kept["color_path"].iat[1]).write_bytes(b"broken")
    (layout.pix2pix_dir / "train" / f"{kept['tile_id'].iat[1]}.png").unlink()  # must be rebuilt from the tile
    counts, rejections = curation.export_pix2pix_aligned(kept, layout)
    assert first.read_bytes() == complete
    assert counts["train"] == len(kept) - 1
    assert rejections["item"].tolist() == [kept["tile_id"].iat[1]] and rejections["stage"].iat[0] == "export"

    # Tile files rewritten with new content by the pipeline (pairs.json updated), even with an old mtime as a
    # restore from backup would leave: the export is made again from the tiles as they are now.
    third = kept["tile_id"].iat[2]
    colour, gray = storage / kept["color_path"].iat[2], storage / kept["gray_path"].iat[2]
    new_colour = 255 - imaging.decode_image(colour)
    imaging.save_image(colour, new_colour)
    imaging.save_image(gray, imaging.luma_bt601(new_colour))
    manifest_path = colour.parent / curation.PAIR_MANIFEST
    record = json.loads(manifest_path.read_text())
    record["sha256"].update({colour.name: sha256_file(colour), gray.name: sha256_file(gray)})
    manifest_path.write_text(json.dumps(record))
    for path in (colour, gray):
        os.utime(path, ns=(0, 0))
    curation.export_pix2pix_aligned(kept, layout)
    exported = imaging.decode_image(layout.pix2pix_dir / "train" / f"{third}.png")
    np.testing.assert_array_equal(exported[:, 32:], new_colour)


def test_tile_size_below_the_filters_minimum_is_refused_up_front():
    with pytest.raises(ValueError, match="tile_size must be >= 32"):
        curation.CurationConfig(tile_size=16)


def test_manifests_of_the_wrong_shape_are_redone_not_fatal(raw, tmp_path):
    config = curation.CurationConfig(workers=1, tile_size=32, stride=32)
    storage = tmp_path / "store"
    first = _tiles_of(raw, storage, config)
    for manifest in (storage / "dataset" / "tiles").rglob(curation.PAIR_MANIFEST):
        manifest.write_text(json.dumps({"version": curation.TILE_CACHE_VERSION, "sha256": None}))
    again = _tiles_of(raw, storage, config)
    pd.testing.assert_frame_equal(again, first)
    kept = again[again["rejected_by"] == ""].assign(split="train")
    export_dir = StorageLayout(storage).pix2pix_dir / "train"
    export_dir.mkdir(parents=True)
    (export_dir / curation.EXPORT_MANIFEST).write_text("[1, 2]")
    counts, rejections = curation.export_pix2pix_aligned(kept, StorageLayout(storage))
    assert counts["train"] == len(kept) and rejections.empty


def test_pair_files_of_tiles_no_longer_kept_are_removed(raw, tmp_path):
    storage = tmp_path / "store"
    loose = curation.CurationConfig(workers=1, tile_size=32, stride=32)
    first = _tiles_of(raw, storage, loose)
    files_before = sorted((storage / "dataset" / "tiles").rglob("*.png"))
    assert len(files_before) == 2 * int((first["rejected_by"] == "").sum())
    # Another tile size: the old size's files go, only the new kept pairs remain. They go once the new tables
    # are written (remove_superseded_files, called by tile_pairs after write_dataset_tables), not before: until
    # then the previous tiles.parquet lists them.
    other = curation.CurationConfig(workers=1, tile_size=48, stride=48)
    second = _tiles_of(raw, storage, other)
    assert set(files_before) <= set((storage / "dataset" / "tiles").rglob("*.png"))
    paintings, _ = curation.dedup_paintings(_ingest(raw)[0], other)
    curation.remove_superseded_files(StorageLayout(storage), paintings, second, other)
    kept = second[second["rejected_by"] == ""]
    expected = sorted({storage / p for p in (*kept["color_path"], *kept["gray_path"])})
    assert sorted((storage / "dataset" / "tiles").rglob("*.png")) == expected
    for manifest in (storage / "dataset" / "tiles").rglob(curation.PAIR_MANIFEST):
        names = set(json.loads(manifest.read_text())["sha256"])
        assert names == {p.name for p in expected if p.parent == manifest.parent}
