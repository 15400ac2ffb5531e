"""colorized_masterpieces: every test_ink painting (whole) + configured ones, per variant with a checkpoint."""

from __future__ import annotations

import dagster as dg
import numpy as np
import pandas as pd
from PIL import Image

from lpd_pipeline import imaging
from lpd_pipeline.defs.assets.rendering import colorized_masterpieces, masterpieces_table_path
from lpd_pipeline.defs.resources import ParquetIOManager, StorageResource
from lpd_pipeline.settings import StorageLayout

from lpd_pipeline_tests.test_render import painting, write_export


def _dataset(root, tmp_path):
    rows = []
    for i, (split, kind) in enumerate([("test_ink", "ink"), ("train", "colored"), ("test_ink", "ink"),
                                       ("test_color", "colored")]):
        path = tmp_path / "raw" / f"p{i}.png"
        imaging.save_image(path, np.dstack([painting(48 + 8 * i, 70, seed=i)] * 3))
        rows.append({"painting_id": f"pid{i}", "path": str(path), "title": f"Title *{i}* <b>", "artist": "A",
                     "source": "local", "license": "CC0", "kind": kind, "split": split})
    (root / "dataset").mkdir()
    pd.DataFrame(rows).to_parquet(root / "dataset" / "paintings.parquet")


def _materialize(root, config=None):
    storage = StorageResource(storage_root=str(root))
    return dg.materialize(
        [colorized_masterpieces],
        resources={"storage": storage, "parquet_io_manager": ParquetIOManager(storage=storage)},
        run_config={"ops": {"colorized_masterpieces": {"config": config or {}}}},
        instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)


def test_renders_test_ink_paintings_for_variants_with_a_checkpoint(storage_root, tmp_path):
    _dataset(storage_root, tmp_path)
    write_export(storage_root / "training" / "unet256" / "generator.pt", "unet256", tile=32, epoch=4)
    extra = tmp_path / "scroll.png"
    imaging.save_image(extra, painting(40, 150, seed=9))
    result = _materialize(storage_root, {"extra_paintings": [str(extra)], "render": {"batch_size": 4}})
    assert result.success
    table = pd.read_parquet(masterpieces_table_path(StorageLayout(storage_root)))
    assert sorted(table["painting_id"]) == sorted(["pid0", "pid2", imaging.content_hash(extra)])
    assert set(table["variant"]) == {"unet256"} and set(table["epoch"]) == {4}
    assert set(table["checkpoint_source"]) == {"export"}
    for row in table.itertuples():
        assert row.output_path == str(storage_root.resolve() / "renders" / "unet256" / f"{row.painting_id}.png")
        with Image.open(row.output_path) as image:
            assert image.size == (row.width, row.height) and image.text["lpd:machine-colorized"] == "true"
        assert imaging.decode_image(row.preview_path).shape[2] == 3
    materialization = result.asset_materializations_for_node("colorized_masterpieces")[0]
    metadata = materialization.metadata
    assert metadata["variants_skipped"].value == "resnet9, unet256-colour"  # no checkpoint: skipped, a warning
    assert metadata["preview"].value.startswith("![ink \\| colorized")
    assert "<b>" not in metadata["preview"].value  # titles escaped (the alt text and the list under the image)

    # A second run reuses complete renders made with the same checkpoint and settings.
    mtimes = {p: p.stat().st_mtime_ns for p in (storage_root / "renders" / "unet256").glob("*.png")}
    assert _materialize(storage_root, {"extra_paintings": [str(extra)], "render": {"batch_size": 4}}).success
    assert {p: p.stat().st_mtime_ns for p in mtimes} == mtimes
    # Other settings: rendered again.
    assert _materialize(storage_root, {"render": {"overlap": 0.25}}).success
    assert len(pd.read_parquet(masterpieces_table_path(StorageLayout(storage_root)))) == 2
    # A retrained run writes new weights under the same file name: rendered again, not the old pictures reused.
    mtimes = {p: p.stat().st_mtime_ns for p in (storage_root / "renders" / "unet256").glob("pid*.png")}
    write_export(storage_root / "training" / "unet256" / "generator.pt", "unet256", tile=32, epoch=5)
    assert _materialize(storage_root, {"render": {"overlap": 0.25}}).success
    table = pd.read_parquet(masterpieces_table_path(StorageLayout(storage_root)))
    assert set(table["epoch"]) == {5} and table["checkpoint_sha256"].nunique() == 1
    assert all(p.stat().st_mtime_ns != mtime for p, mtime in mtimes.items())


def test_bad_painting_is_reported_and_the_others_render(storage_root, tmp_path):
    _dataset(storage_root, tmp_path)
    (tmp_path / "raw" / "p2.png").write_bytes(b"not a png")
    write_export(storage_root / "training" / "resnet9" / "generator.pt", "resnet9", tile=32)
    result = _materialize(storage_root, {"variants": ["resnet9"]})
    assert result.success
    metadata = result.asset_materializations_for_node("colorized_masterpieces")[0].metadata
    assert metadata["failures"].value == 1 and metadata["renders"].value == 1
    bad = _materialize(storage_root, {"variants": ["vgg"]})
    assert not bad.success
