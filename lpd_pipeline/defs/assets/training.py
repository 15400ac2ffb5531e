"""Training assets: one pix2pix run per generator backbone, launched as its own process through Dagster Pipes.

The same entrypoint (``python -m lpd_pipeline.train``) runs standalone, under torchrun or on a cluster; here it
reports progress, losses and checkpoints back as logs and metadata. Materializing again continues from the
newest checkpoint unless ``restart`` is set.
"""


import base64
import sys
from typing import Any

import dagster as dg
from dagster._core.errors import DagsterPipesExecutionError  # not re-exported at the top level
import pandas as pd

from lpd_pipeline.defs.assets.dataset import tile_pairs
from lpd_pipeline.defs.resources import StorageResource
from lpd_pipeline.files import write_text_atomic
from lpd_pipeline.defs.partitions import VARIANT_PARTITIONS
from lpd_pipeline.models.options import parse_variant
from lpd_pipeline.training.config import TrainConfig
from lpd_pipeline.training.report import loss_curve_png

BACKBONES = VARIANT_PARTITIONS  # the partition key is the model variant (backbone, or backbone-colour space)
GPU_POOL = "gpu"


_PAPER = TrainConfig()  # the one source of the defaults below


class TrainingRunConfig(dg.Config):
    """Run config of one training (defaults: the paper's schedule). Any other TrainConfig field goes in ``extra``."""

    color_space: str = _PAPER.color_space
    n_epochs: int = _PAPER.n_epochs
    n_epochs_decay: int = _PAPER.n_epochs_decay
    batch_size: int = _PAPER.batch_size
    checkpoint_every: int = _PAPER.checkpoint_every
    keep_every: int = 0  # 0 keeps every checkpoint (so each epoch can be scored later)
    ngf: int = _PAPER.ngf
    ndf: int = _PAPER.ndf
    device: str = _PAPER.device
    amp: str = _PAPER.amp
    channels_last: bool = _PAPER.channels_last
    compile: bool = _PAPER.compile
    restart: bool = False
    max_epochs_this_run: int = 0  # 0: train to the end of the schedule
    launcher: list[str] = []  # e.g. ["torchrun", "--nproc-per-node", "4"]; default: this Python
    extra: dict[str, Any] = {}

    def train_config(self, backbone: str, tile_size: int) -> dict[str, Any]:
        values = self.model_dump(exclude={"restart", "max_epochs_this_run", "launcher", "extra"})
        values["keep_every"] = values["keep_every"] or None
        return {**values, **self.extra, "backbone": backbone, "tile_size": tile_size}


@dg.asset(
    group_name="training",
    kinds={"pytorch"},
    partitions_def=BACKBONES,
    deps=[tile_pairs],
    pool=GPU_POOL,
    io_manager_key="parquet_io_manager",
)
def trained_generator(
    context: dg.AssetExecutionContext,
    config: TrainingRunConfig,
    storage: StorageResource,
    pipes_subprocess_client: dg.PipesSubprocessClient,
) -> dg.Output[pd.DataFrame]:
    """pix2pix (70×70 PatchGAN, cGAN + λ·L1) for one generator backbone. Value: the checkpoint table."""
    variant = context.partition_key
    backbone, color_space = parse_variant(variant)
    if config.color_space not in ("rgb", color_space):
        raise dg.Failure(description=f"run config color_space={config.color_space!r} contradicts the partition "
                                     f"{variant!r} (colour space {color_space!r}): choose the partition instead")
    config = config.model_copy(update={"color_space": color_space})
    layout = storage.layout()
    tiles_path = layout.dataset_dir / "tiles.parquet"
    if not tiles_path.exists():
        raise FileNotFoundError(f"{tiles_path} is missing: materialize tile_pairs (job prepare_dataset) first")
    from lpd_pipeline.training.data import train_tile_size  # imports torch: only when training runs

    tile_size = train_tile_size(tiles_path)  # one size, a non-empty train split: checked, with the reason
    run_dir = layout.training_dir(variant)
    launcher = list(config.launcher) or [sys.executable]
    # `python -m` and `torchrun -m` take the module the same way.
    command = [*launcher, "-m", "lpd_pipeline.train", "--storage", str(layout.root), "--tiles", str(tiles_path),
               "--run-dir", str(run_dir), "--backbone", backbone]
    if config.restart:
        command.append("--restart")
    if config.max_epochs_this_run:
        command += ["--max-epochs-this-run", str(config.max_epochs_this_run)]
    # Settings go in a file on the command line, so every torchrun rank reads the same ones.
    settings = TrainConfig.from_dict(config.train_config(backbone, tile_size))
    settings_path = write_text_atomic(run_dir / "dagster_run_config.json", settings.to_json())
    command += ["--config-json", str(settings_path)]
    error_file = run_dir / "last_error.txt"
    error_file.unlink(missing_ok=True)
    command += ["--error-file", str(error_file)]
    context.log.info(f"launching: {' '.join(command)}")
    try:
        invocation = pipes_subprocess_client.run(context=context, command=command)
    except DagsterPipesExecutionError as exc:
        if not error_file.exists():
            raise
        # The training refused with a reason (changed data, bad settings...): make it the step's failure.
        raise dg.Failure(description=f"training did not start or stopped: {error_file.read_text()}") from exc
    reported: dict[str, Any] = {}
    for result in invocation.get_results():
        reported.update(result.metadata or {})

    table = _checkpoint_table(run_dir)
    metadata: dict[str, Any] = {**reported, "checkpoints": len(table)}
    history = _history(run_dir)
    if len(history):
        png = loss_curve_png(history, f"{backbone} ({config.color_space})")
        metadata["loss_curve"] = dg.MetadataValue.md(
            f"![loss curve](data:image/png;base64,{base64.b64encode(png).decode('ascii')})")
    return dg.Output(table, metadata=metadata)


def _checkpoint_table(run_dir) -> pd.DataFrame:
    from lpd_pipeline.training.checkpoints import read_checkpoint_table

    return read_checkpoint_table(run_dir)


def _history(run_dir) -> pd.DataFrame:
    from lpd_pipeline.training.checkpoints import read_loss_history

    return read_loss_history(run_dir)

