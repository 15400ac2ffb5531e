"""Perceptual hashes, exact and scalable near-duplicate search, clustering, and representative choice.

Hash: a 64-bit DCT perceptual hash (the pHash algorithm, as in ``imagehash.phash``) of the BT.601 luma, so a
grayscale copy of a coloured painting hashes identically, and resizing or JPEG recompression moves it by a few
bits at most.

Crops: measured on the 580 real paintings in ``../shared/paintings``, plain pHash moves by 7 bits on average
(up to 26) under a 3-5 % crop per side, which overlaps the distances between distinct paintings. A cropped copy
*is* a sub-window of the original, so :func:`crop_variant_hashes` also hashes a small grid of sub-windows
(each axis trimmed by 0, 2.5 or 5 % at both ends, or 5 % at one end; 25 windows). Two images match when one's
full-image hash is within ``max_distance`` of any window hash of the other
(:func:`near_duplicate_pairs_with_variants`). Measured: every resized / JPEG q=60 / grayscale / randomly
cropped (0-5 % per side) copy lands within 10 bits (99th percentile 6).

Search: :func:`near_duplicate_pairs` is exact (equals :func:`brute_force_pairs`) and sub-quadratic by
multi-index hashing: split the 64 bits into ``m`` blocks; if two hashes differ in at most ``d`` bits, some block
i differs in at most ``r_i`` bits, for any radii with ``sum(r_i) >= d + 1 - m`` (pigeonhole). Each block is
indexed as a bucket table (counting sort), every query probes its block value and all values within ``r_i``
bit flips, and candidates are verified with a vectorized popcount. ``m`` comes from a cost model of probes plus
expected candidates. 100k hashes: ~0.2 s CPU at 6 bits, ~1.3 s at 10 bits (bench/dedup_bench.py).

Callers: a single ``phash`` column gives resize / recompression / grayscale tolerance; pass the
:func:`crop_variant_hashes` of each painting as ``variant_hash_col`` to :func:`choose_representatives` to also
catch crops. Tiles use the plain hash with :data:`TILE_MAX_DISTANCE` (:func:`near_duplicate_pairs`).
"""

from __future__ import annotations

import itertools
import math
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
from PIL import Image
from scipy import fft as sp_fft
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

# Tuned on ../shared/paintings (580 images, 167,910 pairs), crop-window matching:
# - synthetic copies of every painting (resize 0.5, JPEG q=60, grayscale, 3/5 % crops, 4 random 0-5 %-per-side
#   crops, crop+gray+resize combos): all within 10 bits, 99th percentile <= 6; at 8 bits 1 of 2,320 random crops
#   would be missed.
# - distinct files within 10 bits: 16 pairs. 9 are genuinely the same painting (re-scans, colour/ink versions
#   and crops shared by both source datasets). 7 are false: 5 among round fan paintings on blank mounts (the
#   layout dominates the lowest frequencies) and 2 others. At 8 bits: 12 pairs, the same 9 true + 3 fan pairs.
PAINTING_MAX_DISTANCE = 10
# Tiles are matched by their plain hash (the tile grid is fixed). 256 px tiles of the real paintings re-cut
# from a JPEG q=60 copy: 2 of 2,941 move by more than 6 bits; distinct tiles within 6 bits: 28 pairs, mostly
# blank mount or silk corners (which the tile filters reject anyway).
TILE_MAX_DISTANCE = 6

HASH_BITS = 64
_HASH_SIZE = 8  # 8x8 low-frequency DCT coefficients -> 64 bits
_DCT_SIZE = _HASH_SIZE * 4  # the image is reduced to 32x32 before the DCT, as pHash does
MIN_IMAGE_SIDE = 8  # smallest side a perceptual hash accepts
_REDUCING_GAP = 3.0  # PIL box-reduces to >= 3x the target size before Lanczos (fast, same result class)

# Per-axis (trim at start, trim at end) fractions of the crop windows; the first must be (0, 0) so that window
# 0 is the full image and equals perceptual_hash.
CROP_WINDOW_TRIMS: tuple[tuple[float, float], ...] = (
    (0.0, 0.0), (0.025, 0.025), (0.05, 0.05), (0.05, 0.0), (0.0, 0.05)
)

