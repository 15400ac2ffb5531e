"""The colour-quality ladder: each variant trained on the same curated tiles for the same budget, scored alike.

    python bench/quality.py [--storage /tmp/quality_storage] [--shared ../shared] [--size 128] [--images 2000]
                            [--seed 0] [--ink-tiles 200] [--ngf 64] [--threads 1] [--out bench/quality_runs]
                            [--variants gray unet256 unet256-lab unet256-labcls unet256-labcls-aug-cf]
                            [--merge OTHER_OUT_FOLDER...] [--restart]

1. Tiles: ``--storage`` holds a curated dataset; when it has none, ``paintings/colored`` and ``paintings/ink`` of
   ``--shared`` are curated into it by the pipeline's own curation (ingest, dedup, tiles, filters, split; each
   painting's kind is its folder, the human label). ``--size`` below the tile size trains and tests on
   area-downscaled copies (gray = BT.601 luma of the downscaled colour tile), made once under
   ``<storage>/quality/size<N>/``.
2. Each variant (a named recipe of ``lpd_pipeline.models.recipes``: a TrainConfig over the paper's defaults) is
   trained with ``lpd_pipeline.training.loop.train`` for ``--images`` images (whole epochs, rounded; half at the
   initial lr, half decaying, as the paper's schedule), seed ``--seed``, batch 1, on ``--threads`` CPU threads,
   with a checkpoint each epoch: run again, the same command continues a killed run from its newest checkpoint
   (exact resume) and scores a finished one without training; ``--restart`` trains from scratch.
3. Its last checkpoint colours the test_color tiles and ``--ink-tiles`` seeded test_ink tiles through the one
   inference path (``evaluation.generation.generate``) and is scored by the project's metrics
   (``evaluation.evaluate.score_generated``: FID/KID with bootstrap intervals, LPIPS, ΔE, ΔCF, ink KID and
   colourfulness); LPIPS and ΔE get bootstrap intervals over the test tiles here, and every row is compared with
   the paper's U-Net row by a paired bootstrap on the same tiles. ``gray`` is the input left gray.
4. Rows go to ``<out>/rows.json`` (a rerun of one variant replaces its row), per-tile values to
   ``<out>/tiles/<variant>.npz``, a sample sheet per variant to ``<out>/sheets/<variant>.png`` (and a 2/3-size
   ``.jpg``); the table is
   printed (markdown). ``--merge`` adds the rows of the same ladder run in another process (another ``--out``);
   ``--variants`` with no name only prints the table.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lpd_pipeline import imaging  # noqa: E402
from lpd_pipeline.files import write_parquet_atomic, write_text_atomic  # noqa: E402
from lpd_pipeline.metrics.color import colorfulness_per_image  # noqa: E402
from lpd_pipeline.models.abbins import bins_head  # noqa: E402
from lpd_pipeline.models.recipes import RECIPES, train_config  # noqa: E402
from lpd_pipeline.settings import StorageLayout  # noqa: E402

# The ladder's rungs: "gray" (no model: the input left gray) and every named recipe of the package
# (lpd_pipeline/models/recipes.py: name -> TrainConfig fields over the paper's defaults; the same names are the
# pipeline's model variants).
VARIANTS: dict[str, dict] = {"gray": {}, **{name: dict(r.fields) for name, r in RECIPES.items()}}
BASELINE = "unet256"
METRIC_COLUMNS = ["fid", "kid", "lpips", "delta_e", "delta_cf", "ink_kid", "ink_colorfulness"]


# ---- tiles ----------------------------------------------------------------------------------------------
def curate(storage: Path, folders: list[Path]) -> None:
    """``folders`` (each with ``colored/`` and ``ink/``) through the pipeline's curation into ``storage`` (kind = the
    folder's human label)."""
    from lpd_pipeline.curation import dataset as curation
    from lpd_pipeline.sources.local import scan_local_folder

    layout = StorageLayout(storage)
    items, overrides = [], {}
    for folder, kind in ((folder, kind) for folder in folders for kind in ("colored", "ink")):
        found, _ = scan_local_folder(folder / kind)
        items += found
        overrides.update({Path(item.path).name: kind for item in found})
    config = curation.CurationConfig(kind_overrides=overrides)
    paintings, rejected = curation.ingest_paintings(items, config)
    marked, rejected_dedup = curation.dedup_paintings(paintings, config)
    tiles, rejected_tiles = curation.cut_tiles(marked, layout, config)
    paintings, kept, rejected_split = curation.assemble_dataset(marked, tiles, config)
    curation.write_dataset_tables(layout, paintings, kept,
                                  pd.concat([rejected, rejected_dedup, rejected_tiles, rejected_split]))


