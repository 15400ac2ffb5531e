"""Generated watermarks: seeded, every kind drawn where it belongs, bad input refused."""

from __future__ import annotations

import numpy as np
import pytest

from lpd_pipeline.curation import synthetic_watermarks as wm
from lpd_pipeline_tests.test_filters import landscape


def test_same_seed_same_pixels_other_seed_other_mark():
    tile = landscape(256, 0)
    a, info_a = wm.add_watermark(tile, 5)
    b, info_b = wm.add_watermark(tile, 5)
    c, _ = wm.add_watermark(tile, 6)
    assert np.array_equal(a, b) and info_a == info_b
    assert not np.array_equal(a, c)
    assert a.dtype == np.uint8 and a.shape == tile.shape


@pytest.mark.parametrize("kind", wm.KINDS)
def test_each_kind_marks_where_it_should(kind):
    side = 256
    for seed in range(6):
        marked, info = wm.add_watermark(np.zeros((side, side, 3), np.uint8) + 128, seed, kind)
        changed = np.abs(marked.astype(int) - 128).max(axis=2) > 8
        assert info["kind"] == kind and changed.any()
        ys, xs = np.nonzero(changed)
        if kind == "corner":  # small, and in a corner
            assert changed.mean() < 0.08
            assert min(xs.min(), side - 1 - xs.max()) < side * 0.1 and min(ys.min(), side - 1 - ys.max()) < side * 0.1
        if kind == "edge":  # a tall, narrow strip along the left or right edge
            assert xs.max() - xs.min() < side * 0.15 and min(xs.min(), side - 1 - xs.max()) < side * 0.1
            assert ys.max() - ys.min() > 2 * (xs.max() - xs.min())


def test_site_marks_are_semi_transparent_and_pale_or_dark():
    tones = set()
    for seed in range(20):
        _, info = wm.add_watermark(landscape(128, 1), seed, "site")
        assert 0.25 <= info["opacity"] <= 0.6
        tones.add(info["tone"])
    assert tones == {"pale", "dark"}


def test_bad_input_refused():
    with pytest.raises(ValueError, match="uint8 RGB"):
        wm.add_watermark(np.zeros((64, 64), np.uint8), 0)
    with pytest.raises(ValueError, match="kind"):
        wm.add_watermark(np.zeros((64, 64, 3), np.uint8), 0, "banner")
