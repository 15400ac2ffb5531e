"""Metric baselines on real tiles and the cost of each metric (prints two tables).

Table 1, what the numbers mean at this N: FID/KID between two halves of the real coloured tiles (different
paintings; the small-sample floor a generator cannot beat), and every metric of the trivial "colouriser" that
returns the gray input (the ceiling a useful generator must beat). Table 2, cost: Inception and LPIPS per image,
ΔE / SSIM per pair, and FID+KID with 200 bootstrap resamples at several N (synthetic 2048-d features).

    .venv/bin/python bench/metrics_baselines.py [--shared DIR] [--n 100]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lpd_pipeline.imaging import decode_image, luma_bt601  # noqa: E402
from lpd_pipeline.metrics import (MetricModels, all_metrics, colorfulness, delta_e_per_pair,  # noqa: E402
                                  distribution_metrics, ssim_per_pair)


def real_tiles(paintings: Path, count: int, size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """``count`` non-overlapping tiles from the coloured paintings, with the painting index of each."""
    tiles, owners = [], []
    for index, path in enumerate(sorted((paintings / "colored").iterdir())):
        image = decode_image(path)
        for y in range(0, image.shape[0] - size + 1, size):
            for x in range(0, image.shape[1] - size + 1, size):
                tiles.append(image[y:y + size, x:x + size])
                owners.append(index)
        if len(tiles) >= count:
            break
    if len(tiles) < count:
        raise SystemExit(f"only {len(tiles)} tiles of {size} px in {paintings / 'colored'}")
    return np.stack(tiles[:count]), np.array(owners[:count])


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared")
    parser.add_argument("--n", type=int, default=100, help="tiles per half (default 100)")
    args = parser.parse_args()
    models, load_s = timed(lambda: MetricModels("cpu"))
    tiles, owners = real_tiles(args.shared / "paintings", 2 * args.n + 16)
    # halves by painting (even / odd painting index), so no painting is on both sides
    half_a, half_b = tiles[owners % 2 == 0][: args.n], tiles[owners % 2 == 1][: args.n]
    n = min(len(half_a), len(half_b))
    half_a, half_b = half_a[:n], half_b[:n]
    gray = np.repeat(luma_bt601(half_a.reshape(-1, 256, 3)).reshape(n, 256, 256)[..., None], 3, axis=-1)

    feats_a, inc_s = timed(lambda: models.inception_features(half_a))
    feats_b = models.inception_features(half_b)
    halves = distribution_metrics(feats_a, feats_b)
    baseline, _ = timed(lambda: all_metrics(half_a, gray, models, real_features=feats_a))
    print(f"\nTable 1: metric baselines, {n} real coloured 256x256 tiles per set ({args.shared / 'paintings'})\n")
    print("| comparison | FID [95% CI] | KID x1000 [95% CI] | LPIPS | ΔE00 | PSNR dB | SSIM | CF real / fake |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    print(f"| real half A vs real half B (other paintings) | {halves['fid']:.1f} [{halves['fid_lo']:.1f}, "
          f"{halves['fid_hi']:.1f}] | {1e3 * halves['kid']:.1f} [{1e3 * halves['kid_lo']:.1f}, "
          f"{1e3 * halves['kid_hi']:.1f}] | | | | | {colorfulness(half_a):.1f} / {colorfulness(half_b):.1f} |")
    b = baseline
    print(f"| gray input as output vs real half A | {b['fid']:.1f} [{b['fid_lo']:.1f}, {b['fid_hi']:.1f}] | "
          f"{1e3 * b['kid']:.1f} [{1e3 * b['kid_lo']:.1f}, {1e3 * b['kid_hi']:.1f}] | {b['lpips']:.4f} | "
          f"{b['delta_e']:.2f} | {b['psnr']:.2f} | {b['ssim']:.4f} | {b['colorfulness_real']:.1f} / "
          f"{b['colorfulness_fake']:.1f} |")

    _, lpips_s = timed(lambda: models.lpips(half_a, gray))
    _, de_s = timed(lambda: delta_e_per_pair(half_a, gray))
    _, ssim_s = timed(lambda: ssim_per_pair(half_a, gray))
    print("\nTable 2: cost on this machine (CPU)\n")
    print("| step | time |")
    print("| --- | --- |")
    print(f"| load Inception + LPIPS | {load_s:.1f} s |")
    print(f"| Inception features, 256 px tile | {1e3 * inc_s / n:.0f} ms/tile |")
    print(f"| LPIPS (alex), 256 px pair | {1e3 * lpips_s / n:.0f} ms/pair |")
    print(f"| CIEDE2000 ΔE, 256 px pair | {1e3 * de_s / n:.0f} ms/pair |")
    print(f"| SSIM, 256 px pair | {1e3 * ssim_s / n:.0f} ms/pair |")
    rng = np.random.default_rng(0)
    for size in (100, 500, 1000):
        x, y = np.abs(rng.normal(size=(size, 2048))), np.abs(rng.normal(0.1, 1, size=(size, 2048)))
        _, dist_s = timed(lambda: distribution_metrics(x, y, bootstrap=200))
        print(f"| FID + KID, 200 bootstrap resamples, N = {size} | {dist_s:.1f} s |")


if __name__ == "__main__":
    main()
