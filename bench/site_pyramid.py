"""Deep Zoom pyramids of the results page: speed and peak memory for 1, 10 and 100 MP paintings.

    .venv/bin/python bench/site_pyramid.py [--sizes 1,10,100] [--shared ../shared]

Each size runs in a fresh process: a handscroll-shaped (9:1 to 10:1) image is built from real paintings
(``<shared>/paintings/ink``, tiled side by side; procedural strokes when absent), written as PNG, then
``write_deep_zoom`` cuts its pyramid from the file. Printed per size: the decode of the PNG alone, the pyramid
(decode included), the floor (decode + JPEG tiles of the full-resolution level only, no lower levels: what any
pyramid must pay), the ratio pyramid / floor (goal <= 1.5: the lower levels hold 1/3 of the full level's pixels),
megapixels/s, and the peak RSS of the pyramid call above the RSS before it, beside the decoded image's bytes and
beside the peak of ``imaging.decode_image`` alone (the decoder's own peak is about 3.3x the image: Pillow's
4-byte-per-pixel buffer, the bytes copy ``np.asarray`` makes, the array). Goal: the pyramid adds at most 10% to
the decoder's peak, flat across sizes (the next level is a quarter of the image, halved in strips, and fits in
memory the decoder already freed).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SHAPES = {1: (3000, 334), 10: (10000, 1000), 100: (30000, 3334)}  # width, height


def _peak_rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def _current_rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def _reset_peak() -> None:
    # Linux >= 4.0: writing 5 to clear_refs resets the peak RSS (VmHWM) to the current RSS.
    Path("/proc/self/clear_refs").write_text("5")


def make_painting(width: int, height: int, shared: Path) -> np.ndarray:
    import cv2
    from lpd_pipeline import imaging
    sources = sorted((shared / "paintings" / "ink").glob("*.jpg"))[:12]
    pieces, filled, index = [], 0, 0
    while filled < width:
        if sources:
            rgb = imaging.decode_image(sources[index % len(sources)])
            piece = cv2.resize(rgb, (max(1, round(rgb.shape[1] * height / rgb.shape[0])), height),
                               interpolation=cv2.INTER_CUBIC)
        else:
            rng = np.random.default_rng(index)
            piece = np.full((height, height, 3), 235, np.uint8)
            for _ in range(200):
                x, y = rng.integers(0, height, 2)
                cv2.line(piece, (int(x), int(y)), (int(x + rng.integers(-80, 80)), int(y + rng.integers(0, 120))),
                         (40, 40, 40), int(rng.integers(1, 6)))
        pieces.append(piece)
        filled += piece.shape[1]
        index += 1
    return np.ascontiguousarray(np.hstack(pieces)[:, :width])


def child(megapixels: int, shared: Path) -> dict:
    from PIL import Image
    from lpd_pipeline import imaging
    from lpd_pipeline.reports import deepzoom
    width, height = SHAPES[megapixels]
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        imaging.save_image(work / "painting.png", make_painting(width, height, shared))
        image_bytes = width * height * 3
        imaging.decode_image(work / "painting.png")  # warm the page cache: every row below reads it warm
        start = time.perf_counter()
        decoded = imaging.decode_image(work / "painting.png")
        decode_s = time.perf_counter() - start
        # Floor: decode + the full-resolution level's JPEG tiles only.
        start = time.perf_counter()
        decoded = imaging.decode_image(work / "painting.png")
        (work / "floor").mkdir()
        for y in range(0, height, deepzoom.DEFAULT_TILE_SIZE):
            for x in range(0, width, deepzoom.DEFAULT_TILE_SIZE):
                tile = decoded[max(y - 1, 0): y + deepzoom.DEFAULT_TILE_SIZE + 1,
                               max(x - 1, 0): x + deepzoom.DEFAULT_TILE_SIZE + 1]
                Image.fromarray(np.ascontiguousarray(tile)).save(work / "floor" / f"{x}_{y}.jpg", quality=88)
        floor_s = time.perf_counter() - start
        del decoded, tile
        baseline = _current_rss()
        _reset_peak()
        decoded = imaging.decode_image(work / "painting.png")
        decode_peak = _peak_rss() - baseline
        del decoded
        baseline = _current_rss()
        _reset_peak()
        start = time.perf_counter()
        dzi = deepzoom.write_deep_zoom(work / "painting.png", work / "site", "p")
        pyramid_s = time.perf_counter() - start
        peak = _peak_rss() - baseline
    return {"mp": width * height / 1e6, "size": f"{width}x{height}", "decode_s": decode_s, "floor_s": floor_s,
            "pyramid_s": pyramid_s, "tiles": dzi.tiles, "peak_mb": peak / 2**20, "image_mb": image_bytes / 2**20,
            "decode_peak_mb": decode_peak / 2**20}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1,10,100")
    parser.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.shared)))
        return
    print(f"| MP | size | decode s | floor s | pyramid s | pyramid / floor | MP/s | tiles | image MB "
          f"| decode peak MB | pyramid peak MB | pyramid peak / image | pyramid peak / decode peak |")
    print("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for size in (int(s) for s in args.sizes.split(",")):
        out = subprocess.run([sys.executable, __file__, "--child", str(size), "--shared", str(args.shared)],
                             check=True, capture_output=True, text=True).stdout
        r = json.loads(out.strip().splitlines()[-1])
        print(f"| {r['mp']:.0f} | {r['size']} | {r['decode_s']:.2f} | {r['floor_s']:.2f} | {r['pyramid_s']:.2f} "
              f"| {r['pyramid_s'] / r['floor_s']:.2f} | {r['mp'] / r['pyramid_s']:.1f} | {r['tiles']} "
              f"| {r['image_mb']:.0f} | {r['decode_peak_mb']:.0f} | {r['peak_mb']:.0f} "
              f"| {r['peak_mb'] / r['image_mb']:.2f} | {r['peak_mb'] / r['decode_peak_mb']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
