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
