"""Evaluation assets: score every checkpoint of a variant, choose the best, compare variants.

The work is done by lpd_pipeline.evaluation; these assets pass it the checkpoint table and settings and show the
result (metric table, sample sheet, refusals with their reasons, plots) as metadata. Partitioned by model
variant like ``trained_generator``, so a variant's evaluation maps to its own training one to one.
"""


import base64
import math
from typing import Any

import dagster as dg
import pandas as pd
from pydantic import ValidationError

from lpd_pipeline.curation.previews import markdown_text
from lpd_pipeline.defs.assets.training import trained_generator
from lpd_pipeline.defs.partitions import VARIANT_PARTITIONS
from lpd_pipeline.defs.resources import StorageResource
from lpd_pipeline.evaluation.settings import EvaluationSettings

GROUP = "evaluation"
_DEFAULTS = EvaluationSettings()  # the one source of the defaults below
BEST_CHECK = "best_checkpoint_usable"


class CheckpointEvaluationConfig(dg.Config):
    """How checkpoints are scored (see lpd_pipeline.evaluation.settings.EvaluationSettings)."""

    device: str = _DEFAULTS.device
    batch_size: int = _DEFAULTS.batch_size
    bootstrap: int = _DEFAULTS.bootstrap
    seed: int = _DEFAULTS.seed
    sample_color_tiles: int = _DEFAULTS.sample_color_tiles
    sample_ink_tiles: int = _DEFAULTS.sample_ink_tiles


class BestCheckpointConfig(dg.Config):
    """How the best checkpoint is chosen and which checkpoints are kept afterwards."""

    selection_rule: str = _DEFAULTS.selection_rule  # fid_then_lpips | fid | lpips
    keep_every_epochs: int = _DEFAULTS.keep_every_epochs  # 0: delete nothing; else keep best, latest, multiples


def _settings(values: dict[str, Any]) -> EvaluationSettings:
    try:
        return EvaluationSettings(**values)
    except ValidationError as exc:
        raise dg.Failure(description=f"invalid evaluation settings: {exc}") from None


def _number(value: Any, digits: int) -> str:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return ""
    return f"{value:.{digits}f}" if math.isfinite(value) else ""


def _interval(row: pd.Series, name: str, digits: int) -> str:
    value, lo, hi = (_number(row.get(k), digits) for k in (name, f"{name}_lo", f"{name}_hi"))
    return f"{value} [{lo}, {hi}]" if value and lo and hi else value


def _rows_markdown(rows: pd.DataFrame) -> str:
    if rows.empty:
        return "No checkpoints."
    lines = ["| epoch | status | FID [95%] | KID [95%] | LPIPS | ΔE | PSNR | SSIM | ΔCF | ink FID | s |",
             "| ---: | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for _, row in rows.iterrows():
        lines.append(
            f"| {int(row['epoch'])} | {markdown_text(row['status'])} | {_interval(row, 'fid', 2)} | "
            f"{_interval(row, 'kid', 4)} | {_number(row['lpips'], 4)} | {_number(row['delta_e'], 2)} | "
            f"{_number(row['psnr'], 2)} | {_number(row['ssim'], 3)} | {_number(row['delta_cf'], 2)} | "
            f"{_number(row['ink_fid'], 2)} | {_number(row['wall_time_s'], 1)} |")
    skipped = rows[rows["status"] != "ok"]
    if len(skipped):
        lines += ["", "Not scored:", ""]
        lines += [f"- epoch {int(r['epoch'])}: {markdown_text(r['reason'], 400)}" for _, r in skipped.iterrows()]
    return "\n".join(lines)


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
    group_name=GROUP,
    kinds={"pytorch"},
    partitions_def=VARIANT_PARTITIONS,
    ins={"trained_generator": dg.AssetIn(key=trained_generator.key)},
    io_manager_key="parquet_io_manager",
)
def checkpoint_evaluations(
    context: dg.AssetExecutionContext,
    config: CheckpointEvaluationConfig,
    storage: StorageResource,
    trained_generator: pd.DataFrame,
) -> dg.Output[pd.DataFrame]:
    """Every checkpoint of the variant scored on the test tiles (FID/KID with 95% intervals, LPIPS, ΔE, PSNR,
    SSIM, colourfulness; ink tiles: FID/KID vs real colour tiles, colourfulness). One row per checkpoint, cached
    by checkpoint content and test-set fingerprint: a new checkpoint evaluates only itself."""
    from lpd_pipeline.evaluation import evaluate  # imports torch: only when the step runs

    variant = context.partition_key
    settings = _settings(config.model_dump())
    layout = storage.layout()
    if trained_generator.empty:
        raise dg.Failure(description=f"variant {variant!r} has no checkpoints: materialize trained_generator "
                                     f"(job train_models) for it first")
    try:
        run = evaluate.evaluate_checkpoints(layout, variant, trained_generator, settings,
                                            models_factory=evaluate.default_models, log_fn=context.log.info)
    except ValueError as exc:  # DataError, EvaluationError, CheckpointError: the message names file and reason
        raise dg.Failure(description=str(exc)) from exc
    rows = run.rows
    metadata: dict[str, Any] = {
        "evaluated": len(run.evaluated), "reused": len(run.reused), "skipped": len(run.skipped),
        "test_fingerprint": str(rows["test_fingerprint"].iloc[0])[:16] if len(rows) else "",
        "metrics": dg.MetadataValue.md(_rows_markdown(rows)),
    }
    scored = rows[rows["status"] == "ok"]
    if len(scored):
        newest = scored.iloc[-1]
        metadata["sample_sheet"] = dg.MetadataValue.md(
            f"Epoch {int(newest['epoch'])}:\n\n{_image_markdown(newest['sample_sheet'], 'sample sheet')}")
        metadata["sample_sheet_path"] = dg.MetadataValue.path(str(newest["sample_sheet"]))
    return dg.Output(rows, metadata=metadata)


