"""Report assets: the results page, the survey kit and the survey's scores (group "render").

Thin shell over :mod:`lpd_pipeline.reports`: each asset reads the upstream tables and files from the storage
layout (a missing one is a Failure naming the asset to materialize first), calls the core and describes the
result as metadata (a ``file://`` link to the page, counts, a small preview).
"""

import re
import tempfile
from pathlib import Path

import dagster as dg
import pandas as pd

from lpd_pipeline import imaging
from lpd_pipeline.curation import previews
from lpd_pipeline.defs.automation import AFTER_UPSTREAM_UPDATE
from lpd_pipeline.defs.resources import StorageResource
from lpd_pipeline.defs.stages import RENDER, stage_options
from lpd_pipeline.files import write_text_atomic
from lpd_pipeline.reports import deepzoom
from lpd_pipeline.reports.site import SampleSheet, build_results_site
from lpd_pipeline.reports.survey import build_survey_kit, read_survey_key, score_survey, scores_markdown
from lpd_pipeline.settings import PathEscapeError, StorageLayout

GROUP = RENDER
MASTERPIECES = dg.AssetKey("colorized_masterpieces")
COMPARISON = dg.AssetKey("backbone_comparison")
TILE_PAIRS = dg.AssetKey("tile_pairs")


def _required(path: Path, asset: dg.AssetKey, what: str) -> pd.DataFrame:
    if not path.is_file():
        raise dg.Failure(description=f"{what} {path} does not exist: materialize {asset.to_user_string()} first")
    try:
        return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    except Exception as exc:  # a damaged upstream file: say which and why
        raise dg.Failure(description=f"{what} {path} cannot be read ({exc}): materialize "
                                     f"{asset.to_user_string()} again") from exc


# Where backbone_comparison writes its table (the brief's name first, then the evaluation module's).
COMPARISON_FILES = ("comparison.csv", "backbone_comparison.csv")
EPOCH_METRICS = ("fid", "kid", "lpips", "delta_e", "delta_cf", "psnr", "ssim", "ink_fid")


def _comparison(layout: StorageLayout) -> pd.DataFrame:
    for name in COMPARISON_FILES:
        path = layout.path("reports", name)
        if path.is_file():
            return _required(path, COMPARISON, "comparison table")
    raise dg.Failure(description=f"no comparison table ({' or '.join(COMPARISON_FILES)}) in "
                                 f"{layout.path('reports')}: materialize {COMPARISON.to_user_string()} first")


def _metrics_by_epoch(layout: StorageLayout, comparison: pd.DataFrame, log) -> pd.DataFrame | None:
    """``reports/metrics_by_epoch.csv``, else the scored rows of each variant's ``evaluations.parquet``."""
    path = layout.path("reports", "metrics_by_epoch.csv")
    if path.is_file():
        return _required(path, COMPARISON, "per-epoch metrics table")
    frames = []
    for variant in comparison.get("variant", pd.Series(dtype=str)).astype(str):
        try:
            rows = pd.read_parquet(layout.path("evaluation", variant, "evaluations.parquet"))
        except (OSError, ValueError, PathEscapeError) as exc:
            log.warning(f"no per-epoch metrics of {variant}: {exc}")
            continue
        if "status" in rows:
            rows = rows[rows["status"] == "ok"]
        columns = [c for c in ("epoch", *EPOCH_METRICS) if c in rows]
        frames.append(rows[columns].assign(variant=variant)[["variant", *columns]].sort_values("epoch"))
    return pd.concat(frames, ignore_index=True) if frames else None


