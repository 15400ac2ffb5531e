"""Evaluation assets: score every checkpoint of a variant, choose the best, compare variants.

The work is done by lpd_pipeline.evaluation; these assets pass it the checkpoint table and settings and show the
result (metric table, sample sheet, refusals with their reasons, plots) as metadata. Partitioned by model
variant like ``trained_generator``, so a variant's evaluation maps to its own training one to one.
"""


import base64
import math
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd

from lpd_pipeline.curation.previews import markdown_text
from lpd_pipeline.defs.assets.dataset import tile_pairs
from lpd_pipeline.defs.assets.training import trained_generator
from lpd_pipeline.defs.automation import AFTER_UPSTREAM_UPDATE, AFTER_UPSTREAM_UPDATE_OF_VARIANT
from lpd_pipeline.defs.metadata import inline_table
from lpd_pipeline.defs.partitions import VARIANT_PARTITIONS, for_each_variant
from lpd_pipeline.defs.resources import StorageResource
from lpd_pipeline.defs.settings import settings_config
from lpd_pipeline.defs.stages import EVALUATE, stage_options
from lpd_pipeline.evaluation.settings import EvaluationSettings

GROUP = EVALUATE
_DEFAULTS = EvaluationSettings()  # the one source of the defaults below
BEST_CHECK = "best_checkpoint_usable"


_SCORING_FIELDS = ("device", "batch_size", "bootstrap", "seed", "sample_color_tiles", "sample_ink_tiles")


class CheckpointEvaluationConfig(settings_config(
        EvaluationSettings, exclude=tuple(set(EvaluationSettings.model_fields) - set(_SCORING_FIELDS)))):
    """How checkpoints are scored (fields of lpd_pipeline.evaluation.settings.EvaluationSettings)."""


class BestCheckpointConfig(settings_config(EvaluationSettings, exclude=_SCORING_FIELDS)):
    """How the best checkpoint is chosen and which checkpoints are kept afterwards (EvaluationSettings)."""


def _number(value: Any, digits: int) -> str:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return ""
    return f"{value:.{digits}f}" if math.isfinite(value) else ""


def _interval(row: pd.Series, name: str, digits: int) -> str:
    value, lo, hi = (_number(row.get(k), digits) for k in (name, f"{name}_lo", f"{name}_hi"))
    return f"{value} [{lo}, {hi}]" if value and lo and hi else value


METRIC_COLUMNS = ["epoch", "status", "FID [95%]", "KID [95%]", "LPIPS", "ΔE", "PSNR", "SSIM", "ΔCF", "ink FID",
                  "s", "reason"]


def _rows_table(rows: pd.DataFrame) -> dg.TableMetadataValue:
    """One row per checkpoint (shown inline on the asset page); a checkpoint not scored says why."""
    return inline_table(METRIC_COLUMNS, [
        [int(row["epoch"]), row["status"], _interval(row, "fid", 2), _interval(row, "kid", 4),
         _number(row["lpips"], 4), _number(row["delta_e"], 2), _number(row["psnr"], 2), _number(row["ssim"], 3),
         _number(row["delta_cf"], 2), _number(row["ink_fid"], 2), _number(row["wall_time_s"], 1),
         "" if row["status"] == "ok" else " ".join(str(row["reason"]).split())[:400]]
        for _, row in rows.iterrows()])


def _image_markdown(path: str, alt: str) -> str:
    """A saved picture inlined as a data URI (JPEG for photos of tiles, to keep the event log small)."""
    import cv2

    from lpd_pipeline import imaging

    rgb = imaging.decode_image(path)
    ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
    if not ok:
        raise ValueError(f"could not encode {path} for the asset metadata")
    return f"![{markdown_text(alt)}](data:image/jpeg;base64,{base64.b64encode(encoded.tobytes()).decode('ascii')})"


