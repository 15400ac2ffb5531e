"""Asset checks on the curated dataset: no leak across splits, aligned pairs, grayscale = BT.601 luma."""


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
def no_leak_across_splits(
    tile_pairs: pd.DataFrame, storage: StorageResource, curation_settings: CurationResource
) -> dg.AssetCheckResult:
    """No painting, work, near-duplicate painting cluster or near-duplicate tile appears in two splits."""
    paintings = pd.read_parquet(storage.layout().dataset_dir / "paintings.parquet")
    config = curation_settings.to_config()
    return _result(validation.split_leaks(paintings, tile_pairs, config.tile_max_distance), len(tile_pairs))


@dg.asset_check(asset=tile_pairs, blocking=True)
def pairs_aligned_and_luma_exact(tile_pairs: pd.DataFrame, storage: StorageResource) -> dg.AssetCheckResult:
    """Every pair exists, both tiles are size×size, each colour tile is its painting's crop at (x, y), and the
    grayscale tile is single-channel and equals the colour tile's BT.601 luma."""
    paintings = pd.read_parquet(storage.layout().dataset_dir / "paintings.parquet", columns=["painting_id", "path"])
    painting_paths = dict(zip(paintings["painting_id"], paintings["path"]))
    return _result(validation.pair_problems(tile_pairs, storage.layout().root, painting_paths=painting_paths),
                   len(tile_pairs))


DATASET_CHECKS = [no_leak_across_splits, pairs_aligned_and_luma_exact]
