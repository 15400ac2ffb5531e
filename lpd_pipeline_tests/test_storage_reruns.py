"""Issue 11.2-11.4 (and issue 7's storage-root bullet): one storage root, one copy of the dataset table, a killed
re-run never leaves the dataset pointing at deleted files, and a re-run leaves storage as a clean run would."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from lpd_pipeline import demo
from lpd_pipeline.defs.assets.dataset import DATASET_ASSETS, deduplicated_paintings, painting_tiles, raw_paintings
from lpd_pipeline.defs.checks import DATASET_CHECKS
from lpd_pipeline.defs.resources import CurationResource, PaintingSourcesResource, ParquetIOManager, StorageResource

TILE = 64
# Stricter than the defaults: drops a good share of the tiles the default run keeps, and every tile of some
# paintings (the demo paintings' sharpest tiles score -0.02 to -0.3 here).
STRICT = {"blur": -0.05}


def _resources(storage: Path, raw: Path, thresholds: dict | None = None) -> dict:
    storage_resource = StorageResource(storage_root=str(storage))
    return {
        "storage": storage_resource,
        "painting_sources": PaintingSourcesResource(raw_dir=str(raw)),
        "curation_settings": CurationResource(tile_size=TILE, stride=TILE, test_color_fraction=0.25, workers=1,
                                              thresholds=thresholds or {}),
        "parquet_io_manager": ParquetIOManager(storage=storage_resource),
    }


def _run(storage: Path, raw: Path, thresholds: dict | None = None, assets=None) -> None:
    selection = assets or [*DATASET_ASSETS, *DATASET_CHECKS]
    result = dg.materialize(selection, resources=_resources(storage, raw, thresholds))
    assert result.success


def _fingerprint(storage: Path) -> dict[str, str]:
    """Every file under dataset/ and assets/: the content hash of images and manifests, the row count of tables
    (their rows hold absolute paths and timings that differ between storages)."""
    found = {}
    for top in ("dataset", "assets"):
        for path in sorted((storage / top).rglob("*")):
            if not path.is_file():
                continue
            rel = path.relative_to(storage).as_posix()
            if path.suffix == ".parquet":
                found[rel] = f"{len(pd.read_parquet(path))} rows"
            else:
                found[rel] = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    return found


def now_kept_paintings(storage: Path) -> set[str]:
    tiles = pd.read_parquet(storage / "assets" / "painting_tiles.parquet")
    return set(tiles[tiles["rejected_by"] == ""]["painting_id"])


def _listed_files(storage: Path) -> list[Path]:
    tiles = pd.read_parquet(storage / "dataset" / "tiles.parquet")
    return [storage / rel for rel in (*tiles["color_path"], *tiles["gray_path"])]


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("raw")
    demo.generate_demo_paintings(folder, n_colored=6, n_ink=2, scale=0.3)
    return folder


@pytest.fixture(scope="module")
def finished(tmp_path_factory, raw) -> Path:
    storage = tmp_path_factory.mktemp("finished") / "storage"
    _run(storage, raw)
    return storage


def _copy(storage: Path, tmp_path: Path) -> Path:
    target = tmp_path / "storage"
    shutil.copytree(storage, target)
    return target


def test_the_dataset_table_has_one_copy(finished):
    assert (finished / "dataset" / "tiles.parquet").is_file()
    assert not (finished / "assets" / "tile_pairs.parquet").exists()


def test_a_killed_stricter_rerun_leaves_every_listed_pair_file_in_place(finished, raw, tmp_path):
    storage = _copy(finished, tmp_path)
    listed = _listed_files(storage)
    # The re-run gets as far as painting_tiles (it is killed before tile_pairs writes the new tables).
    _run(storage, raw, STRICT, assets=[raw_paintings, deduplicated_paintings, painting_tiles])
    now_rejected = pd.read_parquet(storage / "assets" / "painting_tiles.parquet").query("rejected_by != ''")
    tiles = pd.read_parquet(storage / "dataset" / "tiles.parquet")
    assert tiles["tile_id"].isin(now_rejected["tile_id"]).any(), "the stricter thresholds must drop listed tiles"
    all_dropped = set(tiles["painting_id"]) - set(now_kept_paintings(storage))
    assert all_dropped, "some listed painting must lose every tile (the empty-manifest case)"
    missing = [path for path in listed if not path.is_file()]
    assert missing == [], f"{len(missing)} files tiles.parquet lists were deleted, e.g. {missing[:3]}"
    # ... and none of them is damaged: each still matches its painting's pair manifest.
    for path in listed:
        hashes = json.loads((path.parent / "pairs.json").read_text())["sha256"]
        assert hashes[path.name] == hashlib.sha256(path.read_bytes()).hexdigest()
    # No manifest emptied on the way (a painting whose tiles are all dropped now keeps its files until then).
    assert all(json.loads(p.read_text())["sha256"] for p in (storage / "dataset" / "tiles").rglob("pairs.json"))


def test_the_completed_stricter_rerun_leaves_what_a_clean_run_leaves(finished, raw, tmp_path):
    storage = _copy(finished, tmp_path)
    _run(storage, raw, STRICT, assets=[raw_paintings, deduplicated_paintings, painting_tiles])  # killed run
    _run(storage, raw, STRICT)  # the next complete run
    clean = tmp_path / "clean"
    _run(clean, raw, STRICT)
    assert _fingerprint(storage) == _fingerprint(clean)
    assert all(path.is_file() for path in _listed_files(storage))
    assert all(json.loads(p.read_text())["sha256"] for p in (storage / "dataset" / "tiles").rglob("pairs.json"))


def test_paintings_removed_from_the_raw_folder_leave_nothing_behind(finished, raw, tmp_path):
    storage = _copy(finished, tmp_path)
    (storage / "assets" / "tile_pairs.parquet").write_bytes(b"an older layout's second copy")
    fewer = tmp_path / "raw"
    shutil.copytree(raw, fewer)
    paintings = pd.read_parquet(storage / "dataset" / "paintings.parquet")
    used = paintings[paintings["split"] != ""]["path"].map(lambda p: Path(p).name).tolist()
    removed = used[:3]
    for name in removed:
        (fewer / name).unlink()
    _run(storage, fewer)
    clean = tmp_path / "clean"
    _run(clean, fewer)
    assert _fingerprint(storage) == _fingerprint(clean)
    ids = set(pd.read_parquet(storage / "dataset" / "paintings.parquet")["painting_id"])
    assert {p.name for p in (storage / "dataset" / "tiles").iterdir()} <= ids


def test_run_config_storage_root_receives_every_output(raw, tmp_path):
    """``resources.storage.config.storage_root`` in run config, a different LPD_STORAGE in the environment:
    every output lands under the configured root, nothing under the environment's."""
    configured, environment, home = tmp_path / "configured", tmp_path / "from_env", tmp_path / "home"
    home.mkdir()
    run_config = tmp_path / "run.yaml"
    run_config.write_text(json.dumps({"resources": {
        "storage": {"config": {"storage_root": str(configured)}},
        "curation_settings": {"config": {"tile_size": TILE, "stride": TILE, "workers": 1}},
    }}))  # JSON is YAML
    env = {**os.environ, "LPD_STORAGE": str(environment), "LPD_RAW_DIR": str(raw), "DAGSTER_HOME": str(home)}
    dagster = Path(sys.executable).with_name("dagster")
    completed = subprocess.run(
        [str(dagster), "job", "execute", "-m", "lpd_pipeline", "-j", "prepare_dataset", "-c", str(run_config)],
        cwd=Path(__file__).resolve().parents[1], env=env, capture_output=True, text=True, timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert not environment.exists() or not any(environment.rglob("*")), sorted(environment.rglob("*"))[:10]
    for expected in ("dataset/tiles.parquet", "dataset/paintings.parquet", "dataset/rejections.parquet",
                     "assets/raw_paintings.parquet", "assets/deduplicated_paintings.parquet",
                     "assets/painting_tiles.parquet", "assets/pix2pix_aligned_export.parquet"):
        assert (configured / expected).is_file(), expected
    assert not (configured / "assets" / "tile_pairs.parquet").exists()
    assert len(pd.read_parquet(configured / "dataset" / "tiles.parquet")) > 0