@dg.asset(
    **stage_options(EVALUATE),
    kinds={"pytorch", "parquet"},
    partitions_def=VARIANT_PARTITIONS,
    # The checkpoints and the test splits it scores them on (dataset/tiles.parquet, tile_pairs' table).
    deps=[trained_generator, tile_pairs],
    backfill_policy=dg.BackfillPolicy.single_run(),
    automation_condition=AFTER_UPSTREAM_UPDATE_OF_VARIANT,  # only with the lpd_automation sensor on
)
def checkpoint_evaluations(
    context: dg.AssetExecutionContext,
    config: CheckpointEvaluationConfig,
    storage: StorageResource,
) -> dg.MaterializeResult:
    """Every checkpoint of the variant scored on the test tiles (FID/KID with 95% intervals, LPIPS, ΔE, PSNR,
    SSIM, colourfulness; ink tiles: FID/KID vs real colour tiles, colourfulness). One row per checkpoint, cached
    by checkpoint content and test-set fingerprint: a new checkpoint evaluates only itself. The table lives in
    ``<storage>/evaluation/<variant>/evaluations.parquet``; its input is the training's checkpoint table."""
    from lpd_pipeline.evaluation import evaluate  # imports torch: only when the step runs
    from lpd_pipeline.training.checkpoints import read_checkpoint_table

    settings = config.settings()
    layout = storage.layout()

    def one(variant: str) -> dict[str, Any]:
        checkpoints = read_checkpoint_table(layout.training_dir(variant))
        if checkpoints.empty:
            raise dg.Failure(description=f"variant {variant!r} has no checkpoints: materialize trained_generator "
                                         f"(job train_models) for it first")
        try:
            run = evaluate.evaluate_checkpoints(layout, variant, checkpoints, settings,
                                                models_factory=evaluate.default_models, log_fn=context.log.info)
        except ValueError as exc:  # DataError, EvaluationError, CheckpointError: the message names file and reason
            raise dg.Failure(description=f"{variant}: {exc}") from exc
        rows = run.rows
        metadata: dict[str, Any] = {
            "evaluated": len(run.evaluated), "reused": len(run.reused), "skipped": len(run.skipped),
            "test_fingerprint": str(rows["test_fingerprint"].iloc[0])[:16] if len(rows) else "",
            "metrics": _rows_table(rows),
        }
        scored = rows[rows["status"] == "ok"]
        if len(scored):
            newest = scored.iloc[-1]
            metadata["sample_sheet"] = dg.MetadataValue.md(
                f"Epoch {int(newest['epoch'])}:\n\n{_image_markdown(newest['sample_sheet'], 'sample sheet')}")
            metadata["sample_sheet_path"] = dg.MetadataValue.path(str(newest["sample_sheet"]))
        return metadata

    return dg.MaterializeResult(metadata=for_each_variant(context, "evaluation", one))


@dg.asset(
    **stage_options(EVALUATE),
    partitions_def=VARIANT_PARTITIONS,
    deps=[checkpoint_evaluations],
    backfill_policy=dg.BackfillPolicy.single_run(),
    kinds={"json"},
    automation_condition=AFTER_UPSTREAM_UPDATE_OF_VARIANT,
    check_specs=[dg.AssetCheckSpec(BEST_CHECK, asset="best_checkpoint", blocking=True,
                                   description="the chosen checkpoint file exists and its metrics are finite")],
)
def best_checkpoint(
    context: dg.AssetExecutionContext,
    config: BestCheckpointConfig,
    storage: StorageResource,
):
    """The variant's best checkpoint by the configured rule (default: lowest FID; when its bootstrap interval
    overlaps others', the lowest LPIPS among those), written to ``evaluation/<variant>/best_checkpoint.json``
    for rendering. Then, if ``keep_every_epochs`` is set, evaluated checkpoints other than the best, the latest
    and every k-th epoch are deleted (never an unevaluated one)."""
    from lpd_pipeline.evaluation import retention, selection, store

    settings = config.settings()
    layout = storage.layout()
    checks: list[dg.AssetCheckResult] = []

    def one(variant: str) -> dict[str, Any]:
        evaluations = store.read_evaluations(layout, variant)
        choice = selection.choose_best(evaluations, settings.selection_rule)
        if choice is None:
            reasons = "; ".join(f"epoch {int(r['epoch'])}: {r['reason']}"
                                for _, r in evaluations.iterrows() if r["status"] != "ok")
            raise dg.Failure(description=f"no checkpoint of {variant!r} could be scored"
                                         f"{' (' + reasons + ')' if reasons else ''}; best_checkpoint.json unchanged")
        record = selection.best_record(variant, choice, settings.selection_rule)
        path = store.write_best_checkpoint(layout, variant, record)
        deleted = retention.apply_evaluated_retention(layout.training_dir(variant), evaluations,
                                                      record["checkpoint"], settings.keep_every_epochs)
        if deleted:
            context.log.info(f"{variant}: evaluation-aware retention deleted {len(deleted)} checkpoint(s): "
                             f"{', '.join(p.name for p in deleted)}")
        context.log.info(f"{variant}: best checkpoint epoch {record['epoch']} ({record['chosen_by']})")
        metadata: dict[str, Any] = {
            "epoch": record["epoch"], "checkpoint": dg.MetadataValue.path(record["checkpoint"]),
            "rule": record["rule"], "chosen_by": record["chosen_by"], "record": dg.MetadataValue.path(str(path)),
            "checkpoints_deleted": len(deleted),
            **{k: record[k] for k in ("fid", "fid_lo", "fid_hi", "kid", "lpips", "delta_e", "delta_cf")
               if record[k] is not None},
        }
        if record["sample_sheet"]:
            metadata["sample_sheet"] = dg.MetadataValue.md(_image_markdown(record["sample_sheet"], "sample sheet"))
        return metadata

    metadata = for_each_variant(context, "best-checkpoint choice", one)
    # One check result covers the run's partitions: it fails when any variant's record is unusable.
    checks.append(_best_check(layout, list(context.partition_keys)))
    return dg.MaterializeResult(metadata=metadata, check_results=checks)


