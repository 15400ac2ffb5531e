"""Rendering assets: whole test paintings colorized with each variant's best checkpoint (thin Dagster shell).

The work is done by ``lpd_pipeline.rendering``; this asset picks the paintings (every ``test_ink`` painting of
``dataset/paintings.parquet``, whole, plus files listed in config), the checkpoint of each configured variant
(evaluation's best, else the latest, else the variant is skipped with a warning), renders, and records a table.
A rendering is reused when its PNG is complete and was made from the same painting, checkpoint and settings.
"""


import json
import re
from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd
from pydantic import Field

from lpd_pipeline.curation import previews
from lpd_pipeline.defs.automation import AFTER_UPSTREAM_UPDATE
from lpd_pipeline.defs.resources import StorageResource
from lpd_pipeline.defs.stages import RENDER, stage_options
from lpd_pipeline.defs.settings import settings_config
from lpd_pipeline.files import write_parquet_atomic
from lpd_pipeline.imaging import content_hash, decode_image, png_complete
from lpd_pipeline.models.options import PAPER_VARIANTS, VARIANTS
from lpd_pipeline.rendering.settings import RenderSettings
from lpd_pipeline.settings import StorageLayout

GROUP = RENDER
# Evaluation's partitioned asset that writes <storage>/evaluation/<variant>/best_checkpoint.json.
BEST_CHECKPOINT_KEY = dg.AssetKey("best_checkpoint")
TABLE_COLUMNS = ["painting_id", "title", "artist", "source", "license", "variant", "epoch", "checkpoint",
                 "checkpoint_source", "input_path", "output_path", "preview_path", "width", "height", "seconds",
                 "colour_spread", "settings"]
_SAFE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
PREVIEW_HEIGHT = 160
PREVIEW_PAINTINGS = 3


class MasterpiecesConfig(settings_config(RenderSettings)):
    """Which variants and extra paintings to render, and how (every RenderSettings field)."""

    variants: list[str] = Field(default_factory=lambda: list(PAPER_VARIANTS),
                                description=f"model variants to render with, of {list(VARIANTS)}")
    extra_paintings: list[str] = Field(default_factory=list,
                                       description="image files to colorize besides the test_ink paintings")
    # Key of earlier run configs, still accepted with a DeprecationWarning.
    render: dict[str, Any] = Field(default_factory=dict,
                                   description="deprecated: every RenderSettings field is a run-config field")


def masterpieces_table_path(layout: StorageLayout) -> Path:
    return layout.path("renders", "masterpieces.parquet")


def _paintings(layout: StorageLayout, extra: list[str], log) -> pd.DataFrame:
    table = layout.dataset_dir / "paintings.parquet"
    rows: list[dict] = []
    if table.is_file():
        paintings = pd.read_parquet(table)
        for row in paintings[paintings["split"] == "test_ink"].to_dict("records"):
            rows.append({k: row.get(k, "") for k in ("painting_id", "title", "artist", "source", "license",
                                                     "path")})
    else:
        log.warning(f"{table} does not exist (materialize the dataset first); only configured paintings render")
    for item in extra:
        path = Path(item).expanduser().resolve()
        if not path.is_file():
            log.warning(f"configured painting {item} does not exist: skipped")
            continue
        rows.append({"painting_id": content_hash(path), "title": path.stem, "artist": "", "source": "config",
                     "license": "", "path": str(path)})
    frame = pd.DataFrame(rows, columns=["painting_id", "title", "artist", "source", "license", "path"])
    return frame.drop_duplicates("painting_id").fillna("").reset_index(drop=True)


def _previous(layout: StorageLayout) -> dict[tuple[str, str], dict]:
    path = masterpieces_table_path(layout)
    if not path.is_file():
        return {}
    try:
        frame = pd.read_parquet(path)
    except Exception:  # a damaged table only means rendering again
        return {}
    if not set(TABLE_COLUMNS) <= set(frame.columns):
        return {}
    return {(r["painting_id"], r["variant"]): r for r in frame.to_dict("records")}


def _reusable(previous: dict | None, checkpoint: str, settings: str, output: Path) -> bool:
    return (previous is not None and previous["checkpoint"] == checkpoint and previous["settings"] == settings
            and Path(previous["output_path"]) == output and output.is_file() and png_complete(output))


def _resized(image: np.ndarray, height: int) -> np.ndarray:
    import cv2

    width = max(1, round(image.shape[1] * height / image.shape[0]))
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)