def _sample_sheets(layout: StorageLayout, comparison: pd.DataFrame, log) -> list[SampleSheet]:
    """The evaluation's sample sheet of each variant at its best epoch (else its newest sheet, saying so)."""
    sheets = []
    if "variant" not in comparison or "best_epoch" not in comparison:
        log.warning("comparison.csv has no variant/best_epoch columns: no tile table on the page")
        return sheets
    for row in comparison.itertuples(index=False):
        try:
            folder = layout.path("evaluation", str(row.variant), "samples")
        except PathEscapeError as exc:
            log.warning(f"skipping the sample sheet of variant {row.variant!r}: {exc}")
            continue
        best_epoch = pd.to_numeric(pd.Series([row.best_epoch]), errors="coerce").iloc[0]
        best = folder / f"epoch_{int(best_epoch):04d}.png" if pd.notna(best_epoch) else None
        if best is not None and best.is_file() and _inside(layout, [best], log):
            sheets.append(SampleSheet(str(row.variant), int(best_epoch), best, "best epoch"))
            continue
        available = {int(m.group(1)): path for path in _inside(layout, list(folder.glob("epoch_*.png")), log)
                     if (m := re.fullmatch(r"epoch_(\d+)", path.stem))}
        if available:
            epoch = max(available)
            newest = available[epoch]
            sheets.append(SampleSheet(str(row.variant), epoch, newest, "newest sheet; the best epoch has none"))
        else:
            log.warning(f"no sample sheets in {folder}")
    return sheets


def _inside(layout: StorageLayout, paths: list[Path], log) -> list[Path]:
    """``paths`` that stay inside the storage root once links are followed (others are logged and skipped)."""
    kept = []
    for path in paths:
        try:
            kept.append(layout.path(str(path.relative_to(layout.root))))
        except (PathEscapeError, ValueError) as exc:
            log.warning(f"skipping {path}: {exc}")
    return kept


class ResultsPageConfig(dg.Config):
    title: str = "lpd-pipeline: machine-colorized Chinese landscape paintings"
    tile_size: int = deepzoom.DEFAULT_TILE_SIZE
    jpeg_quality: int = deepzoom.DEFAULT_QUALITY


@dg.asset(**stage_options(RENDER), deps=[MASTERPIECES, COMPARISON], kinds={"html"},
          automation_condition=AFTER_UPSTREAM_UPDATE)
def results_page(context: dg.AssetExecutionContext, config: ResultsPageConfig,
                 storage: StorageResource) -> dg.MaterializeResult:
    """Static site ``<storage>/reports/site/``: each painting ink | ResNet | U-Net, zoomable to full resolution;
    the tile table, metric tables and plots of the evaluation; provenance and licence of each painting."""
    layout = storage.layout()
    renders = _required(layout.path("renders", "masterpieces.parquet"), MASTERPIECES, "renders table")
    comparison = _comparison(layout)
    by_epoch = _metrics_by_epoch(layout, comparison, context.log)
    plots = _inside(layout, sorted(layout.path("reports").glob("*.png")), context.log)
    try:
        site = build_results_site(
            layout.path("reports", "site"), renders, base_dir=layout.root, comparison=comparison,
            metrics_by_epoch=by_epoch, plots=plots, samples=_sample_sheets(layout, comparison, context.log),
            title=config.title, tile_size=config.tile_size, quality=config.jpeg_quality)
    except ValueError as exc:  # a renders table without the needed columns, or bad settings
        raise dg.Failure(description=str(exc)) from exc
    for problem in site.problems:
        context.log.warning(problem)
    metadata = {
        "url": dg.MetadataValue.url(site.url),
        "index": dg.MetadataValue.path(str(site.index)),
        "paintings": site.paintings,
        "outputs": site.outputs,
        "pyramid_tiles": site.tiles,
        "pyramids_reused": site.reused_pyramids,
        "problems": dg.MetadataValue.md("\n".join(f"- {previews.markdown_text(p, 300)}" for p in site.problems)
                                        or "None."),
    }
    if site.preview is not None:
        metadata["preview"] = dg.MetadataValue.md(previews.markdown_image(site.preview, "ink | colorizations"))
    return dg.MaterializeResult(metadata=metadata)


class SurveyKitConfig(dg.Config):
    questions: int = 10  # the method's survey: 10 questions x 4 images
    seed: int = 0
    size: int = 256
    device: str = "cpu"
    # A published survey that already has answers in the answers folder is kept as it is unless this is set
    # (its key is then kept as reports/survey_keys/<survey_id>.json, so those answers can still be scored).
    replace_answered: bool = False


