"""Asset checks on the curated dataset (read from ``dataset/tiles.parquet``, its one copy): no leak across
splits, aligned pairs, grayscale = BT.601 luma."""


import dagster as dg
import pandas as pd

from lpd_pipeline.curation import validation
from lpd_pipeline.curation.previews import markdown_text
from lpd_pipeline.defs.assets.dataset import tile_pairs
from lpd_pipeline.defs.resources import CurationResource, StorageResource

MAX_LISTED = 20


def _result(problems: list[str], checked: int) -> dg.AssetCheckResult:
    listed = "\n".join(f"- {markdown_text(p)}" for p in problems[:MAX_LISTED])  # paths and ids from outside
    if len(problems) > MAX_LISTED:
        listed += f"\n- ... and {len(problems) - MAX_LISTED} more"
    return dg.AssetCheckResult(
        passed=not problems,
        metadata={"checked": checked, "problems": len(problems),
                  "details": dg.MetadataValue.md(listed or "All good.")},
    )


@dg.asset_check(asset=tile_pairs, blocking=True)
def no_leak_across_splits(storage: StorageResource, curation_settings: CurationResource) -> dg.AssetCheckResult:
    """No painting, work, near-duplicate painting cluster or near-duplicate tile appears in two splits."""
    layout = storage.layout()
    tiles = pd.read_parquet(layout.tiles_table)
    paintings = pd.read_parquet(layout.paintings_table)
    config = curation_settings.to_config()
    return _result(validation.split_leaks(paintings, tiles, config.tile_max_distance), len(tiles))


@dg.asset_check(asset=tile_pairs, blocking=True)
def pairs_aligned_and_luma_exact(storage: StorageResource) -> dg.AssetCheckResult:
    """Every pair exists, both tiles are size×size, each colour tile is its painting's crop at (x, y), and the
    grayscale tile is single-channel and equals the colour tile's BT.601 luma."""
    layout = storage.layout()
    tiles = pd.read_parquet(layout.tiles_table)
    paintings = pd.read_parquet(layout.paintings_table, columns=["painting_id", "path"])
    painting_paths = dict(zip(paintings["painting_id"], paintings["path"]))
    return _result(validation.pair_problems(tiles, layout.root, painting_paths=painting_paths), len(tiles))


DATASET_CHECKS = [no_leak_across_splits, pairs_aligned_and_luma_exact]
