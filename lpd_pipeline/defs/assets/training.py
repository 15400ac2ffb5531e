"""Training assets: one pix2pix run per model variant, launched as its own process through Dagster Pipes.

The same entrypoint (``python -m lpd_pipeline.train``) runs standalone, under torchrun or on a cluster; here it
reports progress, losses and checkpoints back as logs and metadata. Materializing again continues from the
newest checkpoint unless ``restart`` is set.
"""


import base64
import sys
import warnings
from typing import Any

import dagster as dg
import pandas as pd
from pydantic import Field

from lpd_pipeline.defs.assets.dataset import tile_pairs
from lpd_pipeline.defs.cluster import GPU_POOL, K8S_CONFIG_TAG, TRAINING_STEP_K8S_CONFIG
from lpd_pipeline.defs.partitions import VARIANT_PARTITIONS, for_each_variant
from lpd_pipeline.defs.resources import StorageResource
from lpd_pipeline.defs.settings import settings_config
from lpd_pipeline.defs.stages import TRAIN, stage_options
from lpd_pipeline.files import write_text_atomic
from lpd_pipeline.models.options import parse_variant, variant_description
from lpd_pipeline.models.recipes import RECIPE_FIELDS, check_settings, recipe
from lpd_pipeline.training.config import TrainConfig
from lpd_pipeline.training.report import loss_curve_png


class TrainingRunConfig(settings_config(TrainConfig, exclude=(*RECIPE_FIELDS, "tile_size"))):
    """Run config of one training: every TrainConfig field (defaults: the paper's schedule) except the recipe's
    (backbone, colour space, quality options: the partition, a model variant, decides them; models/recipes.py)
    and the tile size (the tiles'), plus the run-only fields. The same values apply to every variant of a run."""

    restart: bool = Field(False, description="start over; the previous run moves to <run dir>/previous_runs/")
    max_epochs_this_run: int = Field(0, description="stop after this many epochs (0: train to the end)")
    launcher: list[str] = Field(
        default_factory=list,
        description='e.g. ["torchrun", "--nproc-per-node", "4"]; default: this Python')
    # Keys of earlier run configs, still accepted with a DeprecationWarning.
    color_space: str | None = Field(
        None, description="deprecated: the partition (model variant) sets the colour space")
    extra: dict[str, Any] = Field(
        default_factory=dict, description="deprecated: every TrainConfig field is a run-config field of its own")

    def train_config(self, variant: str, tile_size: int, log=None) -> TrainConfig:
        """The validated TrainConfig of this run on partition ``variant``: the paper's defaults, the variant's
        recipe, this run config (dg.Failure naming a bad field, or a recipe field set here)."""
        backbone, color_space = parse_variant(variant)
        if self.color_space is not None:
            if self.color_space != color_space and self.color_space != "rgb":
                raise dg.Failure(description=f"run config color_space={self.color_space!r} contradicts the partition "
                                             f"{variant!r} (colour space {color_space!r}): choose the partition instead")
            _deprecated(log, "run config key 'color_space' is deprecated and ignored: the partition (model variant "
                             f"{variant!r}) sets the colour space")
        extra = dict(self.extra)
        if extra:
            _deprecated(log, f"run config key 'extra' is deprecated: move {sorted(extra)} to run-config fields of "
                             "their own (every TrainConfig field is one)")
            for decided_elsewhere in ("backbone", "color_space", "tile_size"):  # by the partition and the tiles
                extra.pop(decided_elsewhere, None)
        try:
            check_settings(variant, extra)
        except ValueError as exc:
            raise dg.Failure(description=f"run config extra: {exc}") from None
        return self.settings(**{**extra, **recipe(variant).fields}, tile_size=tile_size)


def _deprecated(log, message: str) -> None:
    warnings.warn(message, DeprecationWarning, stacklevel=3)
    if log is not None:
        log.warning(message)  # in the run's log, where whoever saved the config will see it