def _sample_colorizations(table: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    """One row per painting (the first PREVIEW_PAINTINGS): ink | each variant's colorization, PREVIEW_HEIGHT
    pixels high (from the small preview JPEGs); and a line per row naming the painting and the variants."""
    rows, lines = [], []
    gap = np.full((PREVIEW_HEIGHT, 4, 3), 255, dtype=np.uint8)
    for _, renders in list(table.groupby("painting_id", sort=False))[:PREVIEW_PAINTINGS]:
        first = renders.iloc[0]
        images = [_resized(decode_image(first["input_path"]), PREVIEW_HEIGHT)]
        images += [_resized(decode_image(path), PREVIEW_HEIGHT) for path in renders["preview_path"]]
        rows.append(np.hstack([part for image in images for part in (image, gap)][:-1]))
        title = str(first["title"]) or str(first["painting_id"])[:12]
        lines.append(f"{previews.markdown_text(title, 120)}: ink | "
                     + " | ".join(previews.markdown_text(v) for v in renders["variant"]))
    width = max(row.shape[1] for row in rows)
    padded = [np.pad(row, ((0, 4), (0, width - row.shape[1]), (0, 0)), constant_values=255) for row in rows]
    return np.vstack(padded), lines


@dg.asset(**stage_options(RENDER), kinds={"pytorch", "parquet"}, deps=[BEST_CHECKPOINT_KEY],
          io_manager_key="parquet_io_manager", automation_condition=AFTER_UPSTREAM_UPDATE)
def colorized_masterpieces(context: dg.AssetExecutionContext, config: MasterpiecesConfig,
                           storage: StorageResource) -> dg.Output[pd.DataFrame]:
    """Every test_ink painting (whole) and the configured ones, colorized with each variant's best checkpoint:
    ``renders/<variant>/<painting_id>.png`` (+ ``.preview.jpg``), table ``renders/masterpieces.parquet``."""
    from lpd_pipeline.rendering import RenderInputError, load_render_model, render_file, resolve_checkpoint

    unknown = sorted(set(config.variants) - set(VARIANTS))
    if unknown:
        raise dg.Failure(description=f"unknown variant(s) {unknown}; known: {list(VARIANTS)}")
    if config.render:
        context.log.warning(f"run config key 'render' is deprecated: move {sorted(config.render)} to run-config "
                            "fields of their own (every RenderSettings field is one)")
    settings = config.settings(**config.render)
    settings_json = json.dumps(settings.describe(), sort_keys=True)
    layout = storage.layout()
    paintings = _paintings(layout, config.extra_paintings, context.log)
    previous = _previous(layout)
    rows, skipped, failed = [], [], []
    for variant in config.variants:
        try:
            choice = resolve_checkpoint(layout, variant)
        except FileNotFoundError as exc:
            context.log.warning(f"skipping {variant}: {exc}")
            skipped.append(variant)
            continue
        context.log.info(f"{variant}: rendering with the {choice.describe()}")
        model = None
        for painting in paintings.to_dict("records"):
            painting_id = str(painting["painting_id"])
            if not _SAFE_ID.match(painting_id):
                failed.append(f"{painting_id!r}: not a painting id")
                continue
            output = layout.path("renders", variant, f"{painting_id}.png")
            preview = output.with_suffix(".preview.jpg")
            old = previous.get((painting_id, variant))
            if _reusable(old, str(choice.path), settings_json, output) and preview.is_file():
                rows.append(old)
                continue
            if model is None:
                model = load_render_model(choice.path, settings.device, palette=settings.palette)
            try:
                report = render_file(painting["path"], output, model, settings, preview_path=preview)
            except (RenderInputError, ValueError, OSError) as exc:
                context.log.warning(f"{variant}: {painting['path']} not rendered: {exc}")
                failed.append(f"{Path(str(painting['path'])).name}: {exc}")
                continue
            spread = report.consistency
            rows.append({
                **{k: painting[k] for k in ("painting_id", "title", "artist", "source", "license")},
                "variant": variant, "epoch": model.epoch if model.epoch is not None else -1,
                "checkpoint": str(choice.path), "checkpoint_source": choice.source,
                "input_path": str(painting["path"]), "output_path": str(output), "preview_path": str(preview),
                "width": report.plan.width, "height": report.plan.height, "seconds": round(report.seconds, 3),
                "colour_spread": float(spread.mean) if spread is not None else float("nan"),
                "settings": settings_json,
            })
            context.log.info(f"{variant}: {painting_id} {report.plan.width}x{report.plan.height} in "
                             f"{report.seconds:.1f} s")
    table = pd.DataFrame(rows, columns=TABLE_COLUMNS)
    write_parquet_atomic(table, masterpieces_table_path(layout))
    metadata: dict[str, Any] = {
        "renders": len(table),
        "paintings": len(paintings),
        "variants_rendered": ", ".join(sorted(set(table["variant"]))) or "none",
        "variants_skipped": ", ".join(skipped) or "none",
        "failures": len(failed),
        "table": dg.MetadataValue.path(str(masterpieces_table_path(layout))),
    }
    if failed:
        metadata["failed"] = dg.MetadataValue.md("\n".join(f"- {previews.markdown_text(f, 200)}"
                                                           for f in failed[:20]))
    if len(table):
        try:
            sheet, lines = _sample_colorizations(table)
            metadata["preview"] = dg.MetadataValue.md(
                previews.markdown_image(sheet, "ink | colorized by each variant") + "\n\n"
                + "\n".join(f"{number}. {line}" for number, line in enumerate(lines, start=1)))
        except Exception as exc:  # a preview must never fail the renders
            context.log.warning(f"no preview: {exc}")
    return dg.Output(table, metadata=metadata)


render_masterpieces = dg.define_asset_job(
    "render_masterpieces",
    # The group's assets but survey_results, which scores answers that come back from people later.
    selection=dg.AssetSelection.groups(GROUP) - dg.AssetSelection.assets("survey_results"),
    description="Colorize every test_ink painting (and configured ones) with each variant's best checkpoint; "
                "publish the results page and the survey kit.",
)

RENDERING_ASSETS = [colorized_masterpieces]
RENDERING_JOBS = [render_masterpieces]