@dg.asset(
    group_name=GROUP,
    partitions_def=VARIANT_PARTITIONS,
    ins={"checkpoint_evaluations": dg.AssetIn(key=checkpoint_evaluations.key)},
    check_specs=[dg.AssetCheckSpec(BEST_CHECK, asset="best_checkpoint", blocking=True,
                                   description="the chosen checkpoint file exists and its metrics are finite")],
)
def best_checkpoint(
    context: dg.AssetExecutionContext,
    config: BestCheckpointConfig,
    storage: StorageResource,
    checkpoint_evaluations: pd.DataFrame,
):
    """The variant's best checkpoint by the configured rule (default: lowest FID; when its bootstrap interval
    overlaps others', the lowest LPIPS among those), written to ``evaluation/<variant>/best_checkpoint.json``
    for rendering. Then, if ``keep_every_epochs`` is set, evaluated checkpoints other than the best, the latest
    and every k-th epoch are deleted (never an unevaluated one)."""
    from lpd_pipeline.evaluation import retention, selection, store

    variant = context.partition_key
    settings = _settings(config.model_dump())
    layout = storage.layout()
    choice = selection.choose_best(checkpoint_evaluations, settings.selection_rule)
    if choice is None:
        reasons = "; ".join(f"epoch {int(r['epoch'])}: {r['reason']}"
                            for _, r in checkpoint_evaluations.iterrows() if r["status"] != "ok")
        raise dg.Failure(description=f"no checkpoint of {variant!r} could be scored"
                                     f"{' (' + reasons + ')' if reasons else ''}; best_checkpoint.json unchanged")
    record = selection.best_record(variant, choice, settings.selection_rule)
    path = store.write_best_checkpoint(layout, variant, record)
    deleted = retention.apply_evaluated_retention(layout.training_dir(variant), checkpoint_evaluations,
                                                  record["checkpoint"], settings.keep_every_epochs)
    if deleted:
        context.log.info(f"evaluation-aware retention deleted {len(deleted)} checkpoint(s): "
                         f"{', '.join(p.name for p in deleted)}")
    metadata: dict[str, Any] = {
        "epoch": record["epoch"], "checkpoint": dg.MetadataValue.path(record["checkpoint"]),
        "rule": record["rule"], "chosen_by": record["chosen_by"], "record": dg.MetadataValue.path(str(path)),
        "checkpoints_deleted": len(deleted),
        **{k: record[k] for k in ("fid", "fid_lo", "fid_hi", "kid", "lpips", "delta_e", "delta_cf")
           if record[k] is not None},
    }
    if record["sample_sheet"]:
        metadata["sample_sheet"] = dg.MetadataValue.md(_image_markdown(record["sample_sheet"], "sample sheet"))
    return dg.MaterializeResult(metadata=metadata, check_results=[_best_check(layout, variant)])


def _best_check(layout, variant: str) -> dg.AssetCheckResult:
    from lpd_pipeline.evaluation import store

    problems = []
    try:
        record = store.read_best_checkpoint(layout, variant)
    except store.EvaluationError as exc:
        record, problems = None, [str(exc)]
    if record is None and not problems:
        problems.append(f"{store.best_path(layout, variant)} was not written")
    if record is not None:
        bad = [k for k in ("fid", "kid", "lpips", "delta_e", "psnr", "ssim", "delta_cf")
               if not store.finite(record.get(k))]
        if bad:
            problems.append(f"non-finite metric(s) {bad} for {record['checkpoint']}")
    return dg.AssetCheckResult(
        check_name=BEST_CHECK, passed=not problems,
        metadata={"details": dg.MetadataValue.md("\n".join(f"- {markdown_text(p)}" for p in problems)
                                                 or "All good.")})


@dg.asset(group_name=GROUP, deps=[best_checkpoint])
def backbone_comparison(storage: StorageResource) -> dg.MaterializeResult:
    """The method's table (best epoch, FID, KID, LPIPS, ΔE, ΔCF per variant) and every metric vs epoch, from the
    variants' evaluation results on disk; also written to ``<storage>/reports/backbone_comparison.{csv,png}``."""
    from lpd_pipeline.evaluation.comparison import write_comparison

    table, png, paths = write_comparison(storage.layout())
    lines = ["| variant | best epoch | FID [95%] | KID | LPIPS | ΔE | ΔCF | chosen by |",
             "| --- | ---: | --- | ---: | ---: | ---: | ---: | --- |"]
    for _, row in table.iterrows():
        lines.append(f"| {markdown_text(row['variant'])} | {int(row['best_epoch'])} | {_interval(row, 'fid', 2)} | "
                     f"{_number(row['kid'], 4)} | {_number(row['lpips'], 4)} | {_number(row['delta_e'], 2)} | "
                     f"{_number(row['delta_cf'], 2)} | {markdown_text(row['chosen_by'], 200)} |")
    plot = f"![metrics per epoch](data:image/png;base64,{base64.b64encode(png).decode('ascii')})"
    return dg.MaterializeResult(metadata={
        "variants": len(table),
        "comparison": dg.MetadataValue.md("\n".join(lines) if len(table) else "No variant has a best checkpoint."),
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
