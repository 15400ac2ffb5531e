"""Helpers of the operations tests (re-execution, webserver): a tiny raw folder, the run config that points a run
at it, and a storage fault that fails prepare_dataset mid-way (after ingest and dedup, at the tiles)."""

from __future__ import annotations

from pathlib import Path

from lpd_pipeline import demo

TILE = 128
# The steps of prepare_dataset that run before the tile folder is first written, and those from there on.
BEFORE_TILES = {"raw_paintings", "deduplicated_paintings"}
FROM_TILES = {"painting_tiles", "tile_pairs", "pix2pix_aligned_export",
              # the asset checks on tile_pairs are steps of their own
              "tile_pairs_no_leak_across_splits", "tile_pairs_pairs_aligned_and_luma_exact"}


def tiny_raw_folder(folder: Path) -> Path:
    """Four small demo paintings (three coloured, one ink), no planted defects: a few seconds to curate."""
    demo.generate_demo_paintings(folder, seed=3, n_colored=3, n_ink=1, scale=0.4, with_defects=False)
    return folder


def prepare_run_config(raw: Path, storage: Path) -> dict:
    """prepare_dataset on ``raw`` into ``storage``, one worker process, 128 px tiles."""
    return {"resources": {
        "painting_sources": {"config": {"raw_dir": str(raw)}},
        "storage": {"config": {"storage_root": str(storage)}},
        "curation_settings": {"config": {"tile_size": TILE, "stride": TILE, "workers": 1}},
    }}


def block_tile_folder(storage: Path) -> Path:
    """A file where ``dataset/tiles/`` belongs (a storage fault, like a full or read-only disk): ingest and
    dedup succeed, ``painting_tiles`` fails writing its first score cache. Remove the file to repair."""
    blocker = storage / "dataset" / "tiles"
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("not a folder: a storage fault planted by a test\n")
    return blocker


def prepare_dataset_job():
    """The job as the definitions hold it (a module-level function, so ``dg.reconstructable`` can rebuild it)."""
    from lpd_pipeline.definitions import defs

    return defs.resolve_job_def("prepare_dataset")
