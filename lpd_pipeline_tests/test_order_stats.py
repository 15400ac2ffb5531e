"""order_stats.percentile / median are numpy's, bit for bit (values and types)."""

import numpy as np
import pytest

from lpd_pipeline.curation import order_stats

SIZES = (1, 2, 3, 4, 5, 7, 16, 255, 256, 299, 1024, 4095, 4096, 16384, 65536)
# Every q the filters and features use, and awkward ones.
QS = (0.0, 1.0, 5.0, 20, 50.0, 75, 75.0, 90, 95.0, 99.0, 99.5, 100.0, 33.3, 66.7)


def _arrays(rng: np.random.Generator):
    for size in SIZES:
        yield rng.normal(0, 30, size).astype(np.float32)
        yield np.round(rng.normal(50, 10, size)).astype(np.float32)  # many ties
        yield rng.random(size) * 100.0
        yield rng.integers(0, 256, size, dtype=np.uint8)
        yield np.full(size, -0.0, np.float32)


def _same(ours, theirs) -> None:
    assert type(ours) is type(theirs) or np.asarray(ours).dtype == np.asarray(theirs).dtype
    assert np.asarray(ours).dtype == np.asarray(theirs).dtype
    assert np.array_equal(np.asarray(ours), np.asarray(theirs))
    assert np.array_equal(np.signbit(ours), np.signbit(theirs))


def test_percentile_and_median_are_numpys():
    rng = np.random.default_rng(3)
    for values in _arrays(rng):
        for q in QS:
            _same(order_stats.percentile(values, q), np.percentile(values, q))
        _same(order_stats.percentile(values, [1, 99]), np.percentile(values, [1, 99]))
        _same(order_stats.percentile(values, [1.0, 50.0, 99.5]), np.percentile(values, [1.0, 50.0, 99.5]))
        _same(order_stats.median(values), np.median(values))


def test_two_dimensional_inputs():
    rng = np.random.default_rng(4)
    for rows in (3, 11, 384, 1408):
        values = rng.normal(0, 20, (rows, 3)).astype(np.float32)
        _same(order_stats.median(values[:, 1]), np.median(values, 0)[1])
        _same(order_stats.median(values), np.median(values))
        _same(order_stats.percentile(values, 75.0), np.percentile(values, 75.0))


def test_nan_and_bad_q_behave_as_numpy():
    values = np.array([1.0, np.nan, 3.0], np.float32)
    assert np.isnan(order_stats.percentile(values, 50.0)) and np.isnan(np.percentile(values, 50.0))
    assert np.isnan(order_stats.median(values)) and np.isnan(np.median(values))
    with pytest.raises(ValueError, match="range"):
        order_stats.percentile(np.ones(4, np.float32), 101.0)