def _answered(answers: Path, survey_id: str) -> list[Path]:
    """Answer CSVs in ``answers`` that mention ``survey_id``."""
    if not answers.is_dir():
        return []
    found = []
    for path in sorted(answers.glob("*.csv")):
        try:
            if survey_id in path.read_text(encoding="utf-8", errors="replace"):
                found.append(path)
        except OSError:
            continue
    return found


def _answered_survey(layout: StorageLayout, log, replace_answered: bool) -> str | None:
    """The id of the published survey when it already has answers and must be kept as it is; otherwise None,
    after keeping the previous key (if any) in ``reports/survey_keys/<survey_id>.json``."""
    key_path = layout.path("reports", "survey_key.json")
    if not key_path.is_file():
        return None
    try:
        previous = read_survey_key(key_path)
    except ValueError as exc:
        log.warning(f"the previous answer key is unreadable and will be replaced: {exc}")
        return None
    survey_id = str(previous["survey_id"])
    answered = _answered(layout.path("reports", "survey_answers"), survey_id)
    if answered and not replace_answered and layout.path("reports", "survey", "index.html").is_file():
        log.warning(f"survey {survey_id} already has {len(answered)} answer file(s) in {answered[0].parent}: "
                    f"kept as it is (a new kit would leave them without a key); set replace_answered to build "
                    f"a new one")
        return survey_id
    archive = layout.path("reports", "survey_keys", f"{survey_id}.json")
    archive.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(archive, key_path.read_text(encoding="utf-8"))
    return None


def _checkpoints(renders: pd.DataFrame) -> dict[str, str]:
    """The checkpoint each variant's paintings were rendered with (the newest epoch if several)."""
    ordered = renders.sort_values("epoch")
    return {str(v): str(rows["checkpoint"].iloc[-1]) for v, rows in ordered.groupby("variant")}


def _checkpoint_path(layout: StorageLayout, value: str) -> Path:
    """Checkpoint paths are absolute by contract; a relative one is taken from the storage root."""
    return Path(value) if Path(value).is_absolute() else layout.path(value)


@dg.asset(**stage_options(RENDER), deps=[TILE_PAIRS, MASTERPIECES], kinds={"html"})
def survey_kit(context: dg.AssetExecutionContext, config: SurveyKitConfig,
               storage: StorageResource) -> dg.MaterializeResult:
    """Static quiz ``<storage>/reports/survey/`` (N questions x 4 tiles, one generated by a model variant);
    its answer key ``<storage>/reports/survey_key.json`` lies outside the published folder."""
    # Imports torch: only when the step runs, not when the definitions load.
    from lpd_pipeline.reports.survey_sources import colorize_survey_tiles, select_survey_tiles
    from lpd_pipeline.training.checkpoints import CheckpointError

    layout = storage.layout()
    tiles = _required(layout.dataset_dir / "tiles.parquet", TILE_PAIRS, "tiles table")
    renders = _required(layout.path("renders", "masterpieces.parquet"), MASTERPIECES, "renders table")
    kept = _answered_survey(layout, context.log, config.replace_answered)
    if kept is not None:
        return dg.MaterializeResult(metadata={
            "url": dg.MetadataValue.url(layout.path("reports", "survey", "index.html").as_uri()),
            "answer_key": dg.MetadataValue.path(str(layout.path("reports", "survey_key.json"))),
            "survey_id": kept,
            "kept": dg.MetadataValue.md("The published survey already has answers: kept as it is "
                                        "(run config `replace_answered: true` builds a new one)."),
        })
    checkpoints = _checkpoints(renders)
    if not checkpoints:
        raise dg.Failure(description=f"the renders table names no checkpoint: materialize "
                                     f"{MASTERPIECES.to_user_string()} first")
    try:
        real, gray = select_survey_tiles(tiles, config.questions, sorted(checkpoints), seed=config.seed)
    except ValueError as exc:
        raise dg.Failure(description=str(exc)) from exc
    try:
        real = real.assign(path=[layout.path(p) for p in real["color_path"]])
    except PathEscapeError as exc:
        raise dg.Failure(description=f"tiles table: {exc}") from exc
    reports = layout.path("reports")
    reports.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=reports, prefix=".survey-work-") as work:
        try:
            generated = colorize_survey_tiles(
                gray, {v: _checkpoint_path(layout, c) for v, c in checkpoints.items()}, work, base_dir=layout.root,
                device=config.device)
        except (CheckpointError, imaging.ImageDecodeError, PathEscapeError) as exc:
            raise dg.Failure(description=f"cannot colorize the survey's gray tiles: {exc}") from exc
        kit = build_survey_kit(layout.path("reports", "survey"), layout.path("reports", "survey_key.json"),
                               real, generated, questions=config.questions, seed=config.seed, size=config.size)
    context.log.info(f"survey {kit.survey_id}: {kit.questions} questions, variants {', '.join(kit.variants)}")
    first = read_survey_key(kit.key_path)["questions"][0]
    sheet = previews.contact_sheet(
        [imaging.decode_image(kit.index.parent / "img" / f"{i}.png") for i in first["images"]],
        [f"image {n}" for n in range(1, 5)], thumb=128, columns=4)
    return dg.MaterializeResult(metadata={
        "preview": dg.MetadataValue.md(previews.markdown_image(sheet, "question 1 as respondents see it")),
        "url": dg.MetadataValue.url(kit.url),
        "answer_key": dg.MetadataValue.path(str(kit.key_path)),
        "survey_id": kit.survey_id,
        "questions": kit.questions,
        "variants": dg.MetadataValue.json(list(kit.variants)),
        "checkpoints": dg.MetadataValue.json(checkpoints),
        "answers_folder": dg.MetadataValue.path(str(layout.path("reports", "survey_answers"))),
        "images_skipped": dg.MetadataValue.md("\n".join(f"- {previews.markdown_text(s, 300)}" for s in kit.skipped)
                                              or "None."),
    })


