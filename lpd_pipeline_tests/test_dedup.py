"""Near-duplicate detection: copy kinds are caught, unrelated images are not, the fast search is exact."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from lpd_pipeline.curation import dedup
from lpd_pipeline.imaging import luma_bt601

# ------------------------------------------------------------------------------------------ image helpers


def smooth_noise_painting(seed: int, height: int = 192, width: int = 160) -> np.ndarray:
    """A random smooth colour image (band-limited noise): structure at several scales, like a painting."""
    rng = np.random.default_rng(seed)
    canvas = np.zeros((height, width, 3), dtype=np.float64)
    for cells, weight in ((4, 1.0), (9, 0.5), (23, 0.25)):
        coarse = rng.uniform(0, 255, size=(cells, cells, 3)).astype(np.uint8)
        canvas += weight * np.asarray(Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC))
    canvas = canvas / 1.75
    return np.clip(canvas, 0, 255).astype(np.uint8)


def resized_half(rgb: np.ndarray) -> np.ndarray:
    height, width = rgb.shape[:2]
    return np.asarray(Image.fromarray(rgb).resize((width // 2, height // 2), Image.Resampling.LANCZOS))


def jpeg_q60(rgb: np.ndarray) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, "JPEG", quality=60)
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))


def cropped(rgb: np.ndarray, top: float, bottom: float, left: float, right: float) -> np.ndarray:
    height, width = rgb.shape[:2]
    return rgb[round(height * top): height - round(height * bottom), round(width * left): width - round(width * right)]


def grayscale_rgb(rgb: np.ndarray) -> np.ndarray:
    return np.repeat(luma_bt601(rgb)[:, :, None], 3, axis=2)


COPY_KINDS = {
    "resize_0.5": resized_half,
    "jpeg_q60": jpeg_q60,
    "crop_3pct_each_side": lambda rgb: cropped(rgb, 0.03, 0.03, 0.03, 0.03),
    "crop_5pct_each_side": lambda rgb: cropped(rgb, 0.05, 0.05, 0.05, 0.05),
    "crop_5pct_top_left": lambda rgb: cropped(rgb, 0.05, 0.0, 0.05, 0.0),
    "crop_uneven": lambda rgb: cropped(rgb, 0.01, 0.04, 0.035, 0.0),
    "grayscale": grayscale_rgb,
    "gray_crop_resize_jpeg": lambda rgb: jpeg_q60(resized_half(grayscale_rgb(cropped(rgb, 0.04, 0.02, 0.0, 0.03)))),
}
# Copies that keep the full frame must match even by the plain (single) hash.
FULL_FRAME_KINDS = ("resize_0.5", "jpeg_q60", "grayscale")


def variant_distance(a: np.ndarray, b: np.ndarray) -> int:
    """The distance near_duplicate_pairs_with_variants thresholds: full hash vs the other's crop windows."""
    va, vb = dedup.crop_variant_hashes(a), dedup.crop_variant_hashes(b)
    return int(min(np.bitwise_count(va[0] ^ vb).min(), np.bitwise_count(vb[0] ^ va).min()))


def assert_copies_collapse(original: np.ndarray, label: str) -> None:
    """Every copy kind lands in one cluster with the original, which is kept (largest)."""
    images = [original] + [make(original) for make in COPY_KINDS.values()]
    names = ["original", *COPY_KINDS]
    frame = pd.DataFrame({
        "name": names,
        "phash": [dedup.perceptual_hash(image) for image in images],
        "windows": [dedup.crop_variant_hashes(image) for image in images],
        "pixels": [image.shape[0] * image.shape[1] for image in images],
    })
    frame["phash"] = dedup.hashes_to_array(frame["phash"])
    # The grayscale copy ties the original on pixels; ids make the tie-break (smallest id) pick the original.
    frame["copy_id"] = [f"{index:02d}_{name}" for index, name in enumerate(names)]
    marked = dedup.choose_representatives(frame, variant_hash_col="windows", id_col="copy_id")
    missed = marked.loc[marked["dup_cluster"] != marked["dup_cluster"].iat[0], "name"].tolist()
    distances = {name: variant_distance(original, image) for name, image in zip(names, images) if name in missed}
    assert not missed, f"{label}: copies not matched to the original: {distances}"
    assert marked.loc[marked["is_representative"], "name"].tolist() == ["original"]
    for name, image in zip(names, images):
        if name in FULL_FRAME_KINDS:
            distance = int(np.bitwise_count(np.uint64(dedup.perceptual_hash(image)) ^ frame["phash"].iat[0]))
            assert distance <= dedup.PAINTING_MAX_DISTANCE, f"{label}: {name} plain-hash distance {distance}"


