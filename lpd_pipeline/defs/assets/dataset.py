"""Dataset assets: raw paintings -> dedup -> tiles and filters -> pairs and split -> pix2pix export.

The work is done by lpd_pipeline.curation.dataset; these assets fetch inputs, call it, and describe the result
(counts, rejection reasons, preview grids) as asset metadata.
"""


import time
from pathlib import Path

import dagster as dg
import pandas as pd
from pydantic import Field

from lpd_pipeline import demo, imaging
from lpd_pipeline.files import write_parquet_atomic
from lpd_pipeline.curation import dataset as curation
from lpd_pipeline.curation import dedup, filters, previews
from lpd_pipeline.defs.resources import (
    CurationResource,
    PaintingSourcesResource,
    StorageResource,
    asset_table_path,
)
from lpd_pipeline.defs.stages import CURATE, INGEST, stage_options
from lpd_pipeline.settings import StorageLayout
from lpd_pipeline.sources import local
from lpd_pipeline.sources.download import Downloader
from lpd_pipeline.sources.manifest import collect_from_manifest
from lpd_pipeline.sources.met import MetSource

PREVIEW_TILES = 16
PREVIEW_THUMB = 96


def _stage_rejections_path(layout: StorageLayout, stage: str) -> Path:
    return layout.path("dataset", "rejections", f"{stage}.parquet")


def _save_stage_rejections(layout: StorageLayout, stage: str, rejections: pd.DataFrame) -> None:
    write_parquet_atomic(rejections, _stage_rejections_path(layout, stage))


def _reasons_markdown(rejections: pd.DataFrame) -> str:
    if rejections.empty:
        return "No rejections."
    counts = rejections.groupby(["stage", "reason"]).size().sort_values(ascending=False)
    lines = ["| stage | reason | count |", "| --- | --- | ---: |"]
    text = previews.markdown_text  # stages and reasons are ours; items and details come from outside
    lines += [f"| {text(stage)} | {text(reason)} | {count} |" for (stage, reason), count in counts.items()]
    examples = rejections.head(10)
    lines += ["", "First rejected items:", ""]
    lines += [f"- {text(Path(row.item).name)} ({text(row.reason)}): {text(row.detail, 120)}"
              for row in examples.itertuples()]
    return "\n".join(lines)


def _progress_logger(context: dg.AssetExecutionContext, what: str):
    every = 25

    def report(done: int, total: int) -> None:
        if done == total or done % every == 0:
            context.log.info(f"{what}: {done}/{total}")

    return report


def _counting_progress(context: dg.AssetExecutionContext, what: str):
    """A progress callback that logs like ``_progress_logger`` and remembers the total it was told: the number
    of items the stage actually processed (cached ones are not reported). Returns (callback, count)."""
    log = _progress_logger(context, what)
    seen = {"total": 0}

    def report(done: int, total: int) -> None:
        seen["total"] = total
        log(done, total)

    return report, lambda: seen["total"]


def _ingest_work(items: list, decoded: int, rejections: pd.DataFrame) -> dict[str, int]:
    """What ingest did: files found, decoded this run, taken from the decode cache (unchanged files: the rest
    but those that could not even be opened)."""
    unreadable = int((rejections["reason"] == "unreadable").sum()) if len(rejections) else 0
    return {"files_found": len(items), "decoded": decoded, "reused_from_cache": len(items) - decoded - unreadable}


def _tiling_work(paintings: pd.DataFrame, layout: StorageLayout, config: curation.CurationConfig) -> dict[str, int]:
    """Paintings whose tiles are scored this run (no score cache for this grid yet) and those reused."""
    kept = paintings[paintings["is_representative"]] if "is_representative" in paintings else paintings
    cached = sum(curation.score_cache_path(layout, pid, config).is_file() for pid in kept["painting_id"])
    return {"paintings_scored": len(kept) - cached, "paintings_reused": cached}


