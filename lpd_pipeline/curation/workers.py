"""The process pool of curation: ``map`` over decoding and tile-scoring jobs, in order, in parallel when it pays.

Rule: workers come from a fork server, never a plain fork (the caller may be a multi-threaded Dagster process,
and forking threads can deadlock), run one OpenCV thread each, and batches below ``MIN_ITEMS_FOR_POOL`` stay in
this process. Jobs return failures as values, so one bad item never stops the map.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor

# Below this many items a process pool costs more (start-up, imports) than it saves.
MIN_ITEMS_FOR_POOL = 16
# Imported once by the fork server, so forked workers start with the curation code (numpy, pandas, OpenCV,
# SciPy) loaded.
PRELOAD_MODULES = ["lpd_pipeline.curation.dataset"]


def parallel_map(function: Callable, jobs: list, workers: int) -> Iterable:
    """``map(function, jobs)`` in order, over a process pool when it pays off.

    The fork server is a fresh single-threaded process that imports the curation modules once; each pool then
    forks ready workers from it in milliseconds (spawning imports numpy, pandas, OpenCV and SciPy again in every
    worker: ~1.6 s per pool on 2 cores).
    """
    if workers <= 1 or len(jobs) < MIN_ITEMS_FOR_POOL:
        return map(function, jobs)
    pool = ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=_worker_context(),
                               initializer=_init_worker)
    return _drain(pool, pool.map(function, jobs, chunksize=2))


def _worker_context() -> multiprocessing.context.BaseContext:
    if "forkserver" not in multiprocessing.get_all_start_methods():  # e.g. Windows
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    # Takes effect only if this process has not started its fork server yet; otherwise workers import lazily.
    context.set_forkserver_preload(PRELOAD_MODULES)
    return context


def _drain(pool: ProcessPoolExecutor, results: Iterable) -> Iterable:
    with pool:
        yield from results


def _init_worker() -> None:
    # One OpenCV thread per process: the pool already uses every core, and OpenCV's own threads on
    # 256-pixel tiles cost more in synchronisation than they gain. The same for torch (the watermark CNN),
    # which reads the variable when a worker first imports it.
    import os

    import cv2

    cv2.setNumThreads(1)
    os.environ["OMP_NUM_THREADS"] = "1"
