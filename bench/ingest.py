"""Ingest throughput: decode -> hash -> tile -> filter -> write, beside decode-only on the same files.

    .venv/bin/python bench/ingest.py [--shared ../shared] [--demo-scale 1.0] [--workers N] [--tile-model bundled,none]

Prints one table: paintings/s and megapixels/s for decode-only in one process (the floor) and for the full
ingest (lpd_pipeline.curation.dataset stages ingest_paintings + dedup_paintings + cut_tiles as the pipeline
runs them: ``--workers`` processes, default one per core; cold cache), their ratio (goal since issue 12:
the whole ingest within 20x of decode-only, the learned tile filter included), then dedup time for 10k and
100k hashes beside a brute-force baseline (goal: 100k under 5 s). The ``procs`` column says how many processes each row used.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/ helpers

from lpd_pipeline import demo, imaging  # noqa: E402
from lpd_pipeline.curation import dataset as curation  # noqa: E402
from lpd_pipeline.curation.workers import parallel_map  # noqa: E402
from lpd_pipeline.settings import StorageLayout, default_storage_root  # noqa: E402
from lpd_pipeline.sources.local import scan_local_folder  # noqa: E402


def time_decode_only(paths: list[Path]) -> float:
    start = time.perf_counter()
    for path in paths:
        imaging.decode_image(path)
    return time.perf_counter() - start


def _write_pairs_of_painting(job: tuple[str, list[tuple[int, int]], int, str]) -> int:
    """Decode one painting and write its kept tiles as gray + colour PNGs: the I/O the ingest cannot avoid."""
    path, origins, size, out_dir = job
    rgb = imaging.decode_image(path)
    for x, y in origins:
        tile = np.ascontiguousarray(rgb[y:y + size, x:x + size])
        imaging.save_image(Path(out_dir) / f"{x}_{y}_gray.png", imaging.luma_bt601(tile))
        imaging.save_image(Path(out_dir) / f"{x}_{y}_color.png", tile)
    return len(origins)


def time_decode_and_write_pairs(tiles, paintings, workdir: Path, workers: int) -> float:
    """Reference: decode every painting and write the same kept pairs, with no hashing, kind or filters."""
    kept = tiles[tiles["rejected_by"] == ""]
    paths = paintings.set_index("painting_id")["path"]
    jobs = [(paths[pid], list(zip(group["x"], group["y"])), int(group["size"].iloc[0]), str(workdir / pid))
            for pid, group in kept.groupby("painting_id")]
    start = time.perf_counter()
    written = sum(parallel_map(_write_pairs_of_painting, jobs, workers))
    assert written == len(kept)
    return time.perf_counter() - start


def time_full_ingest(folder: Path, workdir: Path, workers: int, tile_model: str = "bundled") -> tuple[float, dict]:
    """Cold-cache run of the stages; returns total seconds and per-stage seconds and counts."""
    layout = StorageLayout(workdir)
    config = curation.CurationConfig(workers=workers, tile_model=tile_model)
    start = time.perf_counter()
    items, _ = scan_local_folder(folder)
    paintings, _ = curation.ingest_paintings(items, config)
    after_ingest = time.perf_counter()
    marked, _ = curation.dedup_paintings(paintings, config)
    after_dedup = time.perf_counter()
    tiles, _ = curation.cut_tiles(marked, layout, config)
    end = time.perf_counter()
    pairs_only_s = time_decode_and_write_pairs(tiles, marked, workdir / "pairs_only", config.worker_count())
    return end - start, {
        "pairs_only_s": pairs_only_s,
        "tiles": len(tiles), "kept": int((tiles["rejected_by"] == "").sum()),
        "stages": {"decode+kind+hashes": after_ingest - start, "dedup": after_dedup - after_ingest,
                   "tile+filter+write": end - after_dedup},
    }


def _load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared",
                        help="folder holding paintings/ (real paintings, used when present, besides the demo set)")
    parser.add_argument("--demo-scale", type=float, default=1.0)
    parser.add_argument("--workers", type=int, default=0, help="ingest processes (0 = one per core, the default)")
    parser.add_argument("--no-dedup", action="store_true", help="skip the dedup benchmark")
    parser.add_argument("--tile-model", default="bundled",
                        help="CurationConfig.tile_model: bundled (the learned filter, as the pipeline) or none (rules); "
                             "a comma list (bundled,none) measures each, beside one decode-only floor per dataset")
    args = parser.parse_args()

    rows = []
    load_at_start = _load()
    # Write where the pipeline writes (under the storage root), not to /tmp: file creation costs differ a lot
    # between folders (0.06 vs 0.7 ms per file measured on the project machine, same ext4 volume).
    scratch_parent = default_storage_root()
    scratch_parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-ingest-", dir=scratch_parent) as tmp:
        demo_dir = Path(tmp) / "demo"
        demo.generate_demo_paintings(demo_dir, scale=args.demo_scale)
        datasets = [("demo", demo_dir)]
        if (args.shared / "paintings").is_dir():
            datasets.append(("shared", args.shared / "paintings"))
        for name, folder in datasets:
            items, _ = scan_local_folder(folder)
            paths = [Path(item.path) for item in items]
            megapixels = sum(w * h for w, h in (imaging.image_size(p) for p in paths)) / 1e6
            decode_s = time_decode_only(paths)
            for model in args.tile_model.split(","):
                full_s, counts = time_full_ingest(folder, Path(tmp) / f"storage_{name}_{model}", args.workers, model)
                rows.append((f"{name}:{model}" if "," in args.tile_model else name, len(paths), megapixels, decode_s,
                             full_s, counts))

    procs = curation.CurationConfig(workers=args.workers).worker_count()
    print(f"load average (1, 5, 15 min) at start: {load_at_start}; at end: {_load()}")
    print(f"{'data':<16} {'stage':<28} {'procs':>5} {'paintings':>9} {'MP':>8} {'seconds':>8} {'paint/s':>8} "
          f"{'MP/s':>7} {'x floor':>7}")
    for name, n, mp, decode_s, full_s, counts in rows:
        def row(stage: str, seconds: float, used: int, extra: str = "") -> None:
            print(f"{name:<16} {stage:<28} {used:>5} {n:>9} {mp:>8.1f} {seconds:>8.2f} {n / seconds:>8.1f} "
                  f"{mp / seconds:>7.1f} {seconds / decode_s:>7.2f}{extra}")

        row("decode only (floor)", decode_s, 1)
        row("decode>hash>tile>filter>write", full_s, procs, f"   ({counts['tiles']} tiles, {counts['kept']} kept)")
        for stage, seconds in counts["stages"].items():
            row("  of which " + stage, seconds, procs)
        row("ref: decode + write pairs", counts["pairs_only_s"], procs, "   (same kept tiles; no hash/kind/filters)")

    if not args.no_dedup:
        from dedup_bench import print_table, run_dedup_benchmark

        print()
        print_table(run_dedup_benchmark())


if __name__ == "__main__":
    main()
