"""Jobs: prepare_dataset (raw paintings -> curated pairs) and train_models (one run per backbone)."""

import dagster as dg

# Run tag that the instance config (config/dagster.yaml) limits to one in-progress run.
DATASET_WRITER_TAG = "lpd/writes"

prepare_dataset = dg.define_asset_job(
    "prepare_dataset",
    selection=dg.AssetSelection.groups("dataset"),
    description="Ingest, dedup, tile, filter, pair and split the paintings; export pix2pix's aligned layout.",
    # One process: the stages form a chain, and a subprocess per step would cost seconds of imports each.
    executor_def=dg.in_process_executor,
    # Limited to one run at a time by config/dagster.yaml (runs queue behind each other).
    # dagster/max_runtime: with run monitoring (config/dagster.yaml) a dead run stops blocking the queue.
    tags={DATASET_WRITER_TAG: "dataset", "dagster/max_runtime": str(6 * 3600)},
)


train_models = dg.define_asset_job(
    "train_models",
    selection=dg.AssetSelection.groups("training"),
    description="Train pix2pix for each generator backbone (one run per partition: resnet9, unet256).",
)