class SurveyResultsConfig(dg.Config):
    answers_dir: str = ""  # default <storage>/reports/survey_answers/; a relative path is taken from the storage


@dg.asset(**stage_options(RENDER), deps=[survey_kit], kinds={"pandas"})
def survey_results(context: dg.AssetExecutionContext, config: SurveyResultsConfig,
                   storage: StorageResource) -> dg.MaterializeResult:
    """Fake-spotting rate per variant (95% Wilson interval, one-sided binomial p-values vs the 25% chance level)
    from the answer CSVs returned by respondents; written to ``<storage>/reports/survey_results.csv``."""
    layout = storage.layout()
    try:
        answers = Path(config.answers_dir) if Path(config.answers_dir).is_absolute() else (
            layout.path(config.answers_dir) if config.answers_dir else layout.path("reports", "survey_answers"))
    except PathEscapeError as exc:
        raise dg.Failure(description=f"answers_dir: {exc}; give an absolute path for a folder elsewhere") from exc
    key_path = layout.path("reports", "survey_key.json")
    if not key_path.is_file():
        raise dg.Failure(description=f"answer key {key_path} does not exist: materialize survey_kit first")
    if not answers.is_dir():
        raise dg.Failure(description=f"answers folder {answers} does not exist: put the CSV files respondents "
                                     f"downloaded there (or set answers_dir)")
    try:
        scores = score_survey(answers, key_path)
    except (OSError, ValueError) as exc:
        raise dg.Failure(description=str(exc)) from exc
    for error in scores.errors:
        context.log.warning(f"left out: {error}")
    errors_md = "\n".join(f"- {previews.markdown_text(e.path.name)}: {previews.markdown_text(e.reason, 300)}"
                          for e in scores.errors) or "None."
    if not scores.files:
        raise dg.Failure(description=f"no readable answer CSV in {answers}",
                         metadata={"errors": dg.MetadataValue.md(errors_md)})
    out = layout.path("reports", "survey_results.csv")
    write_text_atomic(out, scores.table.to_csv(index=False))
    return dg.MaterializeResult(metadata={
        "scores": dg.MetadataValue.md(scores_markdown(scores.table)),
        "respondents": scores.respondents,
        "files_scored": len(scores.files),
        "files_left_out": dg.MetadataValue.md(errors_md),
        "table": dg.MetadataValue.path(str(out)),
    })


REPORT_ASSETS = [results_page, survey_kit, survey_results]