def downscaled_storage(storage: Path, size: int) -> Path:
    """A storage whose tiles are the curated ones area-downscaled to ``size`` (made once; gray = luma of colour)."""
    import cv2

    tiles = pd.read_parquet(storage / "dataset" / "tiles.parquet")
    if int(tiles["size"].iloc[0]) == size:
        return storage
    root = storage / "quality" / f"size{size}"
    table = root / "dataset" / "tiles.parquet"
    if table.is_file():
        return root
    rows = []
    for row in tiles.to_dict("records"):
        color = imaging.decode_image(storage / row["color_path"])
        small = cv2.resize(color, (size, size), interpolation=cv2.INTER_AREA)
        color_rel = f"dataset/tiles/{row['tile_id']}_color.png"
        gray_rel = f"dataset/tiles/{row['tile_id']}_gray.png"
        imaging.save_image(root / color_rel, small)
        imaging.save_image(root / gray_rel, imaging.luma_bt601(small))
        rows.append({**row, "size": size, "color_path": color_rel, "gray_path": gray_rel})
    table.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_parquet(table, index=False)
    return root


def with_extra_training(root: Path, extra: Path, size: int) -> Path:
    """A storage whose train split is ``root``'s plus every colour tile of the curated ``extra`` storage (all its
    splits but test_ink: other paintings than ``root``'s, so the test tiles stay ``root``'s alone), made once."""
    import cv2

    combined = root.parent / f"{root.name}-plus-{extra.name}"
    table = combined / "dataset" / "tiles.parquet"
    if table.is_file():
        return combined
    base = pd.read_parquet(root / "dataset" / "tiles.parquet")
    added = pd.read_parquet(extra / "dataset" / "tiles.parquet")
    added = added[added["split"] != "test_ink"]
    rows = []
    for source, frame, is_extra in ((root, base, False), (extra, added, True)):
        for row in frame.to_dict("records"):
            color = imaging.decode_image(source / row["color_path"])
            if color.shape[0] != size:
                color = cv2.resize(color, (size, size), interpolation=cv2.INTER_AREA)
            color_rel = f"dataset/tiles/{row['tile_id']}_color.png"
            gray_rel = f"dataset/tiles/{row['tile_id']}_gray.png"
            imaging.save_image(combined / color_rel, color)
            imaging.save_image(combined / gray_rel, imaging.luma_bt601(color))
            rows.append({**row, "size": size, "color_path": color_rel, "gray_path": gray_rel,
                         "split": "train" if is_extra else row["split"]})
    table.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_parquet(table, index=False)
    return combined


def test_tiles(root: Path, ink_tiles: int, seed: int) -> dict[str, np.ndarray]:
    """test_color gray/colour (all) and ``ink_tiles`` seeded test_ink gray tiles, decoded."""
    from lpd_pipeline.training.data import build_tile_store

    table = root / "dataset" / "tiles.parquet"
    color = build_tile_store(table, root, "test_color", root / "quality_stores" / "test_color")
    ink = build_tile_store(table, root, "test_ink", root / "quality_stores" / "test_ink")
    pick = np.sort(np.random.default_rng(seed).choice(ink.n, size=min(ink_tiles, ink.n), replace=False))
    return {"gray": np.array(color.gray()), "real": np.array(color.color()), "ink_gray": np.array(ink.gray())[pick]}


