"""``python -m lpd_pipeline.train``: train pix2pix on the tiles table; standalone, under torchrun or Dagster Pipes.

Examples::

    python -m lpd_pipeline.train --storage storage --backbone unet256
    torchrun --nproc-per-node 4 -m lpd_pipeline.train --storage storage --backbone resnet9 --batch-size 4
    python -m lpd_pipeline.train --config-json run.json --restart

Settings are layered: TrainConfig defaults < ``--config-json`` < explicit command-line flags. Settings travel on
the command line (not in Pipes extras) so that every torchrun rank, not only the one talking to Dagster, sees
them. Re-running continues from the newest checkpoint in the run directory unless ``--restart``. The flags of the
training section are generated from TrainConfig's fields. A refusal (bad settings, other data, ...) exits with
status 2 and the reason on stderr; under Dagster Pipes it is raised inside the Pipes session first, which reports
it to the launching step.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from pathlib import Path
from typing import Any, Sequence

from lpd_pipeline.models.options import variant_key
from lpd_pipeline.models.recipes import recipe_of
from lpd_pipeline.settings import StorageLayout
from lpd_pipeline.training.config import ConfigError, TrainConfig

log = logging.getLogger("lpd_pipeline.train")
PROG = "python -m lpd_pipeline.train"


def build_parser() -> argparse.ArgumentParser:
    """The launcher options, then one flag per TrainConfig field (generated from the fields, defaults shown)."""
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("--storage", type=Path, default=None,
                        help="storage root (default: $LPD_STORAGE or ./storage)")
    parser.add_argument("--tiles", type=Path, default=None,
                        help="tiles table (default: <storage>/dataset/tiles.parquet)")
    parser.add_argument("--run-dir", type=Path, default=None,
                        help="checkpoints and logs (default: <storage>/training/<backbone>[-<color space>])")
    parser.add_argument("--config-json", type=Path, default=None, help="a TrainConfig as JSON (see TrainConfig)")
    parser.add_argument("--restart", action="store_true",
                        help="start over; the previous checkpoints and outputs move to <run dir>/previous_runs/<time>/")
    parser.add_argument("--max-epochs-this-run", type=int, default=None,
                        help="stop after this many epochs (a checkpoint is written); rerun to continue")
    group = parser.add_argument_group("training config (TrainConfig fields; unset flags keep the lower layers)")
    TrainConfig.add_cli_arguments(
        group, default_text={"tile_size": "the size of the training tiles in the tiles table"})
    return parser


def resolve_config(args: argparse.Namespace) -> TrainConfig:
    """Layer defaults < --config-json < explicit flags into one validated TrainConfig."""
    base = None
    if args.config_json is not None:
        try:
            text = Path(args.config_json).read_text()
        except OSError as exc:
            raise ConfigError(f"cannot read --config-json {args.config_json}: {exc}") from exc
        try:
            base = TrainConfig.from_json(text)
        except ConfigError as exc:
            raise ConfigError(f"{args.config_json}: {exc}") from exc
    return TrainConfig.from_cli(args, base=base)


def default_run_dir(storage: Path, config: TrainConfig) -> Path:
    """The variant's run directory, ``StorageLayout.training_dir(variant)``: the recipe the settings follow
    (models/recipes.py), else ``variant_key(backbone, color_space)``; the one naming rule, which the Dagster asset
    uses through the partition key (runs of different variants never mix)."""
    variant = recipe_of(config.to_dict()) or variant_key(config.backbone, config.color_space)
    return StorageLayout(storage).training_dir(variant)


def _is_rank_zero() -> bool:
    return os.environ.get("RANK", "0") == "0"


def _open_pipes():
    """The Dagster Pipes context when launched by a Pipes client (rank 0 only under torchrun), else None.

    dagster_pipes (the light protocol library, not dagster) is imported only in that case.
    """
    if not _is_rank_zero():
        return None
    # Pipes clients announce themselves through this variable; without it, run standalone (a cluster node
    # need not have dagster_pipes installed at all).
    if not os.environ.get("DAGSTER_PIPES_CONTEXT"):
        return None
    try:
        from dagster_pipes import PipesEnvVarParamsLoader, open_dagster_pipes
    except ImportError as exc:
        raise RuntimeError("launched by a Dagster Pipes client but dagster_pipes is not installed: "
                           "pip install dagster-pipes") from exc
    if not PipesEnvVarParamsLoader().is_dagster_pipes_process():
        return None
    return open_dagster_pipes()


class _PipesLogHandler(logging.Handler):
    """Forwards this process's log records to Dagster through Pipes, at their level."""

    def __init__(self, pipes) -> None:
        super().__init__(level=logging.INFO)
        self.pipes = pipes

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = self.format(record)
            if record.levelno >= logging.ERROR:
                self.pipes.log.error(message)
            elif record.levelno >= logging.WARNING:
                self.pipes.log.warning(message)
            else:
                self.pipes.log.info(message)
        except Exception:  # a logging handler must never raise into the training
            self.handleError(record)