@dg.asset(
    **stage_options(TRAIN),
    kinds={"pytorch"},
    partitions_def=VARIANT_PARTITIONS,  # the model variant: backbone, or backbone-colour space
    deps=[tile_pairs],
    pool=GPU_POOL,  # one slot per training across runs: the pool's limit is the number of GPUs
    op_tags={K8S_CONFIG_TAG: TRAINING_STEP_K8S_CONFIG},  # on Kubernetes: one GPU for this step (defs/cluster.py)
    # One run may train several variants one after the other (make demo, a single-run backfill in the UI).
    backfill_policy=dg.BackfillPolicy.single_run(),
)
def trained_generator(
    context: dg.AssetExecutionContext,
    config: TrainingRunConfig,
    storage: StorageResource,
    pipes_subprocess_client: dg.PipesSubprocessClient,
) -> dg.MaterializeResult:
    """pix2pix (70×70 PatchGAN, cGAN + λ·L1) per model variant. The checkpoint table each run writes
    (``<storage>/training/<variant>/checkpoints.parquet``) is what evaluation reads.

    A run over several partitions trains them one after the other; a variant that fails does not stop the others,
    and the step fails at the end naming each failure."""
    layout = storage.layout()
    tiles_path = layout.dataset_dir / "tiles.parquet"
    if not tiles_path.exists():
        raise FileNotFoundError(f"{tiles_path} is missing: materialize tile_pairs (job prepare_dataset) first")
    from lpd_pipeline.training.data import train_tile_size  # imports torch: only when training runs

    tile_size = train_tile_size(tiles_path)  # one size, a non-empty train split: checked, with the reason
    metadata = for_each_variant(
        context, "training",
        lambda variant: _train_variant(context, config, storage, pipes_subprocess_client, variant, tile_size))
    return dg.MaterializeResult(metadata=metadata)


def _train_variant(context: dg.AssetExecutionContext, config: TrainingRunConfig, storage: StorageResource,
                   pipes_subprocess_client: dg.PipesSubprocessClient, variant: str, tile_size: int
                   ) -> dict[str, Any]:
    """Train one variant in its own process (Pipes); the materialization metadata it reported."""
    layout = storage.layout()
    tiles_path = layout.dataset_dir / "tiles.parquet"
    settings = config.train_config(variant, tile_size, context.log)
    run_dir = layout.training_dir(variant)
    launcher = list(config.launcher) or [sys.executable]
    # `python -m` and `torchrun -m` take the module the same way.
    command = [*launcher, "-m", "lpd_pipeline.train", "--storage", str(layout.root), "--tiles", str(tiles_path),
               "--run-dir", str(run_dir), "--backbone", settings.backbone]
    if config.restart:
        command.append("--restart")
    if config.max_epochs_this_run:
        command += ["--max-epochs-this-run", str(config.max_epochs_this_run)]
    # Settings go in a file on the command line, so every torchrun rank reads the same ones.
    settings_path = write_text_atomic(run_dir / "dagster_run_config.json", settings.to_json())
    command += ["--config-json", str(settings_path)]
    context.log.info(f"launching: {' '.join(command)}")
    earlier = len(_exceptions_reported_through_pipes(context))  # by an earlier variant or attempt of this step
    try:
        invocation = pipes_subprocess_client.run(context=context, command=command)
    except Exception as exc:
        errors = _exceptions_reported_through_pipes(context)[earlier:]
        if not errors:
            raise
        refusal = errors[-1]
        # The training refused with a reason (changed data, bad settings...): make it the step's failure.
        raise dg.Failure(description=f"training did not start or stopped: {refusal}") from exc
    reported: dict[str, Any] = {}
    for result in invocation.get_results():
        reported.update(result.metadata or {})

    table = _checkpoint_table(run_dir)
    metadata: dict[str, Any] = {**reported, "recipe": variant_description(variant), "checkpoints": len(table)}
    history = _history(run_dir)
    if len(history):
        png = loss_curve_png(history, f"{variant} ({settings.backbone}, {settings.color_space})")
        metadata["loss_curve"] = dg.MetadataValue.md(
            f"![loss curve](data:image/png;base64,{base64.b64encode(png).decode('ascii')})")
    return metadata


def _exceptions_reported_through_pipes(context: dg.AssetExecutionContext) -> list[str]:
    """The messages of the exceptions training processes of this step closed their Pipes session with, in order.

    Pipes records such an exception (class, message, traceback) as an engine event of the step in the run's event
    log; the client itself only says that the process exited with a non-zero status.
    """
    step_key = str(context.op_execution_context.op_handle)  # the step of a plain asset is named by its op
    messages = []
    for entry in context.instance.all_logs(context.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
        event = entry.dagster_event
        data = event.engine_event_data if event is not None else None
        if event is None or event.step_key != step_key or data is None or data.error is None:
            continue
        if event.message and event.message.startswith("[pipes]"):
            message = data.error.message.strip()
            # "lpd_pipeline.training.loop.TrainingError: <reason>": the reason is what the user needs.
            messages.append(message.split(": ", 1)[1] if ": " in message.split("\n", 1)[0] else message)
    return messages


def _checkpoint_table(run_dir) -> pd.DataFrame:
    from lpd_pipeline.training.checkpoints import read_checkpoint_table

    return read_checkpoint_table(run_dir)


def _history(run_dir) -> pd.DataFrame:
    from lpd_pipeline.training.checkpoints import read_loss_history

    return read_loss_history(run_dir)

