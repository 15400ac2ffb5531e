"""Rendering assets: whole test paintings colorized with each variant's best checkpoint (thin Dagster shell).

The work is done by ``lpd_pipeline.rendering``; this asset picks the paintings (every ``test_ink`` painting of
``dataset/paintings.parquet``, whole, plus files listed in config), the checkpoint of each configured variant
(evaluation's best, else the latest, else the variant is skipped with a warning), renders, and records a table.
A rendering is reused when its PNG is complete and was made from the same painting, checkpoint and settings.

Palette showcase: each rendered variant whose recipe has palette control also renders the first painting under
each palette of ``palette_showcase`` (presets of its generator, e.g. blue-green and ochre, or painting files),
through the same path (``rendering.render.render_file`` with the model's palette), into
``renders/<variant>/palette-<name>/``; the table's ``palette`` column names it ("" for the ordinary renders).
"""


import dataclasses
import hashlib
import json
import re
from dataclasses import dataclass, field
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
from lpd_pipeline.files import sha256_file, write_bytes_atomic, write_parquet_atomic
from lpd_pipeline.imaging import content_hash, decode_image, encode_png, png_complete
from lpd_pipeline.models.options import MAIN_VARIANTS, VARIANTS, variant_description
from lpd_pipeline.models.recipes import recipe
from lpd_pipeline.rendering.settings import RenderSettings
from lpd_pipeline.settings import StorageLayout

GROUP = RENDER
# Evaluation's partitioned asset that writes <storage>/evaluation/<variant>/best_checkpoint.json.
BEST_CHECKPOINT_KEY = dg.AssetKey("best_checkpoint")
TABLE_COLUMNS = ["painting_id", "title", "artist", "source", "license", "variant", "palette", "palette_swatch",
                 "epoch", "checkpoint", "checkpoint_sha256",
                 "checkpoint_source", "input_path", "output_path", "preview_path", "width", "height", "seconds",
                 "colour_spread", "settings"]
_SAFE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
PREVIEW_HEIGHT = 160
PREVIEW_PAINTINGS = 3
DEFAULT_SHOWCASE = ("blue-green", "ochre")  # the two palettes of docs/QUALITY.md's users: 青绿 and 浅绛


class MasterpiecesConfig(settings_config(RenderSettings)):
    """Which variants and extra paintings to render, and how (every RenderSettings field)."""

    variants: list[str] = Field(default_factory=lambda: list(MAIN_VARIANTS),
                                description=f"model variants to render with, of {list(VARIANTS)} (one without a "
                                            "checkpoint is skipped with a warning)")
    palette_showcase: list[str] = Field(
        default_factory=lambda: list(DEFAULT_SHOWCASE),
        description="the first painting is also rendered by each palette-controlled variant under each of these "
                    "palettes (a preset of its generator or a painting file), shown side by side on the results "
                    "page; a preset the generator lacks is replaced by another of its presets; [] for none")
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
    if "palette" not in frame:  # a table written before palette showcases: its renders had none
        frame = frame.assign(palette="", palette_swatch="")
    if not set(TABLE_COLUMNS) <= set(frame.columns):
        return {}
    return {(r["painting_id"], r["variant"], r["palette"]): r for r in frame.to_dict("records")}