def _best_check(layout, variants: list[str]) -> dg.AssetCheckResult:
    from lpd_pipeline.evaluation import store

    problems = []
    for variant in variants:
        try:
            record = store.read_best_checkpoint(layout, variant)
        except store.EvaluationError as exc:
            problems.append(str(exc))
            continue
        if record is None:
            problems.append(f"{store.best_path(layout, variant)} was not written")
            continue
        if not Path(record["checkpoint"]).is_file():
            problems.append(f"{variant}: the chosen checkpoint {record['checkpoint']} does not exist")
        bad = [k for k in ("fid", "kid", "lpips", "delta_e", "psnr", "ssim", "delta_cf")
               if not store.finite(record.get(k))]
        if bad:
            problems.append(f"{variant}: non-finite metric(s) {bad} for {record['checkpoint']}")
    return dg.AssetCheckResult(
        check_name=BEST_CHECK, passed=not problems,
        metadata={"variants": ", ".join(variants),
                  "details": dg.MetadataValue.md("\n".join(f"- {markdown_text(p)}" for p in problems)
                                                 or "All good.")})


@dg.asset(**stage_options(EVALUATE), deps=[best_checkpoint], kinds={"csv", "matplotlib"},
          automation_condition=AFTER_UPSTREAM_UPDATE)
def backbone_comparison(storage: StorageResource) -> dg.MaterializeResult:
    """The method's table (best epoch, FID, KID, LPIPS, ΔE, ΔCF per variant) and every metric vs epoch, from the
    variants' evaluation results on disk; also written to ``<storage>/reports/backbone_comparison.{csv,png}``."""
    from lpd_pipeline.evaluation.comparison import write_comparison

    table, png, paths = write_comparison(storage.layout())
    comparison = inline_table(
        ["variant", "best epoch", "FID [95%]", "KID", "LPIPS", "ΔE", "ΔCF", "chosen by"],
        [[row["variant"], int(row["best_epoch"]), _interval(row, "fid", 2), _number(row["kid"], 4),
          _number(row["lpips"], 4), _number(row["delta_e"], 2), _number(row["delta_cf"], 2),
          " ".join(str(row["chosen_by"]).split())[:200]] for _, row in table.iterrows()])
    plot = f"![metrics per epoch](data:image/png;base64,{base64.b64encode(png).decode('ascii')})"
    return dg.MaterializeResult(metadata={
        "variants": len(table),
        "comparison": comparison,  # inline on the asset page (empty when no variant has a best checkpoint)
        "metrics_per_epoch": dg.MetadataValue.md(plot),
        **{name: dg.MetadataValue.path(path) for name, path in paths.items()},
    })


evaluate_checkpoints = dg.define_asset_job(
    "evaluate_checkpoints",
    selection=dg.AssetSelection.groups(GROUP),
    description="Score every checkpoint of one variant (partition), choose its best checkpoint, and compare "
                "the variants.",
)

EVALUATION_ASSETS = [checkpoint_evaluations, best_checkpoint, backbone_comparison]
EVALUATION_JOBS = [evaluate_checkpoints]