def _refuse_to_replace_real_data_with_demo(previous_table: Path, layout: StorageLayout) -> None:
    """A run with no source configured (a scheduled refresh without LPD_RAW_DIR, say) must not overwrite a
    storage built from real paintings with the demo ones."""
    if not previous_table.exists():
        return
    paths = pd.read_parquet(previous_table, columns=["path"])["path"]
    demo_root = layout.demo_raw_dir
    real = [path for path in paths if not Path(path).is_relative_to(demo_root)]
    if real:
        raise dg.Failure(description=(
            f"no painting source is configured for this run (LPD_RAW_DIR unset, no painting_sources config), "
            f"but {layout.root} holds a dataset built from real paintings (e.g. {real[0]}); refusing to replace "
            "it with the demo paintings. Set LPD_RAW_DIR (also for the dagster daemon that runs schedules and "
            "sensors) or painting_sources in the run config, or use another LPD_STORAGE for the demo."))


class RawPaintingsConfig(dg.Config):
    """How the embedded demo paintings are generated (used only when no painting source is configured)."""

    demo_scale: float = Field(
        1.0, ge=0.05, le=4.0,
        description="size of the generated demo paintings (1: sides of 560-1024 px; make demo uses 0.5 with "
                    "128-px tiles, a quarter of the pixels)")


@dg.asset(**stage_options(INGEST), kinds={"python", "parquet"}, io_manager_key="parquet_io_manager")
def raw_paintings(
    context: dg.AssetExecutionContext,
    config: RawPaintingsConfig,
    storage: StorageResource,
    painting_sources: PaintingSourcesResource,
    curation_settings: CurationResource,
) -> dg.Output[pd.DataFrame]:
    """Every painting file from the configured sources, decoded once: id (content hash), size, kind, hash.

    Undecodable files (truncated, zero-byte, HTML saved as .jpg, decompression bombs...) and failed
    downloads are listed in ``dataset/rejections/ingest.parquet``; the run goes on with the good files.
    """
    layout = storage.layout()
    demo_scale = config.demo_scale  # (the op config; `config` is the curation's from here on)
    config = curation_settings.to_config()
    collected = []  # (paintings, failures) per source
    previous = asset_table_path(layout.root, context.asset_key)
    if painting_sources.uses_demo:
        _refuse_to_replace_real_data_with_demo(previous, layout)
        demo_dir = demo.ensure_demo_paintings(layout.demo_raw_dir, scale=demo_scale)
        context.log.info(f"No raw source configured: using the embedded demo paintings in {demo_dir}")
        collected.append(local.scan_local_folder(demo_dir))
    if painting_sources.raw_dir:
        collected.append(local.scan_local_folder(Path(painting_sources.raw_dir)))
    if painting_sources.url_manifest or painting_sources.met_query:
        downloader = Downloader(layout.downloads_dir, painting_sources.download_policy())
        if painting_sources.url_manifest:
            collected.append(collect_from_manifest(Path(painting_sources.url_manifest), downloader))
        if painting_sources.met_query:
            collected.append(MetSource(downloader).collect(painting_sources.met_query,
                                                           limit=painting_sources.met_limit,
                                                           max_objects=painting_sources.met_max_objects or None))
    items = [item for found, _ in collected for item in found]
    failures = [failure for _, failures_of_source in collected for failure in failures_of_source]
    # This asset's previous value is the decode cache: unchanged files are not decoded again.
    cache = pd.read_parquet(previous) if previous.exists() else None
    started = time.perf_counter()
    progress, decoded = _counting_progress(context, "decoded")
    paintings, rejections = curation.ingest_paintings(items, config, cache=cache, progress=progress)
    work = _ingest_work(items, decoded(), rejections)
    seconds = time.perf_counter() - started
    rejections = pd.concat([curation.failures_to_rejections(failures), rejections], ignore_index=True)
    _save_stage_rejections(layout, "ingest", rejections)
    for row in rejections.itertuples():
        context.log.warning(f"rejected {row.item}: {row.reason} {row.detail}")
    if paintings.empty:
        # Almost always a misconfiguration (wrong folder, unmounted drive, a manifest of dead links). Failing
        # keeps the previous dataset and its pix2pix export instead of replacing them with empty ones.
        sources = painting_sources.describe()
        reasons = rejections["reason"].value_counts().to_dict()
        raise dg.Failure(
            description=(f"no usable painting in {sources}: {len(items)} painting files found, "
                         f"{len(rejections)} rejected {reasons or ''}".strip()),
            metadata={"sources": sources, "rejection_reasons": dg.MetadataValue.md(_reasons_markdown(rejections))},
        )
    kinds = paintings["kind"].value_counts().to_dict()
    return dg.Output(paintings, metadata={
        "paintings": len(paintings),
        "colored": int(kinds.get("colored", 0)),
        "ink": int(kinds.get("ink", 0)),
        "kind_source": dg.MetadataValue.json(paintings["kind_source"].value_counts().to_dict()),
        "rejected_files": len(rejections),
        "rejection_reasons": dg.MetadataValue.md(_reasons_markdown(rejections)),
        "provenance": dg.MetadataValue.md(previews.provenance_markdown(paintings)),
        "megapixels": float(paintings["pixels"].sum() / 1e6) if len(paintings) else 0.0,
        **work,
        # Cached rows (unchanged files) are not decoded again, so re-runs are much faster than a first run.
        "seconds": dg.MetadataValue.float(round(seconds, 2)),
        "worker_processes": config.worker_count(),
    })