def _reusable(previous: dict | None, checkpoint: str, digest: str, settings: str, output: Path) -> bool:
    """Whether ``previous`` (a row of the last table) is this render: the same checkpoint *content* (a retrained run
    writes new weights under the same file name), settings and output, and a complete PNG."""
    return (previous is not None and previous["checkpoint"] == checkpoint
            and previous["checkpoint_sha256"] == digest and previous["settings"] == settings
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
        labels = [f"{v} ({p})" if p else v for v, p in zip(renders["variant"], renders["palette"])]
        lines.append(f"{previews.markdown_text(title, 120)}: ink | "
                     + " | ".join(previews.markdown_text(label) for label in labels))
    width = max(row.shape[1] for row in rows)
    padded = [np.pad(row, ((0, 4), (0, width - row.shape[1]), (0, 0)), constant_values=255) for row in rows]
    return np.vstack(padded), lines


@dataclass
class _Renders:
    """What one materialization renders and collects: rows of the table, failures."""

    layout: StorageLayout
    previous: dict
    log: Any
    rows: list = field(default_factory=list)
    failed: list = field(default_factory=list)
    digests: dict = field(default_factory=dict)

    def checkpoint_digest(self, path: Path) -> str:
        """SHA-256 of a checkpoint file, read once per materialization."""
        if str(path) not in self.digests:
            self.digests[str(path)] = sha256_file(path)
        return self.digests[str(path)]

    def render(self, variant: str, choice, model, painting: dict, settings: RenderSettings, swatch: str = ""
               ) -> None:
        """One painting by one variant with ``settings`` (``settings.palette``: the palette ``model()`` was given,
        ``swatch`` its picture): reused when its PNG is complete and was made from the same checkpoint and
        settings, else rendered."""
        from lpd_pipeline.rendering import RenderInputError, render_file

        painting_id, palette = str(painting["painting_id"]), settings.palette
        if not _SAFE_ID.match(painting_id):
            self.failed.append(f"{painting_id!r}: not a painting id")
            return
        settings_json = json.dumps(settings.describe(), sort_keys=True)
        output = self.layout.path("renders", variant, *_palette_folder(palette), f"{painting_id}.png")
        preview = output.with_suffix(".preview.jpg")
        old = self.previous.get((painting_id, variant, palette))
        digest = self.checkpoint_digest(choice.path)
        if _reusable(old, str(choice.path), digest, settings_json, output) and preview.is_file():
            self.rows.append({**old, "palette_swatch": swatch})
            return
        try:
            loaded = model()
            report = render_file(painting["path"], output, loaded, settings, preview_path=preview)
        except (RenderInputError, ValueError, OSError) as exc:
            self.log.warning(f"{variant}: {painting['path']} not rendered: {exc}")
            self.failed.append(f"{Path(str(painting['path'])).name}: {exc}")
            return
        spread = report.consistency
        self.rows.append({
            **{k: painting[k] for k in ("painting_id", "title", "artist", "source", "license")},
            "variant": variant, "palette": palette, "palette_swatch": swatch,
            "epoch": loaded.epoch if loaded.epoch is not None else -1,
            "checkpoint": str(choice.path), "checkpoint_sha256": digest, "checkpoint_source": choice.source,
            "input_path": str(painting["path"]), "output_path": str(output), "preview_path": str(preview),
            "width": report.plan.width, "height": report.plan.height, "seconds": round(report.seconds, 3),
            "colour_spread": float(spread.mean) if spread is not None else float("nan"),
            "settings": settings_json,
        })
        under = f" under palette {palette}" if palette else ""
        self.log.info(f"{variant}: {painting_id}{under} {report.plan.width}x{report.plan.height} in "
                      f"{report.seconds:.1f} s")


def _palette_folder(palette: str) -> tuple[str, ...]:
    """Where a render under ``palette`` goes below ``renders/<variant>/``: ``palette-<preset>/`` for a preset,
    ``palette-file-<hash>/`` for a painting file; nothing without a palette."""
    if not palette:
        return ()
    if _SAFE_ID.match(palette):
        return (f"palette-{palette}",)
    return (f"palette-file-{hashlib.sha256(palette.encode('utf-8', 'surrogateescape')).hexdigest()[:12]}",)


def _model_loader(choice, device: str, palette: str, temperature: float | None = None):
    """``load(spec="")``: the variant's generator, loaded once on first use, with ``palette`` (the run's) and
    ``temperature``, or with palette ``spec`` instead (a copy sharing the network)."""
    from lpd_pipeline.rendering.model import load_render_model, resolve_palette

    loaded = []

    def load(spec: str = ""):
        if not loaded:
            loaded.append(load_render_model(choice.path, device, palette=palette, temperature=temperature))
        return dataclasses.replace(loaded[0], palette=resolve_palette(loaded[0], spec)) if spec else loaded[0]

    return load


def _render_variant(renders: _Renders, variant: str, choice, paintings: pd.DataFrame, settings: RenderSettings,
                    showcase: list[str]) -> None:
    """Every painting by ``variant`` with checkpoint ``choice``, then (palette-controlled variants) the first one
    under each showcase palette (and a swatch of it). The run's ``palette`` applies only to palette-controlled
    variants."""
    from lpd_pipeline.rendering.model import palette_swatch

    controlled = bool(recipe(variant).fields.get("palette"))
    if settings.palette and not controlled:
        renders.log.warning(f"{variant} has no palette control: rendered without palette {settings.palette!r}")
        settings = settings.replace(palette="")
    if settings.temperature is not None and recipe(variant).color_space != "labcls":
        renders.log.info(f"{variant} regresses colour (no decode temperature): rendered without temperature "
                         f"{settings.temperature}")
        settings = settings.replace(temperature=None)
    renders.log.info(f"{variant}: rendering with the {choice.describe()}")
    model = _model_loader(choice, settings.device, settings.palette, settings.temperature)
    records = paintings.to_dict("records")
    for painting in records:
        renders.render(variant, choice, model, painting, settings)
    if not (controlled and showcase and records):
        return
    net = model().net
    if not hasattr(net, "preset_names"):  # a checkpoint made before its recipe had palette control
        renders.log.warning(f"{variant}: its checkpoint {choice.path} has no palette control: no palette showcase")
        return
    from lpd_pipeline.rendering.model import showcase_palettes

    presets = {name: net.preset(name).detach().cpu().numpy() for name in net.preset_names()}
    palettes = showcase_palettes(presets, showcase)
    if palettes != showcase:
        renders.log.info(f"{variant}: palette showcase {palettes} (asked {showcase}; its presets: "
                         f"{', '.join(presets)})")
    for spec in palettes:
        swatch = _write_swatch(renders.layout.path("renders", variant, *_palette_folder(spec), "swatch.png"),
                               palette_swatch(model(spec).palette, net.palette_centers))
        renders.render(variant, choice, lambda spec=spec: model(spec), records[0], settings.replace(palette=spec),
                       str(swatch))


def _write_swatch(path: Path, image: np.ndarray) -> Path:
    """The palette's picture, written (atomically) only when it changed."""
    data = encode_png(image)
    if not (path.is_file() and path.read_bytes() == data):
        path.parent.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(path, data)
    return path


@dg.asset(**stage_options(RENDER), kinds={"pytorch", "parquet"}, deps=[BEST_CHECKPOINT_KEY],
          io_manager_key="parquet_io_manager", automation_condition=AFTER_UPSTREAM_UPDATE)
def colorized_masterpieces(context: dg.AssetExecutionContext, config: MasterpiecesConfig,
                           storage: StorageResource) -> dg.Output[pd.DataFrame]:
    """Every test_ink painting (whole) and the configured ones, colorized with each variant's best checkpoint:
    ``renders/<variant>/<painting_id>.png`` (+ ``.preview.jpg``), table ``renders/masterpieces.parquet``; the
    first painting also under each showcase palette by palette-controlled variants (``palette-<name>/``)."""
    from lpd_pipeline.rendering import resolve_checkpoint

    unknown = sorted(set(config.variants) - set(VARIANTS))
    if unknown:
        raise dg.Failure(description=f"unknown variant(s) {unknown}; known: {list(VARIANTS)}")
    if config.render:
        context.log.warning(f"run config key 'render' is deprecated: move {sorted(config.render)} to run-config "
                            "fields of their own (every RenderSettings field is one)")
    settings = config.settings(**config.render)
    layout = storage.layout()
    paintings = _paintings(layout, config.extra_paintings, context.log)
    renders = _Renders(layout, _previous(layout), context.log)
    skipped = []
    for variant in config.variants:
        try:
            choice = resolve_checkpoint(layout, variant)
        except FileNotFoundError as exc:
            context.log.warning(f"skipping {variant}: {exc}")
            skipped.append(variant)
            continue
        _render_variant(renders, variant, choice, paintings, settings, list(config.palette_showcase))
    table = pd.DataFrame(renders.rows, columns=TABLE_COLUMNS)
    write_parquet_atomic(table, masterpieces_table_path(layout))
    return dg.Output(table, metadata=_metadata(context, layout, table, paintings, skipped, renders.failed))


def _metadata(context, layout: StorageLayout, table: pd.DataFrame, paintings: pd.DataFrame, skipped: list[str],
              failed: list[str]) -> dict[str, Any]:
    plain = table[table["palette"] == ""]
    metadata: dict[str, Any] = {
        "renders": len(plain),
        "palette_renders": len(table) - len(plain),
        "paintings": len(paintings),
        "variants_rendered": ", ".join(sorted(set(plain["variant"]))) or "none",
        "variants_skipped": ", ".join(skipped) or "none",
        "variants": dg.MetadataValue.md("\n".join(
            f"- **{previews.markdown_text(v)}**: {previews.markdown_text(variant_description(v), 300)}"
            for v in sorted(set(table["variant"]), key=VARIANTS.index)) or "None."),
        "failures": len(failed),
        "table": dg.MetadataValue.path(str(masterpieces_table_path(layout))),
    }
    if failed:
        metadata["failed"] = dg.MetadataValue.md("\n".join(f"- {previews.markdown_text(f, 200)}"
                                                           for f in failed[:20]))
    for key, rows, alt in (("preview", plain, "ink | colorized by each variant"),
                           ("palette_showcase", table[table["palette"] != ""], "ink | the same painting under "
                                                                                 "each palette")):
        if not len(rows):
            continue
        try:
            sheet, lines = _sample_colorizations(rows)
            metadata[key] = dg.MetadataValue.md(previews.markdown_image(sheet, alt) + "\n\n" + "\n".join(
                f"{number}. {line}" for number, line in enumerate(lines, start=1)))
        except Exception as exc:  # a preview must never fail the renders
            context.log.warning(f"no {key}: {exc}")
    return metadata


render_masterpieces = dg.define_asset_job(
    "render_masterpieces",
    # The group's assets but survey_results, which scores answers that come back from people later.
    selection=dg.AssetSelection.groups(GROUP) - dg.AssetSelection.assets("survey_results"),
    description="Colorize every test_ink painting (and configured ones) with each variant's best checkpoint; "
                "publish the results page and the survey kit.",
)

RENDERING_ASSETS = [colorized_masterpieces]
RENDERING_JOBS = [render_masterpieces]
