"""End to end: the prepare_dataset assets on demo paintings, through Dagster, including the asset checks."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from lpd_pipeline import demo, imaging
from lpd_pipeline.curation import dataset as curation
from lpd_pipeline.defs.assets.dataset import DATASET_ASSETS
from lpd_pipeline.defs.checks import DATASET_CHECKS
from lpd_pipeline.defs.resources import CurationResource, PaintingSourcesResource, ParquetIOManager, StorageResource

TILE = 128


def _resources(storage: Path, raw_dir: Path) -> dict:
    storage_resource = StorageResource(storage_root=str(storage))
    return {
        "storage": storage_resource,
        "painting_sources": PaintingSourcesResource(raw_dir=str(raw_dir)),
        "curation_settings": CurationResource(tile_size=TILE, stride=TILE, test_color_fraction=0.25),
        "parquet_io_manager": ParquetIOManager(storage=storage_resource),
    }


def _materialize(storage: Path, raw_dir: Path) -> dg.ExecuteInProcessResult:
    return dg.materialize([*DATASET_ASSETS, *DATASET_CHECKS], resources=_resources(storage, raw_dir))


@pytest.fixture(scope="module")
def demo_raw(tmp_path_factory) -> tuple[Path, pd.DataFrame]:
    raw = tmp_path_factory.mktemp("raw")
    truth = demo.generate_demo_paintings(raw, n_colored=8, n_ink=3, scale=0.5)
    return raw, truth


@pytest.fixture(scope="module")
def prepared(tmp_path_factory, demo_raw):
    raw, truth = demo_raw
    storage = tmp_path_factory.mktemp("storage")
    # Plant bad files: the run must report them and go on.
    (raw / "zero.jpg").write_bytes(b"")
    (raw / "page.jpg").write_bytes(b"<!DOCTYPE html><html><body>not found</body></html>")
    good = next(raw.glob("*.jpg")).read_bytes()
    (raw / "truncated.jpg").write_bytes(good[: len(good) // 3])
    result = _materialize(storage, raw)
    return storage, raw, truth, result


def test_job_succeeds_and_checks_pass(prepared):
    _, _, _, result = prepared
    assert result.success
    checks = result.get_asset_check_evaluations()
    assert {c.check_name for c in checks} == {"no_leak_across_splits", "pairs_aligned_and_luma_exact"}
    assert all(c.passed for c in checks), [(c.check_name, c.metadata) for c in checks]


def test_tables_written_with_documented_columns(prepared):
    storage, _, truth, _ = prepared
    tiles = pd.read_parquet(storage / "dataset" / "tiles.parquet")
    paintings = pd.read_parquet(storage / "dataset" / "paintings.parquet")
    rejections = pd.read_parquet(storage / "dataset" / "rejections.parquet")
    for column in ["tile_id", "painting_id", "split", "x", "y", "size", "color_path", "gray_path",
                   *[f"score_{n}" for n in ("blank", "blur", "watermark", "seal", "inscription", "padding")]]:
        assert column in tiles
    assert list(rejections.columns) == ["item", "stage", "reason", "detail"]
    assert set(tiles["split"]) == {"train", "test_color", "test_ink"}
    assert (tiles["size"] == TILE).all()
    assert len(paintings) == len(truth)  # every decodable demo file, copies included


def test_bad_files_rejected_with_reason(prepared):
    storage, _, _, _ = prepared
    rejections = pd.read_parquet(storage / "dataset" / "rejections.parquet")
    by_file = {Path(r.item).name: r.reason for r in rejections[rejections["stage"] == "decode"].itertuples()}
    assert by_file == {"zero.jpg": "zero_byte", "page.jpg": "not_an_image", "truncated.jpg": "truncated"}


def test_near_duplicates_collapse_to_one(prepared):
    storage, _, truth, _ = prepared
    paintings = pd.read_parquet(storage / "dataset" / "paintings.parquet")
    name_of = {row.painting_id: Path(row.path).name for row in paintings.itertuples()}
    copies = truth[truth["defect"].str.startswith("near_duplicate_of:")]
    assert len(copies) == 3
    for copy in copies.itertuples():
        original = copy.defect.split(":", 1)[1].split("|")[0]
        rows = paintings[paintings["path"].map(lambda p: Path(p).name).isin([copy.file, original])]
        assert rows["dup_cluster"].nunique() == 1, f"{copy.file} not clustered with {original}"
        kept = rows[rows["is_representative"]]
        assert len(kept) == 1
        # The coloured original wins over a grayscale copy; otherwise the larger image wins.
        if "grayscale" in copy.defect:
            assert name_of[kept["painting_id"].iat[0]] == original
        else:
            assert kept["pixels"].iat[0] == rows["pixels"].max()


def test_planted_defects_are_filtered(prepared):
    storage, _, truth, _ = prepared
    paintings = pd.read_parquet(storage / "dataset" / "paintings.parquet")
    tiles = pd.read_parquet(storage / "assets" / "painting_tiles.parquet")
    id_of = {Path(row.path).name: row.painting_id for row in paintings.itertuples()}
    expected_filter = {"seal": "seal", "inscription": "inscription", "watermark": "watermark",
                       "padding_bar": "padding", "blank_margin": "blank"}
    for row in truth[truth["defect"].isin(expected_filter)].itertuples():
        mine = tiles[tiles["painting_id"] == id_of[row.file]]
        reasons = ",".join(mine["rejected_by"])
        assert expected_filter[row.defect] in reasons or (
            row.defect == "blank_margin" and "blur" in reasons), f"{row.file} ({row.defect}): {reasons!r}"


def test_pairs_are_luma_exact_and_aligned(prepared):
    storage, _, _, _ = prepared
    tiles = pd.read_parquet(storage / "dataset" / "tiles.parquet")
    row = tiles.iloc[0]
    color = imaging.decode_image(storage / row.color_path)
    gray = imaging.decode_image(storage / row.gray_path)
    assert color.shape == (TILE, TILE, 3)
    np.testing.assert_array_equal(imaging.luma_bt601(color), gray[:, :, 0])


def test_pix2pix_export_layout(prepared):
    storage, _, _, _ = prepared
    tiles = pd.read_parquet(storage / "dataset" / "tiles.parquet")
    export = storage / "dataset" / "pix2pix_aligned"
    for split, folder in curation.PIX2PIX_FOLDER_OF_SPLIT.items():
        files = sorted((export / folder).glob("*.png"))
        assert len(files) == int((tiles["split"] == split).sum())
    sample = imaging.decode_image(next((export / "train").glob("*.png")))
    assert sample.shape == (TILE, 2 * TILE, 3)


def test_rerun_after_adding_paintings_reuses_work(prepared, tmp_path):
    storage, raw, _, _ = prepared
    # Work on a copy so the module's other tests keep their storage.
    storage2, raw2 = tmp_path / "storage", tmp_path / "raw"
    shutil.copytree(storage, storage2)
    shutil.copytree(raw, raw2)
    before = pd.read_parquet(storage2 / "dataset" / "paintings.parquet")
    split_before = dict(zip(before["painting_id"], before["split"]))
    tile_files = sorted((storage2 / "dataset" / "tiles").rglob("*_color.png"))
    mtimes = {p: p.stat().st_mtime_ns for p in tile_files}

    rng = np.random.default_rng(123)
    extra = demo.render_landscape(400, 500, rng, "blue_green")
    imaging.save_image(raw2 / "added_later.png", extra)
    result = _materialize(storage2, raw2)
    assert result.success
    after = pd.read_parquet(storage2 / "dataset" / "paintings.parquet")
    assert len(after) == len(before) + 1
    # Old paintings keep their split (stable split) and their tile files are not rewritten.
    for pid, split in split_before.items():
        assert after.set_index("painting_id").at[pid, "split"] == split
    assert all(p.stat().st_mtime_ns == mtimes[p] for p in tile_files if p.exists())


def test_dagster_cli_executes_prepare_dataset(tmp_path):
    """The README's job command, on the embedded demo data, with the environment settings."""
    env = {**os.environ, "LPD_STORAGE": str(tmp_path / "storage"), "DAGSTER_HOME": str(tmp_path / "home")}
    env.pop("LPD_RAW_DIR", None)
    (tmp_path / "home").mkdir()
    dagster = Path(sys.executable).with_name("dagster")
    completed = subprocess.run(
        [str(dagster), "job", "execute", "-m", "lpd_pipeline", "-j", "prepare_dataset"],
        cwd=Path(__file__).resolve().parents[1], env=env, capture_output=True, text=True, timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    tiles = pd.read_parquet(tmp_path / "storage" / "dataset" / "tiles.parquet")
    assert len(tiles) > 20
    assert (tiles["size"] == 256).all()


def test_empty_source_fails_clearly_and_keeps_the_previous_dataset(prepared, tmp_path):
    storage, _, _, _ = prepared
    storage2 = tmp_path / "storage"
    shutil.copytree(storage, storage2)
    exported = sorted((storage2 / "dataset" / "pix2pix_aligned").rglob("*.png"))
    empty = tmp_path / "empty_raw"
    empty.mkdir()
    result = dg.materialize([*DATASET_ASSETS, *DATASET_CHECKS], resources=_resources(storage2, empty),
                            raise_on_error=False)
    assert not result.success
    failure = next(event for event in result.all_events if event.is_step_failure)
    message = str(failure.step_failure_data.error)
    assert "no usable painting" in message and str(empty) in message
    assert sorted((storage2 / "dataset" / "pix2pix_aligned").rglob("*.png")) == exported


def test_a_run_without_sources_never_replaces_real_paintings_with_the_demo(prepared, tmp_path):
    storage, _, _, _ = prepared
    storage2 = tmp_path / "storage"
    shutil.copytree(storage, storage2)
    tiles_before = (storage2 / "dataset" / "tiles.parquet").read_bytes()
    resources = {**_resources(storage2, tmp_path), "painting_sources": PaintingSourcesResource()}  # no source
    result = dg.materialize([*DATASET_ASSETS, *DATASET_CHECKS], resources=resources, raise_on_error=False)
    assert not result.success
    failure = next(event for event in result.all_events if event.is_step_failure)
    assert "refusing to replace it with the demo paintings" in str(failure.step_failure_data.error)
    assert (storage2 / "dataset" / "tiles.parquet").read_bytes() == tiles_before