# ------------------------------------------------------------------------------------------------ hashing


def test_grayscale_copy_hashes_identically_to_colour_original():
    rgb = smooth_noise_painting(1)
    gray = luma_bt601(rgb)
    assert dedup.perceptual_hash(rgb) == dedup.perceptual_hash(gray) == dedup.perceptual_hash(grayscale_rgb(rgb))


def test_hash_is_deterministic_64_bit_and_window_zero_is_the_full_hash():
    rgb = smooth_noise_painting(2)
    value = dedup.perceptual_hash(rgb)
    assert value == dedup.perceptual_hash(rgb.copy())
    assert 0 <= value < 2**64
    windows = dedup.crop_variant_hashes(rgb)
    assert windows.dtype == np.uint64 and windows.shape == (len(dedup.CROP_WINDOW_TRIMS) ** 2,)
    assert int(windows[0]) == value


@pytest.mark.parametrize("seed", [10, 11, 12])
def test_synthetic_copies_collapse_to_the_original(seed):
    assert_copies_collapse(smooth_noise_painting(seed), f"synthetic seed {seed}")


def test_unrelated_synthetic_images_are_not_merged():
    images = [smooth_noise_painting(100 + seed) for seed in range(12)]
    windows = np.stack([dedup.crop_variant_hashes(image) for image in images])
    assert len(dedup.near_duplicate_pairs_with_variants(windows, dedup.PAINTING_MAX_DISTANCE)) == 0
    assert len(dedup.near_duplicate_pairs(windows[:, 0], dedup.TILE_MAX_DISTANCE)) == 0


