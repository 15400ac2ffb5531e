"""Near-duplicate search speed: multi-index hashing vs brute force, on 10k and 100k 64-bit hashes.

    .venv/bin/python bench/dedup_bench.py [--sizes 10000 100000] [--brute-force-max 20000]

Hashes are synthetic: uniform random bits except the top bit, which is always 1 as in pHash (the DC coefficient
always beats the median), with 5 % planted near copies (up to max_distance + 2 bits flipped). Real pHashes are
less uniform than this, so real bucket loads are somewhat higher. Brute force above ``brute_force_max`` hashes
is timed on the first ``brute_force_max`` and extrapolated by (n / m)^2; the method column says so. Where brute
force ran in full, the two results are compared and must be equal.

Threshold study behind PAINTING_MAX_DISTANCE / TILE_MAX_DISTANCE (580 real paintings in ../shared/paintings):
see the module docstring of lpd_pipeline.curation.dedup.
"""

from __future__ import annotations

import argparse
import time
from typing import Sequence

import numpy as np

from lpd_pipeline.curation import dedup


def synthetic_hashes(n: int, max_distance: int, *, seed: int = 0, planted_fraction: float = 0.05) -> np.ndarray:
    """``n`` pHash-like hashes (top bit set) with ``planted_fraction`` near copies of other hashes."""
    rng = np.random.default_rng(seed)
    hashes = rng.integers(0, 2**63, size=n, dtype=np.uint64) | np.uint64(1 << 63)
    planted = rng.choice(n, size=int(n * planted_fraction), replace=False)
    sources = rng.integers(0, n, size=len(planted))
    flips = rng.integers(0, max_distance + 3, size=len(planted))
    for target, source, count in zip(planted, sources, flips):
        mask = 0
        for bit in rng.choice(63, size=int(count), replace=False):
            mask |= 1 << int(bit)
        hashes[target] = hashes[source] ^ np.uint64(mask)
    return hashes


_LAST_CPU_SECONDS = [0.0]


def _timed(function, *args) -> tuple[float, np.ndarray]:
    """Wall seconds and result; the process CPU seconds go to _LAST_CPU_SECONDS (the machine is shared, so
    CPU time shows what the search itself costs when wall time is inflated by other load)."""
    start, cpu_start = time.perf_counter(), time.process_time()
    result = function(*args)
    _LAST_CPU_SECONDS[0] = time.process_time() - cpu_start
    return time.perf_counter() - start, result


def run_dedup_benchmark(
    sizes: Sequence[int] = (10_000, 100_000),
    brute_force_max: int = 20_000,
    max_distances: Sequence[int] = (dedup.TILE_MAX_DISTANCE, dedup.PAINTING_MAX_DISTANCE),
    variant_sizes: Sequence[int] = (1_000, 10_000),
    seed: int = 0,
) -> list[dict]:
    """Time exact near-duplicate search against brute force. One dict per (n, max_distance, method).

    Keys: n, max_distance, method, seconds (wall), cpu_seconds, pairs, speedup (brute-force wall seconds / this
    method's wall seconds), note. ``variant_sizes`` adds the crop-tolerant painting search (25 window hashes per image).
    """
    rows: list[dict] = []
    for max_distance in max_distances:
        for n in sizes:
            hashes = synthetic_hashes(n, max_distance, seed=seed)
            fast_s, fast_pairs = _timed(dedup.near_duplicate_pairs, hashes, max_distance)
            fast_cpu = _LAST_CPU_SECONDS[0]
            if n <= brute_force_max:
                brute_s, brute_pairs = _timed(dedup.brute_force_pairs, hashes, max_distance)
                brute_cpu = _LAST_CPU_SECONDS[0]
                if not np.array_equal(brute_pairs, fast_pairs):
                    raise AssertionError(f"multi-index search differs from brute force at n={n}, d={max_distance}")
                brute_row = {"method": "brute force", "pairs": len(brute_pairs), "note": "full run, results equal"}
            else:
                subset_s, _ = _timed(dedup.brute_force_pairs, hashes[:brute_force_max], max_distance)
                brute_s = subset_s * (n / brute_force_max) ** 2
                brute_cpu = _LAST_CPU_SECONDS[0] * (n / brute_force_max) ** 2
                brute_row = {"method": f"brute force (extrapolated from {brute_force_max:,})", "pairs": None,
                             "note": f"{subset_s:.2f} s on {brute_force_max:,} x (n/m)^2"}
            rows.append({"n": n, "max_distance": max_distance, "method": "multi-index hashing", "seconds": fast_s,
                         "cpu_seconds": fast_cpu, "pairs": len(fast_pairs), "speedup": brute_s / fast_s, "note": ""})
            rows.append({"n": n, "max_distance": max_distance, "seconds": brute_s, "cpu_seconds": brute_cpu,
                         "speedup": 1.0, **brute_row})
    windows = len(dedup.CROP_WINDOW_TRIMS) ** 2
    for n in variant_sizes:
        max_distance = dedup.PAINTING_MAX_DISTANCE
        rng = np.random.default_rng(seed + 1)
        full = synthetic_hashes(n, max_distance, seed=seed)
        variants = np.concatenate(
            [full[:, None], rng.integers(0, 2**63, size=(n, windows - 1), dtype=np.uint64) | np.uint64(1 << 63)], axis=1
        )
        fast_s, fast_pairs = _timed(dedup.near_duplicate_pairs_with_variants, variants, max_distance)
        rows.append({"n": n, "max_distance": max_distance, "method": f"crop windows ({windows}/image), multi-index",
                     "seconds": fast_s, "cpu_seconds": _LAST_CPU_SECONDS[0], "pairs": len(fast_pairs),
                     "speedup": None,
                     "note": f"{n * windows:,} window hashes"})
    return rows


def print_table(rows: list[dict]) -> None:
    print(f"{'n hashes':>9} {'d':>3} {'method':<40} {'seconds':>9} {'cpu s':>8} {'pairs':>8} {'speedup':>9}  note")
    for row in rows:
        pairs = "-" if row["pairs"] is None else f"{row['pairs']:,}"
        speedup = "-" if row["speedup"] is None else f"{row['speedup']:.1f}x"
        print(f"{row['n']:>9,} {row['max_distance']:>3} {row['method']:<40} {row['seconds']:>9.3f} "
              f"{row['cpu_seconds']:>8.3f} {pairs:>8} "
              f"{speedup:>9}  {row['note']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--brute-force-max", type=int, default=20_000)
    parser.add_argument("--max-distances", type=int, nargs="+",
                        default=[dedup.TILE_MAX_DISTANCE, dedup.PAINTING_MAX_DISTANCE])
    parser.add_argument("--variant-sizes", type=int, nargs="*", default=[1_000, 10_000])
    args = parser.parse_args()
    print_table(run_dedup_benchmark(args.sizes, args.brute_force_max, args.max_distances, args.variant_sizes))


if __name__ == "__main__":
    main()
