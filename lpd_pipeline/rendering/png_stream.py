"""A PNG written row block by row block, with text chunks, atomically (temp name, then rename).

The rule: the file has the layout of ``imaging.encode_png`` (8-bit RGB, PNG "Up" filter, ISA-L deflate level 1)
but the image is never held whole: each block is filtered against the last row of the previous one and fed to
one streaming deflate; IDAT chunks go out as compressed bytes accumulate. Text chunks (iTXt, UTF-8) come before
the pixels. The file gets its final name only when every row was written; an error or a short image leaves any
existing file untouched and no temp file behind.
"""

from __future__ import annotations

import os
import struct
import sys
import zlib
from contextlib import ExitStack
from pathlib import Path

import numpy as np
from isal import isal_zlib

from lpd_pipeline.files import atomic_path

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_FILTER_UP = 2
_IDAT_BYTES = 1 << 20


def _chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def text_chunk(key: str, value: str) -> bytes:
    """An uncompressed iTXt chunk (keyword: 1-79 Latin-1 printable characters; value: any UTF-8 text)."""
    if not 1 <= len(key) <= 79 or not all(32 <= ord(c) <= 126 for c in key) or key != key.strip():
        raise ValueError(f"invalid PNG text keyword {key!r}")
    return _chunk(b"iTXt", key.encode("latin-1") + b"\x00\x00\x00\x00\x00" + value.encode("utf-8"))


class PngStreamWriter:
    """``with PngStreamWriter(path, width, height, text) as png: png.write_rows(rgb_block)``."""

    def __init__(self, path: str | os.PathLike, width: int, height: int, text: dict[str, str] | None = None):
        if width < 1 or height < 1:
            raise ValueError(f"PNG size must be positive, got {width}x{height}")
        self.path, self.width, self.height = Path(path), int(width), int(height)
        self.text = dict(text or {})
        self.rows_written = 0
        self._stack = ExitStack()
        self._previous = np.zeros((self.width * 3,), dtype=np.uint8)
        self._deflate = isal_zlib.compressobj(1)
        self._pending: list[bytes] = []
        self._pending_bytes = 0

    def __enter__(self) -> "PngStreamWriter":
        tmp = self._stack.enter_context(atomic_path(self.path))
        self._handle = self._stack.enter_context(open(tmp, "wb"))
        header = struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0)
        self._handle.write(_SIGNATURE + _chunk(b"IHDR", header))
        for key, value in self.text.items():
            self._handle.write(text_chunk(key, value))
        return self

    def write_rows(self, rgb: np.ndarray) -> None:
        rgb = np.ascontiguousarray(rgb)
        if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[1:] != (self.width, 3):
            raise ValueError(f"rows must be uint8 (n, {self.width}, 3), got {rgb.dtype} {rgb.shape}")
        if self.rows_written + rgb.shape[0] > self.height:
            raise ValueError(f"{self.path}: more than {self.height} rows written")
        rows = rgb.reshape(rgb.shape[0], -1)
        if rows.shape[0] == 0:
            return
        filtered = np.empty((rows.shape[0], rows.shape[1] + 1), dtype=np.uint8)
        filtered[:, 0] = _FILTER_UP
        np.subtract(rows[0], self._previous, out=filtered[0, 1:])
        np.subtract(rows[1:], rows[:-1], out=filtered[1:, 1:])  # wraps modulo 256, as PNG wants
        self._previous = rows[-1].copy()
        self._emit(self._deflate.compress(filtered.tobytes()))
        self.rows_written += rows.shape[0]

    def _emit(self, data: bytes, *, flush: bool = False) -> None:
        if data:
            self._pending.append(data)
            self._pending_bytes += len(data)
        if self._pending_bytes >= _IDAT_BYTES or (flush and self._pending):
            self._handle.write(_chunk(b"IDAT", b"".join(self._pending)))
            self._pending, self._pending_bytes = [], 0

    def __exit__(self, exc_type, exc, tb) -> bool:
        try:
            if exc_type is None:
                if self.rows_written != self.height:
                    raise ValueError(f"{self.path}: {self.rows_written} of {self.height} rows written")
                self._emit(self._deflate.flush(), flush=True)
                self._handle.write(_chunk(b"IEND", b""))
                self._handle.close()
        except BaseException:
            self._stack.__exit__(*sys.exc_info())
            raise
        return bool(self._stack.__exit__(exc_type, exc, tb))
