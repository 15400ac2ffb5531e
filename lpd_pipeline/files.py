"""File helpers: atomic writes (a crash never leaves a half-written result: temp name, then rename) and hashing."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

_UMASK = os.umask(0o022)
os.umask(_UMASK)  # read once at import (os.umask can only be read by setting it)


@contextlib.contextmanager
def atomic_path(final_path: str | os.PathLike, *, durable: bool = False) -> Iterator[Path]:
    """Yield a temp path beside ``final_path``; on success rename it over ``final_path``, else delete it.

    The temp file keeps the final suffix so libraries that pick a format from the extension still work.
    ``durable``: fsync the file before the rename and the folder after it, so the result survives a power
    loss, not only a killed process (checkpoints want this; cheap derived files do not pay for it).
    """
    final_path = Path(final_path)
    final_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{final_path.stem}.", suffix=f".tmp{final_path.suffix}", dir=final_path.parent
    )
    os.close(fd)
    tmp_path = Path(tmp_name)
    # mkstemp creates 0600 files; give results the usual umask-based permissions so others can read them.
    os.chmod(tmp_path, 0o666 & ~_UMASK)
    try:
        yield tmp_path
        if durable:
            _fsync(tmp_path)
        os.replace(tmp_path, final_path)
        if durable:
            _fsync(final_path.parent)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_bytes_atomic(final_path: str | os.PathLike, data: bytes) -> Path:
    with atomic_path(final_path) as tmp:
        tmp.write_bytes(data)
    return Path(final_path)


def write_text_atomic(final_path: str | os.PathLike, text: str) -> Path:
    return write_bytes_atomic(final_path, text.encode("utf-8"))


def write_parquet_atomic(frame, final_path: str | os.PathLike) -> Path:
    """Write a pandas DataFrame to Parquet atomically."""
    with atomic_path(final_path) as tmp:
        frame.to_parquet(tmp, index=False)
    return Path(final_path)


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes, streamed in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
