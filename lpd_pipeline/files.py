"""File helpers: atomic writes (a crash never leaves a half-written result: temp name, then rename) and hashing."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import time
from pathlib import Path
from typing import Iterator


def _create_temp_beside(final_path: Path) -> tuple[int, Path]:
    """Create (exclusively) and open a new hidden temp file beside ``final_path``; returns (fd, path).

    The temp name keeps the final suffix so libraries that pick a format from the extension still work.
    Mode 0o666 filtered by the umask, like any new file (mkstemp's 0600 would hide results from other users).
    The folder is created only when missing: tiles are written by the thousand into existing folders.
    """
    tmp_path = final_path.parent / f".{final_path.stem}.{secrets.token_hex(6)}.tmp{final_path.suffix}"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    try:
        return os.open(tmp_path, flags, 0o666), tmp_path
    except FileNotFoundError:
        final_path.parent.mkdir(parents=True, exist_ok=True)
        return os.open(tmp_path, flags, 0o666), tmp_path


@contextlib.contextmanager
def atomic_path(final_path: str | os.PathLike, *, durable: bool = False) -> Iterator[Path]:
    """Yield a temp path beside ``final_path``; on success rename it over ``final_path``, else delete it.

    ``durable``: fsync the file before the rename and the folder after it, so the result survives a power
    loss, not only a killed process (checkpoints want this; cheap derived files do not pay for it).
    """
    final_path = Path(final_path)
    fd, tmp_path = _create_temp_beside(final_path)
    os.close(fd)
    try:
        yield tmp_path
        _commit(tmp_path, final_path, durable)
    finally:
        tmp_path.unlink(missing_ok=True)


# What atomic_path names its temp files (hidden, the final suffix kept): ``.<stem>.<random>.tmp<suffix>``.
# Matched exactly, so a user's own hidden files (``.notes.tmp.txt``) are never taken for ours.
TEMP_FILE_NAME = re.compile(r"^\..+\.[A-Za-z0-9_]+\.tmp(\.[A-Za-z0-9]+)?$")


def remove_stale_temp_files(directory: str | os.PathLike, *, min_age_s: float = 0.0) -> int:
    """Delete the temp files a killed writer left in ``directory`` (not recursive); returns how many.

    ``min_age_s`` spares younger ones, which a live writer may still be about to rename: a temp file lives for
    the milliseconds of one write, so any age of a minute or more means its writer is gone.
    """
    directory = Path(directory)
    if not directory.is_dir():
        return 0
    now, removed = time.time(), 0
    for candidate in directory.glob(".*.tmp*"):
        if not TEMP_FILE_NAME.match(candidate.name):
            continue
        try:
            if candidate.is_file() and now - candidate.stat().st_mtime >= min_age_s:
                candidate.unlink()
                removed += 1
        except OSError:  # gone meanwhile, or not ours to delete: leave it
            continue
    return removed


def _commit(tmp_path: Path, final_path: Path, durable: bool) -> None:
    if durable:
        _fsync(tmp_path)
    os.replace(tmp_path, final_path)
    if durable:
        _fsync(final_path.parent)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_bytes_atomic(final_path: str | os.PathLike, data: bytes) -> Path:
    final_path = Path(final_path)
    fd, tmp_path = _create_temp_beside(final_path)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        _commit(tmp_path, final_path, durable=False)
    finally:
        tmp_path.unlink(missing_ok=True)
    return final_path


def write_text_atomic(final_path: str | os.PathLike, text: str) -> Path:
    return write_bytes_atomic(final_path, text.encode("utf-8"))


def write_parquet_atomic(frame, final_path: str | os.PathLike) -> Path:
    """Write a pandas DataFrame to Parquet atomically."""
    with atomic_path(final_path) as tmp:
        frame.to_parquet(tmp, index=False)
    return Path(final_path)


def read_json_object(path: str | os.PathLike) -> dict:
    """The JSON object stored in ``path``; ``{}`` when the file is missing, damaged or holds something else.

    For caches, indexes and markers the project writes itself: a damaged one only means redoing some work.
    """
    try:
        value = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes, streamed in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
