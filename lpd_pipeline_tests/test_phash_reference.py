"""The project's vectorised pHash (curation/dedup.py) pinned to the reference, ``imagehash.phash``.

Both compute the same thing: the luma reduced to 32x32 by Lanczos, a 2-D DCT-II, the 8x8 lowest frequencies,
one bit per coefficient above their median, row-major with the first bit most significant. One step differs:
dedup.py lets PIL box-reduce a large image to >= 3x the target before the Lanczos pass (``reducing_gap=3``,
about 10x faster on a painting), imagehash resizes straight from full size. So:

- given the same 32x32 reduction, the hashes are identical (every bit: the DCT, the median rule and the bit
  order are the same);
- on whole images the reductions differ by fractions of a grey level, which can move a coefficient across the
  median: measured on all 928 real paintings in ../shared/paintings, 83 % identical, the rest 2 bits apart and
  4 of 928 at 4 bits (a coefficient crossing the median swaps with the one at the median: always an even
  count). The bound asserted is MAX_BITS = 4, well under the 6 bits at which tiles count as near-duplicates.
"""

from __future__ import annotations

import imagehash
import numpy as np
import pytest
from PIL import Image

from lpd_pipeline.curation import dedup
from lpd_pipeline.demo import render_landscape
from lpd_pipeline.imaging import decode_image

MAX_BITS = 4  # different resize path (PIL's box pre-reduction), see the module docstring
REAL_SAMPLE = 12  # a few real paintings, spread over the folders


def _reference(rgb: np.ndarray) -> int:
    return int(str(imagehash.phash(Image.fromarray(rgb))), 16)


def _bits(a: int, b: int) -> int:
    return bin(a ^ b).count("1")


def _generated() -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    images = [render_landscape(h, w, np.random.default_rng(i), style)
              for i, (h, w, style) in enumerate([(300, 220, "blue_green"), (180, 260, "ink_paper"),
                                                  (256, 256, "ochre"), (96, 140, "ink_silk")])]
    images.append(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))  # noise: no structure at all
    ramp = np.tile(np.linspace(0, 255, 200, dtype=np.float64)[None, :], (120, 1)).astype(np.uint8)
    images.append(np.dstack([ramp, ramp[:, ::-1], np.full_like(ramp, 90)]))  # smooth gradients
    images.append(np.repeat(render_landscape(64, 64, rng, "ink_paper")[:, :, :1], 3, axis=2))  # gray as RGB
    return images


def _real(folder) -> list[np.ndarray]:
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".tif", ".webp"))
    if len(files) < REAL_SAMPLE:
        pytest.skip(f"fewer than {REAL_SAMPLE} images under {folder}")
    step = len(files) // REAL_SAMPLE
    return [decode_image(p) for p in files[::step][:REAL_SAMPLE]]


def _assert_pinned(images: list[np.ndarray]) -> list[int]:
    distances = []
    for index, rgb in enumerate(images):
        ours = dedup.perceptual_hash(rgb)
        # Same 32x32 reduction: the rest of the algorithm must agree on every bit.
        reduced = dedup._reduced_luma(dedup._as_luma_image(rgb)).astype(np.uint8)
        assert ours == _reference(np.dstack([reduced] * 3)), f"image {index}: DCT/median/bit order differ"
        distance = _bits(ours, _reference(rgb))
        assert distance <= MAX_BITS, f"image {index} ({rgb.shape}): {distance} bits from imagehash.phash"
        distances.append(distance)
    return distances


def test_generated_images_hash_like_imagehash():
    distances = _assert_pinned(_generated())
    # Not a coincidence of the bound: most images agree on every bit.
    assert sum(d == 0 for d in distances) >= len(distances) // 2, distances


def test_real_paintings_hash_like_imagehash(shared_paintings):
    distances = _assert_pinned(_real(shared_paintings))
    assert sum(d == 0 for d in distances) >= len(distances) // 2, distances


def test_crop_window_zero_is_the_plain_hash():
    image = _generated()[0]
    assert int(dedup.crop_variant_hashes(image)[0]) == dedup.perceptual_hash(image)