@contextlib.contextmanager
def _logs_through(pipes):
    """While launched by Dagster, log lines go to Dagster only (once), not also to this process's stderr, which
    the launcher shows too. (A crash's traceback still reaches stderr: Python prints it, not logging.)"""
    root = logging.getLogger()
    handler = _PipesLogHandler(pipes)
    handler.setFormatter(logging.Formatter("%(message)s"))
    stderr_handlers = [h for h in root.handlers if isinstance(h, logging.StreamHandler)]
    previous = [h.level for h in stderr_handlers]
    for h in stderr_handlers:
        h.setLevel(logging.CRITICAL + 1)
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
        for h, level in zip(stderr_handlers, previous):
            h.setLevel(level)


def materialization_metadata(result, config: TrainConfig) -> dict[str, Any]:
    """Metadata for the Dagster materialization: counts, best/last losses, paths."""
    from lpd_pipeline.training.checkpoints import read_checkpoint_table

    table = read_checkpoint_table(result.run_dir)
    meta: dict[str, Any] = {
        "backbone": config.backbone,
        "color_space": config.color_space,
        "epochs_completed": result.epochs_completed,
        "total_epochs": result.total_epochs,
        "finished": result.finished,
        "checkpoint_count": len(result.checkpoints),
        "run_dir": {"raw_value": str(result.run_dir), "type": "path"},
        "config": {"raw_value": config.to_dict(), "type": "json"},
    }
    if result.checkpoints:
        meta["last_checkpoint"] = {"raw_value": str(result.checkpoints[-1]), "type": "path"}
    if result.generator_path:
        meta["generator_path"] = {"raw_value": str(result.generator_path), "type": "path"}
    if result.table_path:
        meta["checkpoint_table"] = {"raw_value": str(result.table_path), "type": "path"}
    if result.history:
        last = result.history[-1]
        for name in ("G_GAN", "G_L1", "D_real", "D_fake"):
            meta[f"last_{name}"] = float(last[name])
        best = min(result.history, key=lambda r: r["G_L1"])
        meta["best_G_L1"] = float(best["G_L1"])
        meta["best_G_L1_epoch"] = int(best["epoch"])
        meta["last_img_per_s"] = float(last["img_per_s"])
        meta["wall_time_s"] = float(last["wall_time_s"])
    if not table.empty:
        meta["checkpoint_epochs"] = {"raw_value": [int(e) for e in table["epoch"]], "type": "json"}
    return meta


def run(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv``, train, report; returns the process exit status."""
    from lpd_pipeline.training.checkpoints import CheckpointError
    from lpd_pipeline.training.data import DataError
    from lpd_pipeline.training.loop import TrainingError, train

    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    if not _is_rank_zero():
        logging.getLogger().setLevel(logging.WARNING)

    try:
        with contextlib.ExitStack() as stack:
            pipes = _open_pipes()
            if pipes is not None:
                # Closing the session reports an exception raised inside it (class, message, traceback) to
                # Dagster: that is how a refusal reaches the launching step (see defs/assets/training.py).
                stack.enter_context(pipes)
                stack.enter_context(_logs_through(pipes))
            return _run_training(args, pipes, train)
    except (ConfigError, DataError, CheckpointError, TrainingError, FileNotFoundError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2


def _run_training(args: argparse.Namespace, pipes, train) -> int:
    from lpd_pipeline.settings import default_storage_root
    from lpd_pipeline.training.data import train_tile_size

    config = resolve_config(args)
    storage = (args.storage or default_storage_root()).resolve()
    tiles = (args.tiles or storage / "dataset" / "tiles.parquet").resolve()
    if not hasattr(args, "tile_size") and args.config_json is None:
        # Nobody chose a tile size: train on the tiles as they were cut (as the Dagster asset does).
        config = config.replace(tile_size=train_tile_size(tiles))
    run_dir = (args.run_dir or default_run_dir(storage, config)).resolve()

    result = train(config, tiles, storage, run_dir, restart=args.restart,
                   max_epochs_this_run=args.max_epochs_this_run)
    summary = (f"trained {config.backbone}/{config.color_space}: {result.epochs_completed}/{result.total_epochs} "
               f"epochs, {len(result.checkpoints)} checkpoint(s) in {result.run_dir}")
    if _is_rank_zero():
        log.info(summary)
    if pipes is not None:
        pipes.report_asset_materialization(metadata=materialization_metadata(result, config))
    return 0


def main(argv: Sequence[str] | None = None) -> None:
    sys.exit(run(argv))


if __name__ == "__main__":
    main()
