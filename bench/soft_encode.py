"""The ab soft encoding of a labcls training step: the windowed nearest-bin search against the search over all bins.

    OMP_NUM_THREADS=1 .venv/bin/python bench/soft_encode.py [--sizes 128 256] [--repeats 5]

Both searches run alternately on the same random sRGB tiles (batch 1, one thread), so load from other processes
affects both alike; each time is the median of ``--repeats`` calls. Prints a table: tile size, all bins (ms),
windowed (ms), ratio. The windowed search is ``lpd_pipeline.models.abbins._soft_neighbours``; the baseline is the
search it replaced (``_sq_distances`` to every bin, then top-K), written out here.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lpd_pipeline.models import abbins  # noqa: E402
from lpd_pipeline.models.colorspace import rgb_to_lab  # noqa: E402


def all_bins(ab: torch.Tensor, centers: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    near_d, near_i = abbins._sq_distances(ab, centers).topk(abbins.SOFT_NEIGHBOURS, dim=-1, largest=False)
    return torch.softmax(-near_d / (2 * abbins.SOFT_SIGMA**2), dim=-1), near_i


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    centers = abbins.bin_centers(abbins.DEFAULT_GRID)
    print("| tile | all bins (ms) | windowed (ms) | ratio |\n|---|---|---|---|")
    for size in args.sizes:
        ab = rgb_to_lab(torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(size)))[:, 1:]
        times = {all_bins: [], abbins._soft_neighbours: []}
        for _ in range(args.repeats + 1):  # the first round warms up
            for search, spent in times.items():
                start = time.perf_counter()
                search(ab, centers)
                spent.append(time.perf_counter() - start)
        base, windowed = (statistics.median(spent[1:]) * 1e3 for spent in times.values())
        print(f"| {size}² | {base:.1f} | {windowed:.1f} | {base / windowed:.1f}x |")


if __name__ == "__main__":
    main()