# Bucket tables have 2**bits entries; this caps one table at 4 Mi entries.
_MAX_BLOCK_BITS = 22
# Candidate pairs verified per step; bounds the memory of one step to a few hundred MB.
_CANDIDATE_BUDGET = 8_000_000


# ------------------------------------------------------------------------------------------------- hashing


def _as_luma_image(image: np.ndarray) -> Image.Image:
    """The image's luma as a PIL 'L' image.

    PIL's RGB->L is BT.601 in 16-bit fixed point: it can differ from :func:`lpd_pipeline.imaging.luma_bt601` by
    one grey level on rare rounding ties, which never changed a hash on the 580 real paintings (nor on their
    tiles), and it is ~10x faster. A gray (or gray-as-RGB) copy maps to exactly its own values.
    """
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"perceptual hash expects a uint8 image, got dtype {image.dtype}")
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 3):
        raise ValueError(f"perceptual hash expects (H, W, 3) RGB or (H, W) gray, got shape {image.shape}")
    if min(image.shape[:2]) < MIN_IMAGE_SIDE:
        raise ValueError(
            f"perceptual hash needs at least {MIN_IMAGE_SIDE}x{MIN_IMAGE_SIDE} pixels, got shape {image.shape}")
    image = np.ascontiguousarray(image)
    if image.ndim == 2:
        return Image.fromarray(image, mode="L")
    return Image.fromarray(image, mode="RGB").convert("L")


def _reduced_luma(gray: Image.Image, box: tuple[float, float, float, float] | None = None) -> np.ndarray:
    """``gray`` (or its ``box`` window) reduced to 32x32 by Lanczos, as float64."""
    small = gray.resize((_DCT_SIZE, _DCT_SIZE), Image.Resampling.LANCZOS, box=box, reducing_gap=_REDUCING_GAP)
    return np.asarray(small, dtype=np.float64)


def _phash_bits(reduced: np.ndarray) -> np.ndarray:
    """pHash of each 32x32 image in an ``(n, 32, 32)`` stack: 2-D DCT-II, 8x8 lowest frequencies, bit =
    coefficient > their median (bits row-major, first bit most significant). Returns uint64 ``(n,)``.

    One vectorised call for all windows of a painting: per-window numpy/scipy calls cost more than the maths.
    """
    coefficients = sp_fft.dct(sp_fft.dct(reduced, axis=1), axis=2)[:, :_HASH_SIZE, :_HASH_SIZE]
    flat = coefficients.reshape(len(reduced), -1)
    bits = flat > np.median(flat, axis=1, keepdims=True)
    return np.packbits(bits, axis=1).view(">u8").ravel().astype(np.uint64)


def perceptual_hash(image: np.ndarray) -> int:
    """64-bit perceptual hash of an RGB ``(H, W, 3)`` or gray ``(H, W)`` uint8 image, computed on its luma."""
    return int(_phash_bits(_reduced_luma(_as_luma_image(image))[None])[0])


def crop_variant_hashes(
    image: np.ndarray, trims: Sequence[tuple[float, float]] = CROP_WINDOW_TRIMS
) -> np.ndarray:
    """Hashes of the crop windows ``trims x trims`` (vertical x horizontal), uint64; element 0 is the full image.

    Store these for paintings and match with :func:`near_duplicate_pairs_with_variants` to catch crops of up
    to ~5 % per side.
    """
    if not trims or tuple(trims[0]) != (0.0, 0.0):
        raise ValueError(f"the first crop trim must be (0, 0) (the full image), got {trims!r}")
    for start, end in trims:
        if not (0 <= start < 0.5 and 0 <= end < 0.5):
            raise ValueError(f"crop trims must be fractions in [0, 0.5), got ({start}, {end})")
    gray = _as_luma_image(image)
    width, height = gray.size
    # Box-reduce once, by the factor PIL's reducing_gap picks for the full image, then cut every window from the
    # small copy (5x faster than reducing per window); window 0 stays bit-identical to perceptual_hash.
    factor_x = max(1, int(width / _DCT_SIZE / _REDUCING_GAP))
    factor_y = max(1, int(height / _DCT_SIZE / _REDUCING_GAP))
    reduced = gray.reduce((factor_x, factor_y)) if factor_x > 1 or factor_y > 1 else gray
    boxes = [
        (round(width * left) / factor_x, round(height * top) / factor_y,
         (width - round(width * right)) / factor_x, (height - round(height * bottom)) / factor_y)
        for (top, bottom), (left, right) in itertools.product(trims, trims)
    ]
    return _phash_bits(np.stack([_reduced_luma(reduced, box) for box in boxes]))