@dg.asset(**stage_options(CURATE), kinds={"python", "parquet"}, io_manager_key="parquet_io_manager")
def deduplicated_paintings(
    context: dg.AssetExecutionContext,
    raw_paintings: pd.DataFrame,
    storage: StorageResource,
    curation_settings: CurationResource,
) -> dg.Output[pd.DataFrame]:
    """Near-duplicate paintings (resized, recompressed, slightly cropped, grayscale copies) collapsed to one each."""
    layout = storage.layout()
    marked, rejections = curation.dedup_paintings(raw_paintings, curation_settings.to_config())
    _save_stage_rejections(layout, "dedup", rejections)
    report = dedup.cluster_report(marked, id_col="painting_id") if len(marked) else pd.DataFrame()
    name_of = {pid: Path(path).name for pid, path in zip(marked["painting_id"], marked["path"])}
    cluster_lines = ["| cluster | kept | copies |", "| --- | --- | --- |"]
    text = previews.markdown_text  # file names come from outside
    cluster_lines += [f"| {row.dup_cluster} | {text(name_of[row.representative])} | "
                      f"{', '.join(text(name_of[pid]) for pid in row.duplicates)} |" for row in report.itertuples()]
    return dg.Output(marked, metadata={
        "paintings_in": len(raw_paintings),
        "representatives": int(marked["is_representative"].sum()) if len(marked) else 0,
        "duplicate_clusters": len(report),
        "clusters": dg.MetadataValue.md("\n".join(cluster_lines) if len(report) else "No near-duplicates."),
    })


@dg.asset(**stage_options(CURATE), kinds={"python", "parquet"}, io_manager_key="parquet_io_manager")
def painting_tiles(
    context: dg.AssetExecutionContext,
    deduplicated_paintings: pd.DataFrame,
    storage: StorageResource,
    curation_settings: CurationResource,
) -> dg.Output[pd.DataFrame]:
    """Every tile of every kept painting with one score per filter; kept tiles written as colour/gray PNGs."""
    layout = storage.layout()
    config = curation_settings.to_config()
    started = time.perf_counter()
    work = _tiling_work(deduplicated_paintings, layout, config)  # before the run writes new score caches
    tiles, rejections = curation.cut_tiles(
        deduplicated_paintings, layout, config, progress=_progress_logger(context, "tiled")
    )
    seconds = time.perf_counter() - started
    _save_stage_rejections(layout, "tiles", rejections)
    kept = tiles[tiles["rejected_by"] == ""]
    per_filter = {name: int(tiles["rejected_by"].str.split(",").map(lambda r, n=name: n in r).sum())
                  for name in filters.FILTER_NAMES}
    paths = dict(zip(deduplicated_paintings["painting_id"], deduplicated_paintings["path"]))
    metadata = {
        "tiles": len(tiles),
        "kept": len(kept),
        "rejected": len(tiles) - len(kept),
        "rejected_per_filter": dg.MetadataValue.json(per_filter),
        "thresholds": dg.MetadataValue.json(config.thresholds.as_dict()),
        # Scores and tile files already on disk are reused, so re-runs are much faster than a first run.
        "seconds": dg.MetadataValue.float(round(seconds, 2)),
        "worker_processes": config.worker_count(),
        **work,
    }
    if len(tiles):
        titles = _painting_titles(deduplicated_paintings)
        metadata["preview_kept"] = dg.MetadataValue.md(_preview(kept.head(PREVIEW_TILES), paths, "kept", titles))
        rejected = _worst_per_filter(tiles, config)
        metadata["preview_rejected"] = dg.MetadataValue.md(_preview(rejected, paths, "rejected", titles))
    return dg.Output(tiles, metadata=metadata)


