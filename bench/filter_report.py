"""Tune and audit the tile filters on real paintings.

    python bench/filter_report.py [--shared DIR] [--out DIR] [--size 256] [--stride 256]

Cuts every painting under ``<shared>/paintings`` into tiles, scores them with
``lpd_pipeline.curation.filters``, prints per filter the fraction of tiles it rejects (alone and overall) and
writes to ``--out``:

- ``scores.csv``: one row per tile (file, x, y, one column per filter score, reasons);
- ``<filter>_rejected.png``: the highest-scoring tiles the filter rejects;
- ``<filter>_borderline_rejected.png`` / ``<filter>_borderline_kept.png``: tiles just above / just below the
  threshold, the ones that decide whether the threshold is right;
- ``kept_sample.png``: a random sample of tiles that pass every filter.

Look at the sheets: rejected tiles should really be blank / blurry / watermarked / seal / inscription /
padding, and kept tiles should be usable landscape.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
import time
from pathlib import Path

import cv2
import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from lpd_pipeline.files import write_bytes_atomic, write_text_atomic  # noqa: E402
from lpd_pipeline.curation.filters import (  # noqa: E402
    FILTER_NAMES,
    FilterThresholds,
    rejection_reasons,
    score_tile,
)
from lpd_pipeline.curation.tiling import tile_origins  # noqa: E402

THUMB = 128
GRID_COLUMNS = 8
GRID_ROWS = 5


def read_rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"{path}: not a decodable image")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def painting_files(shared: Path) -> list[Path]:
    root = shared / "paintings"
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in {".jpg", ".jpeg", ".png", ".tif", ".tiff"})
    if not files:
        raise SystemExit(f"no paintings found under {root}")
    return files


def contact_sheet(items: list[tuple[np.ndarray, str]]) -> bytes:
    """PNG bytes of a grid of thumbnails, each with a caption."""
    rows = max(1, -(-len(items) // GRID_COLUMNS))
    sheet = np.full((rows * (THUMB + 16), GRID_COLUMNS * THUMB, 3), 255, np.uint8)
    for i, (tile, caption) in enumerate(items):
        r, c = divmod(i, GRID_COLUMNS)
        y0, x0 = r * (THUMB + 16), c * THUMB
        sheet[y0 : y0 + THUMB, x0 : x0 + THUMB] = cv2.resize(tile, (THUMB, THUMB), interpolation=cv2.INTER_AREA)
        cv2.putText(sheet, caption[:22], (x0 + 2, y0 + THUMB + 12), cv2.FONT_HERSHEY_SIMPLEX, 0.33, (0, 0, 0), 1)
    ok, buf = cv2.imencode(".png", cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return buf.tobytes()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", type=Path, default=REPO_ROOT.parent / "shared")
    parser.add_argument("--out", type=Path, default=Path("/tmp/filter_report"))
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--stride", type=int, default=256)
    args = parser.parse_args(argv)

    # One OpenCV thread: the numbers then show the cost per core, and thread hand-off on small tiles only adds
    # overhead (the pipeline parallelises over tiles, not inside one).
    cv2.setNumThreads(1)
    thresholds = FilterThresholds()
    limits = thresholds.as_dict()
    files = painting_files(args.shared)
    rows: list[dict] = []
    tiles: list[np.ndarray] = []
    started = time.process_time()
    scoring_seconds = 0.0
    for index, path in enumerate(files):
        rgb = read_rgb(path)
        for x, y in tile_origins(rgb.shape[0], rgb.shape[1], args.size, args.stride):
            tile = np.ascontiguousarray(rgb[y : y + args.size, x : x + args.size])
            t0 = time.process_time()
            scores = score_tile(tile)
            scoring_seconds += time.process_time() - t0
            reasons = rejection_reasons(scores, thresholds)
            rows.append({"index": index, "file": str(path.relative_to(args.shared)), "x": x, "y": y,
                         **scores, "reasons": ",".join(reasons)})
            # Keep a small copy for the contact sheets; the full tiles of ~2000 paintings would not fit memory.
            tiles.append(cv2.resize(tile, (THUMB, THUMB), interpolation=cv2.INTER_AREA))
    total = len(rows)
    if total == 0:
        raise SystemExit("no tiles: every painting is smaller than one tile")

    print(f"{len(files)} paintings -> {total} tiles of {args.size}px (stride {args.stride}); "
          f"scoring {1000 * scoring_seconds / total:.2f} ms/tile, CPU total {time.process_time() - started:.1f} s")
    print(f"{'filter':<12} {'threshold':>9} {'rejects':>8} {'only this':>9}")
    for name in FILTER_NAMES:
        rejected = [r for r in rows if name in r["reasons"].split(",")]
        alone = [r for r in rejected if r["reasons"] == name]
        print(f"{name:<12} {limits[name]:>9.4g} {len(rejected) / total:>8.1%} {len(alone) / total:>9.1%}")
    kept = [i for i, r in enumerate(rows) if not r["reasons"]]
    print(f"{'kept':<12} {'':>9} {len(kept) / total:>8.1%}")

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(out / "scores.csv", buffer.getvalue())

    per_sheet = GRID_COLUMNS * GRID_ROWS
    for name in FILTER_NAMES:
        order = sorted(range(total), key=lambda i: rows[i][name])
        above = [i for i in order if rows[i][name] > limits[name]]
        below = [i for i in order if rows[i][name] <= limits[name]]
        sheets = {
            "rejected": above[::-1][:per_sheet],
            "borderline_rejected": above[:per_sheet],
            "borderline_kept": below[::-1][:per_sheet],
        }
        for label, picked in sheets.items():
            items = [(tiles[i], f"{rows[i]['index']}@{rows[i]['x']},{rows[i]['y']} {rows[i][name]:.3g}")
                     for i in picked]
            if items:
                write_bytes_atomic(out / f"{name}_{label}.png", contact_sheet(items))
    rng = np.random.default_rng(0)
    sample = rng.choice(kept, size=min(per_sheet, len(kept)), replace=False) if kept else []
    write_bytes_atomic(out / "kept_sample.png",
                       contact_sheet([(tiles[i], f"{rows[i]['index']}@{rows[i]['x']},{rows[i]['y']}")
                                      for i in sample]))
    print(f"contact sheets and scores.csv written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