def hashes_to_array(hashes: Iterable[int]) -> np.ndarray:
    """Python ints in ``[0, 2**64)`` (or int64 bit patterns in ``[-2**63, 0)``) to a uint64 array."""
    values = [int(h) for h in hashes]
    for value in values:
        if not -(1 << 63) <= value < (1 << 64):
            raise ValueError(f"hash {value} does not fit in 64 bits")
    return np.array([v & 0xFFFF_FFFF_FFFF_FFFF for v in values], dtype=np.uint64)


def _as_hash_array(hashes: np.ndarray, name: str = "hashes") -> np.ndarray:
    array = np.asarray(hashes)
    if array.dtype == np.int64:
        array = array.view(np.uint64)  # the parquet storage form: the same 64 bits as int64
    if array.dtype != np.uint64:
        raise ValueError(f"{name} must be uint64 (or int64 bit patterns), got dtype {array.dtype}")
    return array


def _check_distance(max_distance: int) -> int:
    if isinstance(max_distance, bool) or not isinstance(max_distance, (int, np.integer)):
        raise ValueError(f"max_distance must be an int, got {max_distance!r}")
    if not 0 <= max_distance <= HASH_BITS:
        raise ValueError(f"max_distance must be in [0, {HASH_BITS}], got {max_distance}")
    return int(max_distance)


# ------------------------------------------------------------------------------------------------- search


def brute_force_pairs(hashes: np.ndarray, max_distance: int, *, chunk_rows: int = 1024) -> np.ndarray:
    """All ``(i, j)``, ``i < j``, with Hamming distance <= ``max_distance``, by comparing every pair (O(n^2) work)."""
    hashes = _as_hash_array(hashes)
    if hashes.ndim != 1:
        raise ValueError(f"hashes must be 1-D, got shape {hashes.shape}")
    max_distance = _check_distance(max_distance)
    found = []
    for start in range(0, len(hashes), chunk_rows):
        rows = hashes[start:start + chunk_rows]
        distances = np.bitwise_count(rows[:, None] ^ hashes[None, start:])
        i, j = np.nonzero(distances <= max_distance)
        keep = j > i  # columns start at `start`, so j > i means the pair is above the diagonal
        found.append(np.stack([i[keep] + start, j[keep] + start], axis=1))
    return _sorted_pairs(np.concatenate(found) if found else np.zeros((0, 2), dtype=np.int64))


def near_duplicate_pairs(hashes: np.ndarray, max_distance: int) -> np.ndarray:
    """All ``(i, j)``, ``i < j``, with Hamming distance <= ``max_distance``; int64 ``(k, 2)`` sorted by (i, j).

    Exact (same result as :func:`brute_force_pairs`) but sub-quadratic: multi-index hashing, see module doc.
    """
    hashes = _as_hash_array(hashes)
    if hashes.ndim != 1:
        raise ValueError(f"hashes must be 1-D, got shape {hashes.shape}")
    max_distance = _check_distance(max_distance)
    query_index, target_index = _within_distance(hashes, hashes, max_distance, upper_only=True)
    return _sorted_pairs(np.stack([query_index, target_index], axis=1))


def near_duplicate_pairs_with_variants(variant_hashes: np.ndarray, max_distance: int) -> np.ndarray:
    """Image pairs ``(i, j)``, ``i < j``, where one image's full hash (column 0) is within ``max_distance`` of
    any crop-window hash of the other. ``variant_hashes`` is ``(n, V)`` from :func:`crop_variant_hashes`."""
    variant_hashes = _as_hash_array(variant_hashes, "variant_hashes")
    if variant_hashes.ndim != 2 or variant_hashes.shape[1] < 1:
        raise ValueError(f"variant_hashes must be (n, V) with V >= 1, got shape {variant_hashes.shape}")
    max_distance = _check_distance(max_distance)
    n, windows = variant_hashes.shape
    full = np.ascontiguousarray(variant_hashes[:, 0])
    query_index, target_index = _within_distance(full, variant_hashes.ravel(), max_distance, upper_only=False)
    owner = target_index // windows
    keep = owner != query_index
    pairs = np.stack([np.minimum(query_index[keep], owner[keep]), np.maximum(query_index[keep], owner[keep])], axis=1)
    return _sorted_pairs(pairs)