def _worst_per_filter(tiles: pd.DataFrame, config: curation.CurationConfig) -> pd.DataFrame:
    """The highest-scoring rejected tiles of each filter, a few each, captioned with the reason."""
    picks = []
    thresholds = config.thresholds.as_dict()
    for name in filters.FILTER_NAMES:
        hit = tiles[tiles["rejected_by"].str.split(",").map(lambda r, n=name: n in r)]
        hit = hit.assign(margin=hit[f"score_{name}"] - thresholds[name], caption_reason=name)
        picks.append(hit.sort_values("margin", ascending=False).head(3))
    return pd.concat(picks).head(PREVIEW_TILES) if picks else tiles.head(0)


def _preview(rows: pd.DataFrame, painting_paths: dict[str, str], label: str, titles: dict[str, str]) -> str:
    """A sheet of tiles captioned with their painting's title (and, for rejected ones, the filter), a legend."""
    if rows.empty:
        return f"No {label} tiles."
    crops = previews.crop_tiles(rows, painting_paths)
    names = [titles.get(pid, pid) for pid in rows["painting_id"]]
    if "caption_reason" in rows:
        names = [f"{reason}: {name}" for reason, name in zip(rows["caption_reason"], names)]
    captions, legend = previews.titled_captions(names, max_chars=previews.caption_chars(PREVIEW_THUMB))
    sheet = previews.contact_sheet(crops, captions, thumb=PREVIEW_THUMB, columns=8)
    return f"{previews.markdown_image(sheet, f'{label} tiles')}\n\n{legend}"


PREVIEW_PAIRS = 8
_SPLIT_ORDER = {curation.SPLIT_TRAIN: 0, curation.SPLIT_TEST_COLOR: 1, curation.SPLIT_TEST_INK: 2}


def _painting_titles(paintings: pd.DataFrame) -> dict[str, str]:
    """painting id -> its title, else its file name (never the hash)."""
    titles = paintings["title"].fillna("") if "title" in paintings else pd.Series("", index=paintings.index)
    names = [Path(path).stem for path in paintings["path"]]
    return {pid: (str(title).strip() or name) for pid, title, name in zip(paintings["painting_id"], titles, names)}


def _pairs_preview(layout: StorageLayout, paintings: pd.DataFrame, tiles: pd.DataFrame) -> str:
    """Gray | colour pairs as training and evaluation see them: one per painting (its least blank tile), the
    splits taken in turn (train, test_color, test_ink), captioned with the split and the painting's title."""
    if tiles.empty:
        return "No pairs."
    ranked = tiles.assign(rank=tiles["split"].map(_SPLIT_ORDER).fillna(len(_SPLIT_ORDER)))
    one_each = ranked.sort_values(["rank", "painting_id", "score_blank"]).groupby("painting_id", sort=False).head(1)
    # The n-th painting of every split before the (n+1)-th of any: each split is shown.
    one_each = one_each.assign(turn=one_each.groupby("split").cumcount())
    picks = one_each.sort_values(["turn", "rank"]).head(PREVIEW_PAIRS)
    titles = _painting_titles(paintings)
    pairs = [(imaging.decode_image(layout.path(row.gray_path)), imaging.decode_image(layout.path(row.color_path)))
             for row in picks.itertuples()]
    captions, legend = previews.titled_captions(
        [f"{row.split}: {titles.get(row.painting_id, row.painting_id)}" for row in picks.itertuples()],
        max_chars=previews.caption_chars(2 * PREVIEW_THUMB))
    sheet = previews.pair_sheet(pairs, captions, thumb=PREVIEW_THUMB)
    return f"{previews.markdown_image(sheet, 'gray | colour pairs')}\n\n{legend}"