def test_bad_images_raise_clear_errors():
    with pytest.raises(ValueError, match="uint8"):
        dedup.perceptual_hash(np.zeros((32, 32, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="shape"):
        dedup.perceptual_hash(np.zeros((32, 32, 4), dtype=np.uint8))
    with pytest.raises(ValueError, match="at least"):
        dedup.perceptual_hash(np.zeros((4, 32), dtype=np.uint8))
    with pytest.raises(ValueError, match="first crop trim"):
        dedup.crop_variant_hashes(smooth_noise_painting(3), trims=((0.05, 0.05),))


def test_hashes_to_array_accepts_int64_bit_patterns_and_rejects_overflow():
    array = dedup.hashes_to_array([0, 2**64 - 1, -1, 12345])
    assert array.dtype == np.uint64
    assert array.tolist() == [0, 2**64 - 1, 2**64 - 1, 12345]
    with pytest.raises(ValueError, match="64 bits"):
        dedup.hashes_to_array([2**64])


# ------------------------------------------------------------------------------------------ real paintings


def _real_painting(shared_paintings, relative: str) -> np.ndarray:
    with Image.open(shared_paintings / relative) as image:
        rgb = np.asarray(image.convert("RGB"))
    return rgb


@pytest.fixture(scope="module")
def real_sample(shared_paintings):
    """Six real paintings of both kinds and both source datasets (read from MANIFEST, never copied)."""
    manifest = pd.read_csv(shared_paintings / "MANIFEST.tsv", sep="\t")
    picks = []
    for group in ("colored", "ink"):
        for repo in sorted(manifest["repo"].unique()):
            rows = manifest[(manifest["group"] == group) & (manifest["repo"] == repo)].sort_values("file")
            picks += rows["file"].iloc[[0, len(rows) // 2]].tolist()[: 2 if group == "ink" else 1]
    return {name: _real_painting(shared_paintings, name) for name in picks}


def test_real_painting_copies_collapse_to_the_original(real_sample):
    for name, rgb in real_sample.items():
        assert_copies_collapse(rgb, name)


def test_distinct_real_paintings_are_not_merged(real_sample):
    names = list(real_sample)
    windows = np.stack([dedup.crop_variant_hashes(real_sample[name]) for name in names])
    pairs = dedup.near_duplicate_pairs_with_variants(windows, dedup.PAINTING_MAX_DISTANCE)
    assert [(names[i], names[j]) for i, j in pairs] == []


# ----------------------------------------------------------------------------------- exact search (property)


def planted_hashes(seed: int, n: int, max_distance: int) -> np.ndarray:
    """Random hashes, a third of them copies of another with up to max_distance + 2 bits flipped, some exact."""
    rng = np.random.default_rng(seed)
    hashes = rng.integers(0, 2**64, size=n, dtype=np.uint64)
    planted = rng.choice(n, size=n // 3, replace=False)
    for index in planted:
        value = int(hashes[rng.integers(n)])
        for bit in rng.choice(64, size=int(rng.integers(0, max_distance + 3)), replace=False):
            value ^= 1 << int(bit)
        hashes[index] = value
    return hashes


@pytest.mark.parametrize("max_distance", [0, 1, 2, 3, 4, 6, 8, 10, 13, 20, 40])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_near_duplicate_pairs_equals_brute_force(seed, max_distance):
    hashes = planted_hashes(seed * 100 + max_distance, 700, max_distance)
    expected = dedup.brute_force_pairs(hashes, max_distance)
    found = dedup.near_duplicate_pairs(hashes, max_distance)
    assert found.dtype == np.int64 and found.shape[1] == 2
    assert np.array_equal(found, expected)
    assert np.all(found[:, 0] < found[:, 1])
    assert len(expected) > 0 or max_distance == 0  # planted neighbours make the comparison meaningful


@pytest.mark.parametrize("blocks", [3, 4, 5, 6, 8, 11, 16, 64])
def test_every_block_layout_is_exact(monkeypatch, blocks):
    """The pigeonhole radii must be exact whatever block count the cost model picks."""
    monkeypatch.setattr(dedup, "_choose_blocks", lambda n_query, n_target, max_distance: blocks)
    for max_distance in (0, 2, 5, 9, 12):
        hashes = planted_hashes(blocks * 31 + max_distance, 300, max_distance)
        assert np.array_equal(dedup.near_duplicate_pairs(hashes, max_distance),
                              dedup.brute_force_pairs(hashes, max_distance)), (blocks, max_distance)


def test_skewed_and_tiny_inputs():
    many_equal = np.array([7] * 50 + [7 ^ 0b11] * 5 + [2**63], dtype=np.uint64)
    for max_distance in (0, 2, 64):
        assert np.array_equal(dedup.near_duplicate_pairs(many_equal, max_distance),
                              dedup.brute_force_pairs(many_equal, max_distance))
    assert dedup.near_duplicate_pairs(np.zeros(0, dtype=np.uint64), 5).shape == (0, 2)
    assert dedup.near_duplicate_pairs(np.zeros(1, dtype=np.uint64), 5).shape == (0, 2)
    int64_view = many_equal.view(np.int64)
    assert np.array_equal(dedup.near_duplicate_pairs(int64_view, 2), dedup.near_duplicate_pairs(many_equal, 2))


@pytest.mark.parametrize("max_distance", [0, 3, 10])
def test_variant_pairs_equal_brute_force(max_distance):
    rng = np.random.default_rng(max_distance)
    base = planted_hashes(50 + max_distance, 150, max_distance)
    windows = np.stack([base] + [base ^ rng.integers(0, 2**64, size=150, dtype=np.uint64) for _ in range(8)], axis=1)
    # Plant crop-like matches: some images' full hash sits near another image's window.
    for target in range(0, 150, 7):
        source = (target * 13 + 1) % 150
        windows[source, 0] = windows[target, 1 + target % 8] ^ np.uint64(rng.integers(0, 8))
    assert np.array_equal(dedup.near_duplicate_pairs_with_variants(windows, max_distance),
                          dedup.brute_force_pairs_with_variants(windows, max_distance))


def test_search_rejects_bad_arguments():
    hashes = np.arange(5, dtype=np.uint64)
    with pytest.raises(ValueError, match="max_distance"):
        dedup.near_duplicate_pairs(hashes, 65)
    with pytest.raises(ValueError, match="max_distance"):
        dedup.near_duplicate_pairs(hashes, -1)
    with pytest.raises(ValueError, match="uint64"):
        dedup.near_duplicate_pairs(hashes.astype(np.float64), 3)
    with pytest.raises(ValueError, match="1-D"):
        dedup.near_duplicate_pairs(hashes.reshape(5, 1), 3)


# --------------------------------------------------------------------------------- clusters and representatives


def test_cluster_labels_are_transitive_and_numbered_by_smallest_member():
    pairs = np.array([[5, 6], [1, 5], [3, 4]])
    labels = dedup.cluster_labels(8, pairs)
    assert labels.tolist() == [0, 1, 2, 3, 3, 1, 1, 4]
    assert dedup.cluster_labels(3, np.zeros((0, 2), dtype=np.int64)).tolist() == [0, 1, 2]
    assert dedup.cluster_labels(0, np.zeros((0, 2), dtype=np.int64)).shape == (0,)
    with pytest.raises(ValueError, match="pair indices"):
        dedup.cluster_labels(3, np.array([[0, 3]]))


def test_representative_is_the_highest_resolution_with_deterministic_ties():
    near = 0b1011 << 20
    frame = pd.DataFrame({
        "painting_id": ["c", "a", "b", "d", "e"],
        "phash": dedup.hashes_to_array([near, near ^ 1, near ^ 3, 2**63 + 12345, near ^ 7]).view(np.int64),
        "pixels": [100, 400, 400, 50, 10],
    })
    marked = dedup.choose_representatives(frame, max_distance=4, id_col="painting_id")
    assert marked["dup_cluster"].tolist() == [0, 0, 0, 1, 0]
    # a and b tie at 400 pixels: the smaller id wins; d is alone and represents itself.
    assert marked.loc[marked["is_representative"], "painting_id"].tolist() == ["a", "d"]
    report = dedup.cluster_report(marked, id_col="painting_id")
    assert report.to_dict("records") == [
        {"dup_cluster": 0, "size": 4, "representative": "a", "duplicates": ["b", "c", "e"]}
    ]
    # Priorities compare in order: a preferred column beats resolution.
    marked = dedup.choose_representatives(frame.assign(is_colored=[0, 0, 0, 0, 1]), max_distance=4,
                                          priority_cols=("is_colored", "pixels"), id_col="painting_id")
    assert marked.loc[marked["is_representative"], "painting_id"].tolist() == ["d", "e"]


def test_choose_representatives_on_an_empty_frame():
    empty = pd.DataFrame({"phash": np.zeros(0, dtype=np.uint64), "pixels": np.zeros(0, dtype=np.int64)})
    marked = dedup.choose_representatives(empty)
    assert list(marked.columns) == ["phash", "pixels", "dup_cluster", "is_representative"] and len(marked) == 0


def test_choose_representatives_rejects_missing_columns_and_mismatched_windows():
    frame = pd.DataFrame({"phash": dedup.hashes_to_array([1, 2]), "pixels": [1, 2]})
    with pytest.raises(KeyError, match="pixels_x"):
        dedup.choose_representatives(frame, priority_cols=("pixels_x",))
    frame["windows"] = [dedup.hashes_to_array([1, 9]), dedup.hashes_to_array([3, 9])]
    with pytest.raises(ValueError, match="window 0"):
        dedup.choose_representatives(frame, variant_hash_col="windows")
