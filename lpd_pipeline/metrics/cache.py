"""Inception features of a fixed image set, cached on disk by the content of its files.

Rule: the key is the SHA-256 over the ordered list of the files' SHA-256 digests plus :data:`FEATURES_VERSION`
(which names the feature extractor and preprocessing), so renamed or moved tiles hit the cache, changed bytes
or another order miss it, and rows always line up with the paths given. The value is a float64 ``[N, 2048]``
``.npy`` written atomically; a damaged or mis-shaped file is recomputed.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from lpd_pipeline.files import atomic_path, sha256_file

FEATURES_VERSION = "pytorch-fid-inception-pool3-2048/converted-v1/resize299-bilinear"


def features_key(paths: Sequence[str | os.PathLike]) -> str:
    """Content key of an ordered set of image files."""
    digest = hashlib.sha256(FEATURES_VERSION.encode())
    for path in paths:
        digest.update(bytes.fromhex(sha256_file(path)))
    return digest.hexdigest()[:32]


def cached_features(paths: Sequence[str | os.PathLike], cache_dir: str | os.PathLike,
                    compute: Callable[[], np.ndarray]) -> np.ndarray:
    """Features of ``paths`` from ``cache_dir/inception_<key>.npy``, else ``compute()`` (then stored)."""
    path = Path(cache_dir) / f"inception_{features_key(paths)}.npy"
    try:
        cached = np.load(path, allow_pickle=False)
        if cached.shape == (len(paths), 2048) and cached.dtype == np.float64 and np.isfinite(cached).all():
            return cached
    except (OSError, ValueError):
        pass
    features = np.asarray(compute(), dtype=np.float64)
    if features.shape != (len(paths), 2048):
        raise ValueError(f"computed features have shape {features.shape}, expected ({len(paths)}, 2048)")
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        np.save(tmp, features, allow_pickle=False)
    return features