def brute_force_pairs_with_variants(variant_hashes: np.ndarray, max_distance: int) -> np.ndarray:
    """Reference for :func:`near_duplicate_pairs_with_variants` by comparing every image pair (O(n^2 V))."""
    variant_hashes = _as_hash_array(variant_hashes, "variant_hashes")
    max_distance = _check_distance(max_distance)
    full = variant_hashes[:, 0]
    distances = np.bitwise_count(full[:, None, None] ^ variant_hashes[None, :, :]).min(axis=2)
    distances = np.minimum(distances, distances.T)
    i, j = np.nonzero(np.triu(distances <= max_distance, k=1))
    return _sorted_pairs(np.stack([i, j], axis=1))


def _sorted_pairs(pairs: np.ndarray) -> np.ndarray:
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    if len(pairs) == 0:
        return pairs
    return np.unique(pairs, axis=0)  # sorted lexicographically, duplicates (found via several blocks) removed


def _block_layout(blocks: int) -> list[tuple[int, int]]:
    """(shift, bits) of ``blocks`` contiguous bit blocks covering all 64 bits, sizes differing by <= 1."""
    base, extra = divmod(HASH_BITS, blocks)
    layout, shift = [], 0
    for index in range(blocks):
        bits = base + (1 if index < extra else 0)
        layout.append((shift, bits))
        shift += bits
    return layout


def _ball_size(bits: int, radius: int) -> int:
    return sum(math.comb(bits, k) for k in range(min(radius, bits) + 1))