@dg.asset(**stage_options(CURATE), kinds={"python", "parquet"})
def tile_pairs(
    context: dg.AssetExecutionContext,
    deduplicated_paintings: pd.DataFrame,
    painting_tiles: pd.DataFrame,
    storage: StorageResource,
    curation_settings: CurationResource,
) -> dg.MaterializeResult:
    """The curated dataset: grayscale/colour pairs split by work into train, test_color and test_ink.

    Its one copy is ``dataset/tiles.parquet`` (the table training reads; downstream assets and checks read it
    from there), beside ``dataset/paintings.parquet`` and ``dataset/rejections.parquet`` (the rejections of
    every stage up to the split together; export problems stay in ``dataset/rejections/export.parquet``).
    Files the previous dataset used and this one does not are deleted only once these tables are in place, so a
    run killed before then leaves the previous dataset whole.
    """
    layout = storage.layout()
    config = curation_settings.to_config()
    paintings, tiles, rejections = curation.assemble_dataset(deduplicated_paintings, painting_tiles, config)
    _save_stage_rejections(layout, "split", rejections)
    stage_files = [_stage_rejections_path(layout, s) for s in ("ingest", "dedup", "tiles", "split")]
    all_rejections = pd.concat([pd.read_parquet(p) for p in stage_files if p.exists()], ignore_index=True)
    paths = curation.write_dataset_tables(layout, paintings, tiles, all_rejections)
    removed = curation.remove_superseded_files(layout, deduplicated_paintings, painting_tiles, config)
    # Storages written before the dataset had one copy also hold the IO manager's copy of this table.
    legacy_copy = asset_table_path(layout.root, context.asset_key)
    if legacy_copy.exists():
        legacy_copy.unlink()
        removed.append(legacy_copy.relative_to(layout.root).as_posix())
    if removed:
        context.log.info(f"removed {len(removed)} file(s) and folder(s) the new dataset no longer uses, e.g. "
                         f"{', '.join(removed[:5])}")
    counts = tiles["split"].value_counts().to_dict()
    per_painting = tiles.groupby("painting_id").size()
    text = previews.markdown_text
    return dg.MaterializeResult(metadata={
        "train_tiles": int(counts.get(curation.SPLIT_TRAIN, 0)),
        "test_color_tiles": int(counts.get(curation.SPLIT_TEST_COLOR, 0)),
        "test_ink_tiles": int(counts.get(curation.SPLIT_TEST_INK, 0)),
        "paintings_per_split": dg.MetadataValue.json(
            paintings[paintings["split"] != ""]["split"].value_counts().to_dict()),
        "tiles_per_painting": dg.MetadataValue.md(
            f"min {int(per_painting.min()) if len(per_painting) else 0}, "
            f"median {float(per_painting.median()) if len(per_painting) else 0:g}, "
            f"max {int(per_painting.max()) if len(per_painting) else 0}"),
        "tiles_table": dg.MetadataValue.path(str(paths["tiles"])),
        "rejections_table": dg.MetadataValue.path(str(paths["rejections"])),
        "rejections_total": len(all_rejections),
        "rejection_reasons": dg.MetadataValue.md(_reasons_markdown(all_rejections)),
        "curation_config": curation.curation_config_fingerprint(config),
        "preview": dg.MetadataValue.md(_pairs_preview(layout, paintings, tiles)),
        "removed_superseded": len(removed),
        "removed_examples": dg.MetadataValue.md("\n".join(f"- {text(path)}" for path in removed[:20])
                                                or "Nothing to remove."),
    })


@dg.asset(**stage_options(CURATE), kinds={"python"}, io_manager_key="parquet_io_manager", deps=[tile_pairs])
def pix2pix_aligned_export(context: dg.AssetExecutionContext, storage: StorageResource) -> dg.Output[pd.DataFrame]:
    """The pairs in pix2pix's aligned layout (A|B side by side; train/, test/, test_ink/) for other tools."""
    layout = storage.layout()
    counts, rejections = curation.export_pix2pix_aligned(pd.read_parquet(layout.tiles_table), layout)
    _save_stage_rejections(layout, "export", rejections)
    for row in rejections.itertuples():
        context.log.warning(f"not exported {row.item}: {row.reason} {row.detail}")
    table = pd.DataFrame({"folder": list(counts), "images": list(counts.values())})
    table["path"] = [str(layout.pix2pix_dir / folder) for folder in table["folder"]]
    return dg.Output(table, metadata={
        "root": dg.MetadataValue.path(str(layout.pix2pix_dir)),
        **{f"{folder}_images": int(n) for folder, n in counts.items()},
        "not_exported": len(rejections),
    })


DATASET_ASSETS = [raw_paintings, deduplicated_paintings, painting_tiles, tile_pairs, pix2pix_aligned_export]
