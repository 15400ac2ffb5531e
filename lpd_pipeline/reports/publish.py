"""Publishing a folder (a static site) as a whole: never a half-written site at the final path.

The rule: the new folder is built under a hidden temp name beside the final one; only when it is complete does
it take the final name (the previous version is renamed aside first and deleted afterwards). A failed build
leaves the previous site untouched and its temp folder removed. Between the two renames the final path is
missing for microseconds, never half-filled; an ``.old`` folder left by a killed process is cleaned next time (a temp folder once it is 6 hours old).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import time
from pathlib import Path
from typing import Iterator

_PREFIX = ".building-"
_OLD = ".old-"


@contextlib.contextmanager
def build_folder(final_dir: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty temp folder beside ``final_dir``; on success it replaces ``final_dir``."""
    final_dir = Path(final_dir)
    final_dir.parent.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(final_dir)
    temp_dir = final_dir.parent / f"{_PREFIX}{final_dir.name}-{secrets.token_hex(4)}"
    temp_dir.mkdir()
    try:
        yield temp_dir
        old_dir = None
        if final_dir.exists():
            old_dir = final_dir.parent / f"{_OLD}{final_dir.name}-{secrets.token_hex(4)}"
            os.replace(final_dir, old_dir)
        os.replace(temp_dir, final_dir)
        if old_dir is not None:
            shutil.rmtree(old_dir, ignore_errors=True)
    finally:
        if temp_dir.exists():
            shutil.rmtree(temp_dir, ignore_errors=True)


def _remove_leftovers(final_dir: Path, *, building_min_age_s: float = 6 * 3600) -> None:
    """Delete what killed builds left: ``.old`` folders always, temp folders only when older than
    ``building_min_age_s`` (a concurrent build may still be writing a young one)."""
    now = time.time()
    for prefix in (_PREFIX, _OLD):
        for leftover in final_dir.parent.glob(f"{prefix}{final_dir.name}-*"):
            if not leftover.is_dir() or leftover.is_symlink():
                continue
            if prefix == _PREFIX and now - leftover.stat().st_mtime < building_min_age_s:
                continue
            shutil.rmtree(leftover, ignore_errors=True)