def _block_radii(blocks: int, max_distance: int) -> list[int]:
    """Per-block probe radii r_i with sum(r_i) >= max_distance + 1 - blocks (general pigeonhole).

    If every block differed in more than r_i bits the total would exceed max_distance, so any close pair is
    within r_i in some block i. This beats the plain ``max_distance // blocks`` in every block.
    """
    total = max(0, max_distance + 1 - blocks)
    return [total // blocks + (1 if index < total % blocks else 0) for index in range(blocks)]


def _choose_blocks(n_query: int, n_target: int, max_distance: int) -> int:
    """Block count minimising probes + expected candidates (uniform-hash model); tables capped at 2**22."""
    best, best_cost = None, math.inf
    for blocks in range(math.ceil(HASH_BITS / _MAX_BLOCK_BITS), HASH_BITS + 1):
        layout = _block_layout(blocks)
        radii = _block_radii(blocks, max_distance)
        probes = sum(_ball_size(bits, r) for (_, bits), r in zip(layout, radii))
        expected_hits = sum(_ball_size(bits, r) * n_target / 2.0**bits for (_, bits), r in zip(layout, radii))
        cost = n_query * (probes + 4.0 * expected_hits) + sum(2**bits for _, bits in layout)
        if cost < best_cost:
            best, best_cost = blocks, cost
    return best


def _flip_masks(bits: int, radius: int) -> np.ndarray:
    """Every value with at most ``radius`` of the low ``bits`` bits set (the XOR masks of a Hamming ball)."""
    masks = [0]
    for k in range(1, min(radius, bits) + 1):
        masks += [sum(1 << p for p in positions) for positions in itertools.combinations(range(bits), k)]
    return np.array(masks, dtype=np.int64)


def _within_distance(
    queries: np.ndarray, targets: np.ndarray, max_distance: int, *, upper_only: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (q, t) with popcount(queries[q] ^ targets[t]) <= max_distance; each pair at most once.

    ``upper_only`` (queries is targets) returns each unordered pair once as q < t.
    """
    empty = np.zeros(0, dtype=np.int64)
    if len(queries) == 0 or len(targets) == 0:
        return empty, empty
    blocks = _choose_blocks(len(queries), len(targets), max_distance)
    found_q, found_t = [], []
    for (shift, bits), radius in zip(_block_layout(blocks), _block_radii(blocks, max_distance)):
        value_mask = np.uint64((1 << bits) - 1)
        target_keys = ((targets >> np.uint64(shift)) & value_mask).astype(np.int64)
        query_keys = ((queries >> np.uint64(shift)) & value_mask).astype(np.int64)
        # Bucket table (counting sort): the targets with key k sit at sorted positions starts[k]..ends[k]-1.
        order = np.argsort(target_keys, kind="stable")
        sorted_targets = targets[order]
        bucket_ends = np.cumsum(np.bincount(target_keys, minlength=1 << bits))
        bucket_starts = bucket_ends - np.bincount(target_keys, minlength=1 << bits)
        masks = _flip_masks(bits, radius)
        if upper_only:
            # Self-join. Own bucket: each query pairs only with the members after it (the stable sort keeps
            # members in index order, so that is q < t). Other buckets: probed from the lower key only.
            position = np.empty(len(order), dtype=np.int64)
            position[order] = np.arange(len(order))
            probes = [(np.arange(len(queries)), position + 1, bucket_ends[query_keys])]
            masks = masks[1:]
        else:
            probes = []
        queries_per_step = max(1, _CANDIDATE_BUDGET // (4 * max(1, len(masks))))
        for q0 in range(0, len(queries) if len(masks) else 0, queries_per_step):
            chunk = slice(q0, q0 + queries_per_step)
            own_keys = np.repeat(query_keys[chunk], len(masks))
            probe_keys = own_keys ^ np.tile(masks, len(query_keys[chunk]))
            probe_query = np.repeat(np.arange(q0, q0 + len(query_keys[chunk])), len(masks))
            if upper_only:
                lower = probe_keys > own_keys
                probe_keys, probe_query = probe_keys[lower], probe_query[lower]
            probes.append((probe_query, bucket_starts[probe_keys], bucket_ends[probe_keys]))
        for probe_query, first, stop in probes:
            for q_idx, sorted_pos in _expand_ranges(probe_query, first, stop, queries, sorted_targets, max_distance):
                t_idx = order[sorted_pos]
                if upper_only:
                    q_idx, t_idx = np.minimum(q_idx, t_idx), np.maximum(q_idx, t_idx)
                found_q.append(q_idx)
                found_t.append(t_idx)
    if not found_q:
        return empty, empty
    query_index, target_index = np.concatenate(found_q), np.concatenate(found_t)
    # A pair close in several blocks was found once per block; keep one.
    code = np.unique(query_index * np.int64(len(targets)) + target_index)
    return code // len(targets), code % len(targets)


def _expand_ranges(probe_query, first, stop, queries, sorted_targets, max_distance):
    """Verify every (query, sorted position in [first, stop)) candidate; yield the close ones as
    (query index, sorted position), at most ~_CANDIDATE_BUDGET candidates per step."""
    counts = np.maximum(stop - first, 0)
    hit = counts > 0
    probe_query, first, counts = probe_query[hit], first[hit], counts[hit]
    ends = np.cumsum(counts)
    begin = 0
    while begin < len(counts):
        # Take probes until the budget is reached (at least one, however large its bucket).
        base = int(ends[begin - 1]) if begin else 0
        end = max(begin + 1, int(np.searchsorted(ends, base + _CANDIDATE_BUDGET, side="right")))
        step_counts = counts[begin:end]
        step_ends = ends[begin:end] - base
        total = int(step_ends[-1])
        # Candidate c belongs to probe p with step_ends[p-1] <= c < step_ends[p]; its sorted position is
        # first[p] + (c - step_ends[p-1]).
        sorted_pos = np.arange(total) + np.repeat(first[begin:end] - (step_ends - step_counts), step_counts)
        query_hash = np.repeat(queries[probe_query[begin:end]], step_counts)
        close = np.flatnonzero(np.bitwise_count(query_hash ^ sorted_targets[sorted_pos]) <= max_distance)
        probe = np.searchsorted(step_ends, close, side="right")
        yield probe_query[begin:end][probe], sorted_pos[close]
        begin = end


# ------------------------------------------------------------------------------------------------- clusters


def cluster_labels(n: int, pairs: np.ndarray) -> np.ndarray:
    """Connected components of ``n`` items linked by ``pairs``; labels 0..k-1 numbered by smallest member."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    if len(pairs) and (pairs.min() < 0 or pairs.max() >= n):
        raise ValueError(f"pair indices must lie in [0, {n}), got range [{pairs.min()}, {pairs.max()}]")
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    graph = coo_matrix((np.ones(len(pairs), dtype=np.int8), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    _, raw = connected_components(graph, directed=False)
    # Renumber so labels follow the order of each component's smallest member (stable, input-order based).
    _, first_member = np.unique(raw, return_index=True)
    rank = np.empty(len(first_member), dtype=np.int64)
    rank[np.argsort(first_member)] = np.arange(len(first_member))
    return rank[raw]


def choose_representatives(
    frame: pd.DataFrame,
    *,
    hash_col: str = "phash",
    max_distance: int = PAINTING_MAX_DISTANCE,
    priority_cols: Sequence[str] = ("pixels",),
    id_col: str | None = None,
    variant_hash_col: str | None = None,
) -> pd.DataFrame:
    """Add ``dup_cluster`` (int, 0..k-1) and ``is_representative`` (one True per cluster).

    The representative is the member with the largest ``priority_cols`` (compared in order; e.g. pixels: the
    highest resolution), ties broken by the smallest ``id_col`` (row order when None). ``hash_col`` holds
    uint64 or int64-bit-pattern hashes; ``variant_hash_col``, when given, holds each row's
    :func:`crop_variant_hashes` array and makes matching crop-tolerant.
    """
    needed = [hash_col, *priority_cols, *(c for c in (id_col, variant_hash_col) if c)]
    missing = [column for column in needed if column not in frame.columns]
    if missing:
        raise KeyError(f"choose_representatives: missing columns {missing}; have {list(frame.columns)}")
    n = len(frame)
    if variant_hash_col:
        rows = [_as_hash_array(np.asarray(value), f"{variant_hash_col}[{index}]")
                for index, value in enumerate(frame[variant_hash_col])]
        if n and len({len(r) for r in rows}) != 1:
            raise ValueError(f"{variant_hash_col}: every row needs the same number of crop-window hashes")
        variants = np.stack(rows) if n else np.zeros((0, 1), dtype=np.uint64)
        full = _as_hash_array(frame[hash_col].to_numpy(), hash_col)
        if n and not np.array_equal(variants[:, 0], full):
            raise ValueError(f"{variant_hash_col}: window 0 must equal {hash_col} (the full-image hash)")
        pairs = near_duplicate_pairs_with_variants(variants, max_distance)
    else:
        pairs = near_duplicate_pairs(_as_hash_array(frame[hash_col].to_numpy(), hash_col), max_distance)
    labels = cluster_labels(n, pairs)
    # Best first: priorities descending, then id (or row position) ascending; the first row per cluster wins.
    ranking = pd.DataFrame({"cluster": labels, "position": np.arange(n)})
    sort_cols, ascending = [], []
    for column in priority_cols:
        ranking[f"p_{column}"] = frame[column].to_numpy()
        sort_cols.append(f"p_{column}")
        ascending.append(False)
    if id_col:
        ranking["id"] = frame[id_col].to_numpy()
        sort_cols.append("id")
        ascending.append(True)
    sort_cols.append("position")
    ascending.append(True)
    ranked = ranking.sort_values(sort_cols, ascending=ascending, kind="mergesort")
    winners = ranked.drop_duplicates("cluster", keep="first")["position"].to_numpy()
    is_representative = np.zeros(n, dtype=bool)
    is_representative[winners] = True
    return frame.assign(dup_cluster=labels.astype(np.int64), is_representative=is_representative)


def cluster_report(frame: pd.DataFrame, *, id_col: str) -> pd.DataFrame:
    """One row per multi-member cluster: dup_cluster, size, representative id, and the other members' ids."""
    for column in ("dup_cluster", "is_representative", id_col):
        if column not in frame.columns:
            raise KeyError(f"cluster_report: missing column {column!r} (run choose_representatives first)")
    sizes = frame.groupby("dup_cluster")[id_col].transform("size")
    multi = frame[sizes > 1]
    rows = []
    for cluster, members in multi.groupby("dup_cluster", sort=True):
        representative = members.loc[members["is_representative"], id_col].iloc[0]
        others = sorted(members.loc[~members["is_representative"], id_col].tolist())
        rows.append({"dup_cluster": int(cluster), "size": len(members), "representative": representative,
                     "duplicates": others})
    return pd.DataFrame(rows, columns=["dup_cluster", "size", "representative", "duplicates"])