# ---- validation: held-out training paintings, for choices made after training ---------------------------
VALIDATION_SEED = 20261130  # fixed apart from --seed: every seed's rows hold out the same paintings
VALIDATION_SPLIT = "validation"
TEMPERATURES = (0.38, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


def hold_out_validation(root: Path, fraction: float) -> tuple[Path, dict[str, np.ndarray]]:
    """A copy of ``root``'s tile table in which ``fraction`` of the train paintings (drawn with
    ``VALIDATION_SEED``; whole paintings, so none is on both sides) form the ``validation`` split, which training
    never reads; returns its path and the validation tiles (colour, and gray = BT.601 luma), decoded.

    The test tiles stay as they are: the validation tiles are where decode settings are chosen, so that the test
    figures of the chosen setting are not also the figures it was chosen by."""
    tiles = pd.read_parquet(root / "dataset" / "tiles.parquet")
    train_ids = np.sort(tiles.loc[tiles["split"] == "train", "painting_id"].unique())
    n_val = max(1, round(fraction * len(train_ids)))
    held = set(np.random.default_rng(VALIDATION_SEED).permutation(train_ids)[:n_val].tolist())
    tiles.loc[(tiles["split"] == "train") & tiles["painting_id"].isin(held), "split"] = VALIDATION_SPLIT
    table = root / "dataset" / f"tiles-val{round(fraction * 100)}.parquet"
    write_parquet_atomic(tiles, table)  # rewritten each time: it follows the storage's table
    val_rows = tiles[tiles["split"] == VALIDATION_SPLIT].sort_values("tile_id")
    real = np.stack([imaging.decode_image(root / rel) for rel in val_rows["color_path"]])
    return table, {"real": real, "gray": np.stack([imaging.luma_bt601(image) for image in real])}


def temperature_sweep(loaded, val: dict[str, np.ndarray]) -> list[dict]:
    """ΔE and colourfulness of the validation tiles decoded at each of ``TEMPERATURES`` (the model's own
    temperature is restored afterwards)."""
    from lpd_pipeline.evaluation.generation import generate
    from lpd_pipeline.metrics.paired import delta_e_per_pair

    head = bins_head(loaded.net)
    own = float(head.temperature)
    rows = []
    try:
        for t in TEMPERATURES:
            head.set_temperature(t)
            fake = generate(loaded, val["gray"])
            rows.append({"t": t, "delta_e": float(delta_e_per_pair(val["real"], fake).mean()),
                         "cf": float(colorfulness_per_image(fake).mean())})
    finally:
        head.set_temperature(own)
    return rows


def choose_temperature(sweep: list[dict], real_cf: float, gray_delta_e: float) -> float:
    """The decode temperature chosen on the validation tiles by section 2's two demands at equal weight: faithful
    colour (ΔE relative to the gray input's) and vivid colour (the colourfulness gap relative to the real
    colourfulness): the lowest ``ΔE / ΔE_gray + |CF - CF_real| / CF_real`` (the gray input scores 2, a perfect
    colouring 0)."""
    return min(sweep, key=lambda row: row["delta_e"] / gray_delta_e + abs(row["cf"] - real_cf) / real_cf)["t"]


# ---- training and scoring -------------------------------------------------------------------------------
def train_variant(name: str, root: Path, table: Path, out: Path, size: int, images: int, seed: int, ngf: int,
                  restart: bool = False):
    """Train ``name`` on the train split of ``table`` for about ``images`` images (whole epochs); returns (loaded
    generator, images seen, seconds of training). A checkpoint every epoch (only the newest kept besides the
    last): a killed ladder continues from it (exact resume; the seconds add up), a finished run is scored again
    without training; ``restart`` starts over (the earlier run moves to ``previous_runs/``)."""
    from lpd_pipeline.training.checkpoints import load_generator
    from lpd_pipeline.training.data import read_split_tiles
    from lpd_pipeline.training.loop import train

    n_train = len(read_split_tiles(table, "train"))
    epochs = max(1, round(images / n_train))
    config = train_config(name, tile_size=size, seed=seed, ngf=ngf, ndf=ngf, device="cpu",
                          n_epochs=math.ceil(epochs / 2), n_epochs_decay=epochs // 2, checkpoint_every=1,
                          keep_every=epochs)
    run_dir = out / "runs" / name
    result = train(config, table, root, run_dir, restart=restart,
                   store_dir=root / "quality_stores" / f"train-{table.stem}")
    wall = float(result.history[-1]["wall_time_s"]) if result.history else float("nan")
    return load_generator(result.checkpoints[-1], mode="eval"), epochs * n_train, wall


def bootstrap_mean(values: np.ndarray, rng: np.random.Generator, n: int = 1000) -> tuple[float, float]:
    means = values[rng.integers(0, len(values), size=(n, len(values)))].mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def score(name: str, generated: np.ndarray, ink_generated: np.ndarray, tiles, models, real_stats) -> dict:
    """Every metric of one variant's generated tiles (the project's), plus per-tile LPIPS and ΔE."""
    from lpd_pipeline.evaluation.evaluate import score_generated
    from lpd_pipeline.evaluation.settings import EvaluationSettings
    from lpd_pipeline.metrics.paired import delta_e_per_pair

    values = score_generated(tiles["real"], generated, real_stats, models, EvaluationSettings(bootstrap=200),
                             ink_generated=ink_generated)
    per_tile = {"lpips": np.asarray(models.lpips(tiles["real"], generated), dtype=np.float64),
                "delta_e": np.asarray(delta_e_per_pair(tiles["real"], generated), dtype=np.float64)}
    rng = np.random.default_rng(0)
    for key, array in per_tile.items():
        values[f"{key}_lo"], values[f"{key}_hi"] = bootstrap_mean(array, rng)
    return values, per_tile


def paired_difference(name: str, per_tile: dict, base: dict, real_cf: float) -> dict:
    """Mean difference (variant - paper U-Net) of LPIPS, ΔE and |CF - CF_real| with a paired bootstrap 95 % CI."""
    rng = np.random.default_rng(1)
    out = {}
    idx = rng.integers(0, len(per_tile["lpips"]), size=(1000, len(per_tile["lpips"])))
    for key in ("lpips", "delta_e"):
        diff = per_tile[key] - base[key]
        samples = diff[idx].mean(axis=1)
        out[key] = (float(diff.mean()), float(np.percentile(samples, 2.5)), float(np.percentile(samples, 97.5)))
    # ΔCF is a set statistic: resample the tiles, recompute both sets' mean colourfulness gap to the real one.
    cf, cf_base, cf_real = per_tile["cf"], base["cf"], base["cf_real"]
    gap = np.abs(cf[idx].mean(1) - cf_real[idx].mean(1)) - np.abs(cf_base[idx].mean(1) - cf_real[idx].mean(1))
    out["delta_cf"] = (float(abs(cf.mean() - cf_real.mean()) - abs(cf_base.mean() - cf_real.mean())),
                       float(np.percentile(gap, 2.5)), float(np.percentile(gap, 97.5)))
    return out


def paired_delta_e(per_tile: dict, other: dict) -> tuple[float, float, float]:
    """Mean ΔE difference (variant - other) over the same tiles with a paired bootstrap 95 % CI."""
    diff = per_tile["delta_e"] - other["delta_e"]
    idx = np.random.default_rng(1).integers(0, len(diff), size=(1000, len(diff)))
    samples = diff[idx].mean(axis=1)
    return float(diff.mean()), float(np.percentile(samples, 2.5)), float(np.percentile(samples, 97.5))


def record(rows: dict, out: Path, name: str, generated: np.ndarray, ink_generated: np.ndarray, tiles, models,
           real_stats, real_cf: np.ndarray, args, *, seen: int, wall: float, started: float,
           extra: dict | None = None) -> None:
    """Score one row's generated tiles, keep its per-tile values and sample sheet, write ``rows.json``."""
    from lpd_pipeline.evaluation.samples import sample_sheet

    values, per_tile = score(name, generated, ink_generated, tiles, models, real_stats)
    per_tile.update(cf=colorfulness_per_image(generated), cf_real=real_cf)
    (out / "tiles").mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out / "tiles" / f"{name}.npz", **per_tile)
    pick = np.linspace(0, len(generated) - 1, 8).astype(int)
    ink_pick = np.linspace(0, len(ink_generated) - 1, 6).astype(int)
    sheet = sample_sheet(f"{name}  {args.size}px  {seen} images  LPIPS {values['lpips']:.3f}  "
                         f"dE {values['delta_e']:.2f}", [str(i) for i in pick], tiles["gray"][pick],
                         generated[pick], tiles["real"][pick], [str(i) for i in ink_pick],
                         tiles["ink_gray"][ink_pick], ink_generated[ink_pick])
    imaging.save_image(out / "sheets" / f"{name}.png", sheet)
    small = Image.fromarray(sheet).resize((sheet.shape[1] * 2 // 3, sheet.shape[0] * 2 // 3), Image.LANCZOS)
    small.save(out / "sheets" / f"{name}.jpg", quality=80)  # small enough to keep beside bench/RESULTS.md
    rows[name] = {**values, "images_seen": seen, "wall_s": wall, "size": args.size, "seed": args.seed,
                  "ngf": args.ngf, "threads": args.threads, "score_s": time.perf_counter() - started - wall,
                  **(extra or {})}
    write_text_atomic(out / "rows.json", json.dumps(rows, indent=1, default=float))
    print(f"{name}: LPIPS {values['lpips']:.4f} dE {values['delta_e']:.2f} KID {values['kid']:.4f} "
          f"CF {values['colorfulness_fake']:.1f} (real {values['colorfulness_real']:.1f}) "
          f"train {wall:.0f}s", flush=True)


# ---- the table ------------------------------------------------------------------------------------------
def _fmt_interval(row: dict, key: str, scale: float = 1.0, digits: int = 2) -> str:
    value = row.get(key)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    text = f"{value * scale:.{digits}f}"
    if row.get(f"{key}_lo") is not None:
        text += f" [{row[f'{key}_lo'] * scale:.{digits}f}, {row[f'{key}_hi'] * scale:.{digits}f}]"
    return text


def table(rows: dict) -> str:
    head = ("| variant | images seen | wall (s) | FID | KID ×1e3 | LPIPS | ΔE | ΔCF (CF) | test_ink KID ×1e3 | "
            "ink CF |\n|---|---|---|---|---|---|---|---|---|---|\n")
    lines = []
    for name, row in rows.items():
        lines.append(
            f"| {name} | {row['images_seen']} | {row['wall_s']:.0f} | {_fmt_interval(row, 'fid', digits=1)} | "
            f"{_fmt_interval(row, 'kid', 1e3, 1)} | {_fmt_interval(row, 'lpips', digits=3)} | "
            f"{_fmt_interval(row, 'delta_e')} | {row['delta_cf']:.1f} ({row['colorfulness_fake']:.1f}) | "
            f"{_fmt_interval(row, 'ink_kid', 1e3, 1)} | {row.get('ink_colorfulness', float('nan')):.1f} |")
    return head + "\n".join(lines)


def comparison(rows: dict) -> str:
    lines = ["| variant | ΔLPIPS vs unet256 [95 % CI] | ΔΔE | Δ(ΔCF) | beats on LPIPS/ΔE/ΔCF/KID "
             "| ΔE − gray's [95 % CI] |", "|---|---|---|---|---|---|"]
    base = rows.get(BASELINE)
    for name, row in rows.items():
        diff = row.get("vs_baseline")
        if not diff or name == BASELINE or base is None:
            continue
        cells, wins = [], []
        for key in ("lpips", "delta_e", "delta_cf"):
            mean, lo, hi = diff[key]
            cells.append(f"{mean:+.3f} [{lo:+.3f}, {hi:+.3f}]")
            wins.append("yes" if hi < 0 else "no")
        wins.append("yes" if row["kid_hi"] < base["kid_lo"] else "no")
        vs_gray = row.get("vs_gray_delta_e")
        gray_cell = (f"{vs_gray[0]:+.3f} [{vs_gray[1]:+.3f}, {vs_gray[2]:+.3f}]"
                     f"{' (below)' if vs_gray[2] < 0 else ''}" if vs_gray else "–")
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {'/'.join(wins)} | {gray_cell} |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--storage", type=Path, default=Path("/tmp/quality_storage"))
    parser.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ink-tiles", type=int, default=200)
    parser.add_argument("--ngf", type=int, default=64, help="generator and discriminator width (64: the paper's)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads; on a shared, loaded CPU one thread per process is far faster "
                             "(measured: 0.5-0.7 img/s with 2 threads vs 2.7-3.2 with 1, U-Net ngf 16 at 128 px)")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "quality_runs")
    parser.add_argument("--extra-train", choices=["web"], default=None,
                        help="web: also train on every colour tile of paintings/web (curated by the pipeline into "
                             "<storage>_web); the test tiles stay the museum ones")
    parser.add_argument("--val-fraction", type=float, default=0.15,
                        help="share of the train paintings held out (whole paintings, a fixed draw) as validation "
                             "tiles, where a labcls variant's decode temperature is chosen (a second row, "
                             "<variant>@t<T>, when it differs from the recipe's); 0: train on every train painting, "
                             "no choice (the rows of before)")
    parser.add_argument("--restart", action="store_true",
                        help="train each variant from scratch (the earlier run moves to previous_runs/); default: "
                             "continue from its newest checkpoint (one per epoch), a finished run is only scored")
    parser.add_argument("--merge", type=Path, nargs="*", default=[],
                        help="ladder folders of the same settings run elsewhere (another --out): their rows, "
                             "per-tile values and sheets join this table")
    parser.add_argument("--variants", nargs="*", default=["gray", "unet256", "unet256-lab", "unet256-labcls",
                                                          "unet256-labcls-aug-cf"], choices=sorted(VARIANTS))
    return parser.parse_args(argv)


def prepare_tiles(args: argparse.Namespace):
    """The ladder's storage (curated once, downscaled to ``--size``, with ``--extra-train``), its test tiles,
    the training table (validation paintings held out) and the validation tiles, and the ladder's folder."""
    if not (args.storage / "dataset" / "tiles.parquet").is_file():
        curate(args.storage, [args.shared / "paintings"])
    root = downscaled_storage(args.storage, args.size)
    if args.extra_train == "web":
        web_storage = args.storage.parent / f"{args.storage.name}_web"
        if not (web_storage / "dataset" / "tiles.parquet").is_file():
            curate(web_storage, [args.shared / "paintings" / "web"])
        root = with_extra_training(root, web_storage, args.size)
    tiles = test_tiles(root, args.ink_tiles, args.seed)
    tiles_table, val = root / "dataset" / "tiles.parquet", None
    if args.val_fraction > 0:
        tiles_table, val = hold_out_validation(root, args.val_fraction)
    out = args.out / (f"size{args.size}-images{args.images}-ngf{args.ngf}-seed{args.seed}"
                      + (f"-{args.extra_train}" if args.extra_train else "")
                      + (f"-val{round(args.val_fraction * 100)}" if args.val_fraction > 0 else ""))
    return root, tiles, tiles_table, val, out


def run_variant(name: str, args: argparse.Namespace, root: Path, tiles_table: Path, val, out: Path, rows: dict,
                tiles, models, real_stats, real_cf) -> None:
    """Train (or resume) one recipe, score it into ``rows``; a class recipe also gets its validation
    temperature sweep, and a second row at the chosen temperature when it differs from the recipe's."""
    from lpd_pipeline.evaluation.generation import generate
    from lpd_pipeline.metrics.paired import delta_e_per_pair

    started = time.perf_counter()
    loaded, seen, wall = train_variant(name, root, tiles_table, out, args.size, args.images, args.seed, args.ngf,
                                       args.restart)
    extra, head = {}, bins_head(loaded.net)
    if val is not None and head is not None:
        sweep = temperature_sweep(loaded, val)
        val_gray_de = float(delta_e_per_pair(val["real"], np.repeat(val["gray"][..., None], 3, axis=3)).mean())
        val_cf = float(colorfulness_per_image(val["real"]).mean())
        chosen = choose_temperature(sweep, val_cf, val_gray_de)
        extra = {"validation_sweep": sweep, "validation_gray_delta_e": val_gray_de, "validation_real_cf": val_cf,
                 "chosen_t": chosen}
        print(f"{name}: validation sweep (gray dE {val_gray_de:.2f}, real CF {val_cf:.1f}): "
              + ", ".join(f"T {r['t']:g}: dE {r['delta_e']:.2f} CF {r['cf']:.1f}" for r in sweep)
              + f" -> T {chosen:g}", flush=True)
    record(rows, out, name, generate(loaded, tiles["gray"]), generate(loaded, tiles["ink_gray"]), tiles,
           models, real_stats, real_cf, args, seen=seen, wall=wall, started=started, extra=extra)
    if extra and not math.isclose(extra["chosen_t"], float(head.temperature), abs_tol=1e-6):
        head.set_temperature(extra["chosen_t"])
        record(rows, out, f"{name}@t{extra['chosen_t']:g}", generate(loaded, tiles["gray"]),
               generate(loaded, tiles["ink_gray"]), tiles, models, real_stats, real_cf, args, seen=seen,
               wall=wall, started=time.perf_counter(), extra=extra)


def merge_rows(rows: dict, out: Path, others: list[Path]) -> None:
    """The rows, per-tile values and sheets of the same ladder run in other folders, into ``out``."""
    for other in others:
        merged = json.loads((other / "rows.json").read_text())
        for name in merged:
            for sub, suffix in (("tiles", ".npz"), ("sheets", ".png"), ("sheets", ".jpg")):
                if (other / sub / f"{name}{suffix}").is_file():
                    (out / sub).mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(other / sub / f"{name}{suffix}", out / sub / f"{name}{suffix}")
        rows.update(merged)
        write_text_atomic(out / "rows.json", json.dumps(rows, indent=1, default=float))


def compare_rows(rows: dict, out: Path, real_cf: np.ndarray) -> None:
    """Each row's paired differences from the paper's U-Net row and its ΔE against the gray input's."""
    base_path = out / "tiles" / f"{BASELINE}.npz"
    if base_path.is_file():
        base = dict(np.load(base_path))
        for name in rows:
            path = out / "tiles" / f"{name}.npz"
            if path.is_file() and name != BASELINE:
                rows[name]["vs_baseline"] = paired_difference(name, dict(np.load(path)), base, float(real_cf.mean()))
    gray_path = out / "tiles" / "gray.npz"
    if gray_path.is_file():
        gray_tiles = dict(np.load(gray_path))
        for name in rows:
            path = out / "tiles" / f"{name}.npz"
            if path.is_file() and name != "gray":
                rows[name]["vs_gray_delta_e"] = paired_delta_e(dict(np.load(path)), gray_tiles)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(args.threads)
    root, tiles, tiles_table, val, out = prepare_tiles(args)
    rows_path = out / "rows.json"
    rows = json.loads(rows_path.read_text()) if rows_path.is_file() else {}

    from lpd_pipeline.evaluation.evaluate import RealStatistics, default_models
    from lpd_pipeline.metrics import colorfulness

    real_cf = colorfulness_per_image(tiles["real"])
    models = real_stats = None
    if args.variants:
        models = default_models("cpu")
        real_stats = RealStatistics(np.asarray(models.inception_features(tiles["real"]), dtype=np.float64),
                                    float(colorfulness(tiles["real"])))
    for name in args.variants:
        if name == "gray":
            record(rows, out, name, np.repeat(tiles["gray"][..., None], 3, axis=3),
                   np.repeat(tiles["ink_gray"][..., None], 3, axis=3), tiles, models, real_stats, real_cf, args,
                   seen=0, wall=0.0, started=time.perf_counter())
        else:
            run_variant(name, args, root, tiles_table, val, out, rows, tiles, models, real_stats, real_cf)
    merge_rows(rows, out, args.merge)
    compare_rows(rows, out, real_cf)
    write_text_atomic(rows_path, json.dumps(rows, indent=1, default=float))
    print(table(rows))
    print()
    print(comparison(rows))


if __name__ == "__main__":
    main()
