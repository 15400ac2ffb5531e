"""Jobs: prepare_dataset (raw paintings -> curated pairs), train_models (per variant) and full_pipeline (all)."""

import dagster as dg

from lpd_pipeline.defs.cluster import job_executor
from lpd_pipeline.defs.partitions import VARIANT_PARTITIONS
from lpd_pipeline.defs.stages import CURATE, INGEST, TRAIN
from lpd_pipeline.models.options import MAIN_VARIANTS, PAPER_VARIANTS, VARIANTS

if VARIANTS[:len(MAIN_VARIANTS)] != MAIN_VARIANTS or MAIN_VARIANTS[:len(PAPER_VARIANTS)] != PAPER_VARIANTS:
    raise ValueError("the paper's variants, then the colour-quality one, must come first in VARIANTS: their "
                     "partition ranges are PAPER_RANGE_TAGS and MAIN_RANGE_TAGS")

# Run tag that the instance config (config/dagster.yaml) limits to one in-progress run.
DATASET_WRITER_TAG = "lpd/writes"

prepare_dataset = dg.define_asset_job(
    "prepare_dataset",
    selection=dg.AssetSelection.groups(INGEST, CURATE),
    description="Ingest, dedup, tile, filter, pair and split the paintings; export pix2pix's aligned layout.",
    # One process: the stages form a chain, and a subprocess per step would cost seconds of imports each.
    # (also on Kubernetes: CPU-only steps in the run's own pod, defs/cluster.py)
    executor_def=dg.in_process_executor,
    # Limited to one run at a time by config/dagster.yaml (runs queue behind each other).
    # dagster/max_runtime: with run monitoring (config/dagster.yaml) a dead run stops blocking the queue.
    tags={DATASET_WRITER_TAG: "dataset", "dagster/max_runtime": str(6 * 3600)},
)


train_models = dg.define_asset_job(
    "train_models",
    selection=dg.AssetSelection.groups(TRAIN),
    description="Train pix2pix for the model variant of the run (a partition, or a range of them in one run).",
)


# The whole mission in one run: prepare -> train -> evaluate -> render -> report. The model assets are partitioned
# by variant with a single-run backfill policy, so one run covers several variants: launch it with the partition
# range tags (``make demo`` does), e.g. --tags '{"dagster/asset_partition_range_start": "resnet9",
# "dagster/asset_partition_range_end": "unet256-colour"}' for the paper's two backbones and the colour-quality
# variant (MAIN_RANGE_TAGS), "unet256" as the end for the paper's two only, or one partition key.
# survey_results is left out: it scores answers that come back from people, later.
full_pipeline = dg.define_asset_job(
    "full_pipeline",
    selection=dg.AssetSelection.all() - dg.AssetSelection.assets("survey_results"),
    partitions_def=VARIANT_PARTITIONS,
    description="The whole chain for the variants of the run: ingest, curate, train, evaluate every checkpoint, "
                "choose the best, colorize the test paintings, publish the results page and the survey kit.",
    # One process: a subprocess per step would cost seconds of imports each; training runs in its own process
    # anyway (Pipes).
    executor_def=job_executor(dg.in_process_executor),  # on Kubernetes: a pod per step (defs/cluster.py)
    # It rewrites the dataset: queued behind (and ahead of) prepare_dataset runs, one at a time.
    tags={DATASET_WRITER_TAG: "dataset"},
)

# The partition ranges of the paper's two backbones and of those plus the colour-quality variant (VARIANTS lists
# them first, in this order), for one-run commands.
PAPER_RANGE_TAGS = {"dagster/asset_partition_range_start": PAPER_VARIANTS[0],
                    "dagster/asset_partition_range_end": PAPER_VARIANTS[-1]}
MAIN_RANGE_TAGS = {"dagster/asset_partition_range_start": MAIN_VARIANTS[0],
                   "dagster/asset_partition_range_end": MAIN_VARIANTS[-1]}
