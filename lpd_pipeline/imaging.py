"""Robust image decoding and saving, used by every stage.

Every decoder path ends in the same contract: ``uint8`` RGB ``(H, W, 3)`` with EXIF orientation applied.
Bad files raise :class:`ImageDecodeError` with a short machine-readable ``reason`` so callers can record a
rejection instead of crashing. Pillow's global ``LOAD_TRUNCATED_IMAGES`` is never touched: truncated files
must be rejected, not silently padded with grey.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import re
import stat
import struct
import threading
import warnings
import zlib
from pathlib import Path

import numpy as np
from isal import isal_zlib
from PIL import Image, TiffImagePlugin, UnidentifiedImageError

from lpd_pipeline.files import atomic_path, sha256_file, write_bytes_atomic

# Suffixes the ingest sources accept as painting files (lower-case, with the dot).
IMAGE_SUFFIXES: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp", ".bmp")

# Largest width*height decoded by default (about 12,000 x 12,000). Kept below Pillow's own hard limit
# (2 x Image.MAX_IMAGE_PIXELS) so Pillow never refuses a file this module would accept.
DEFAULT_MAX_PIXELS = 150_000_000

# The formats decode_image will decode (sniffed from magic bytes, not from the suffix).
SUPPORTED_TYPES = frozenset({"jpeg", "png", "tiff", "webp", "bmp"})

REASONS = ("zero_byte", "not_an_image", "truncated", "decompression_bomb", "unsupported", "unreadable")

_EXIF_ORIENTATION_TAG = 0x0112
_HEAD_BYTES = 1024
# Raising Pillow's global pixel limit (only for callers asking for more than Pillow allows) is serialised.
_PILLOW_LIMIT_LOCK = threading.Lock()


class ImageDecodeError(ValueError):
    """A file could not be decoded into an RGB image. ``reason`` is one of :data:`REASONS`."""

    def __init__(self, path: str | os.PathLike, reason: str, detail: str = "") -> None:
        self.path = Path(path)
        self.reason = reason
        self.detail = detail
        message = f"{self.path}: {reason}"
        if detail:
            message += f" ({detail})"
        super().__init__(message)

    def __reduce__(self):  # keep the attributes when the error crosses a process boundary
        return (type(self), (self.path, self.reason, self.detail))


def sniff_image_type(head: bytes) -> str | None:
    """The image format named by the magic bytes at the start of a file, or None if not an image."""
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):  # classic and BigTIFF
        return "tiff"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head.startswith(b"BM") and len(head) >= 14:
        return "bmp"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    return None


def describe_non_image(head: bytes, suffix: str = "", *, show_bytes: bool = True) -> str:
    """A human hint for what a non-image file actually is (the classic: an HTML error page saved as .jpg).

    Only the kind of content is named; ``show_bytes=False`` also leaves out the first bytes of unrecognised
    content (for bodies sent by a server, whose content must not be copied into reports)."""
    named = f" named {suffix}" if suffix else ""
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith((b"<!doctype html", b"<html")) or any(t in text for t in (b"<html", b"<head", b"<body")):
        return f"HTML document{named}"
    if text.startswith((b"<?xml", b"<svg")):
        return f"XML/SVG document{named}"
    if text.startswith(b"%pdf"):
        return f"PDF document{named}"
    if text.startswith((b"{", b"[")):
        return f"JSON/text document{named}"
    try:
        decoded = head.decode("utf-8")
    except UnicodeDecodeError:
        decoded = None
    if decoded is not None and all(ch.isprintable() or ch in "\r\n\t" for ch in decoded):
        return f"text file{named}"
    return f"unrecognised content{named}" + (f" (first bytes {head[:8].hex()})" if show_bytes else "")


def _read_head(path: Path) -> bytes:
    try:
        status = path.stat()
        if not stat.S_ISREG(status.st_mode):
            # A FIFO, socket or device named like an image: opening it could block forever or read without end.
            raise ImageDecodeError(path, "not_a_regular_file", f"not a regular file ({_file_type(status.st_mode)})")
        size = status.st_size
        if size == 0:
            raise ImageDecodeError(path, "zero_byte", "file is empty")
        with open(path, "rb") as handle:
            return handle.read(_HEAD_BYTES)
    except ImageDecodeError:
        raise
    except OSError as exc:
        raise ImageDecodeError(path, "unreadable", f"{type(exc).__name__}: {exc}") from exc


def _file_type(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO / named pipe"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device")):
        if test(mode):
            return name
    return "a special file"


def _check_type(path: Path, head: bytes) -> str:
    kind = sniff_image_type(head)
    if kind is None:
        raise ImageDecodeError(path, "not_an_image", describe_non_image(head, path.suffix.lower()))
    if kind not in SUPPORTED_TYPES:
        raise ImageDecodeError(path, "unsupported", f"{kind.upper()} is not a supported painting format")
    return kind


def _bomb_error(path: Path, pixels: int | None, max_pixels: int) -> ImageDecodeError:
    claimed = f"{pixels:,} pixels" if pixels is not None else "pixel count"
    return ImageDecodeError(path, "decompression_bomb", f"{claimed} exceeds the limit of {max_pixels:,}")


def _open_header(path: Path, max_pixels: int, source=None) -> Image.Image:
    """Open (header only) with Pillow's own bomb guard turned into our error type. ``source``: an open binary
    file to read instead of ``path`` (which then only names the file in errors)."""
    source = path if source is None else source
    hard_limit = None if Image.MAX_IMAGE_PIXELS is None else 2 * Image.MAX_IMAGE_PIXELS
    try:
        with warnings.catch_warnings():
            # Our own width*height check replaces Pillow's warning.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            if hard_limit is not None and max_pixels > hard_limit:
                with _PILLOW_LIMIT_LOCK:
                    saved = Image.MAX_IMAGE_PIXELS
                    Image.MAX_IMAGE_PIXELS = None
                    try:
                        return Image.open(source)
                    finally:
                        Image.MAX_IMAGE_PIXELS = saved
            return Image.open(source)
    except Image.DecompressionBombError as exc:
        match = re.search(r"\((\d+) pixels\)", str(exc))
        raise _bomb_error(path, int(match.group(1)) if match else None, max_pixels) from exc
    except UnidentifiedImageError as exc:
        raise ImageDecodeError(path, "unreadable", "image header is corrupt or not understood") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise _classify_decode_failure(path, exc) from exc


def _classify_decode_failure(path: Path, exc: BaseException) -> ImageDecodeError:
    text = str(exc)
    lowered = text.lower()
    if isinstance(exc, EOFError) or any(k in lowered for k in ("truncated", "premature", "broken", "end of file")):
        return ImageDecodeError(path, "truncated", text or type(exc).__name__)
    if "decoder" in lowered and "not available" in lowered:
        return ImageDecodeError(path, "unsupported", text)
    return ImageDecodeError(path, "unreadable", f"{type(exc).__name__}: {text}")


def _exif_orientation(image: Image.Image) -> int:
    try:
        value = image.getexif().get(_EXIF_ORIENTATION_TAG, 1)
        return int(value) if int(value) in range(1, 9) else 1
    except Exception:  # a broken EXIF block must not cost us the pixels
        return 1


@functools.cache
def _pillow_orients_tiff() -> bool:
    """Whether this Pillow applies a TIFF's Orientation tag itself (size on open, pixels on load).

    Recent Pillow versions do; older ones leave it to the caller like any EXIF tag. Probed once on a 2x1 TIFF
    instead of trusting a version number.
    """
    directory = TiffImagePlugin.ImageFileDirectory_v2()
    directory[_EXIF_ORIENTATION_TAG] = 6
    buffer = io.BytesIO()
    Image.new("L", (2, 1)).save(buffer, format="TIFF", tiffinfo=directory)
    with Image.open(buffer) as probe:
        return probe.size == (1, 2)


def _oriented_size(kind: str, size: tuple[int, int], orientation: int) -> tuple[int, int]:
    """``(width, height)`` after orientation, from Pillow's header ``size``."""
    if orientation in (5, 6, 7, 8) and not (kind == "tiff" and _pillow_orients_tiff()):
        return size[1], size[0]
    return size


def apply_orientation(array: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (1..8) to an (H, W[, C]) array, matching ``PIL.ImageOps.exif_transpose``."""
    if orientation == 2:
        out = array[:, ::-1]
    elif orientation == 3:
        out = array[::-1, ::-1]
    elif orientation == 4:
        out = array[::-1]
    elif orientation == 5:
        out = np.swapaxes(array, 0, 1)
    elif orientation == 6:
        out = np.rot90(array, k=-1)
    elif orientation == 7:
        out = np.swapaxes(array, 0, 1)[::-1, ::-1]
    elif orientation == 8:
        out = np.rot90(array, k=1)
    else:
        out = array
    return np.ascontiguousarray(out)


def _composite_on_white(color: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Flatten straight (non-premultiplied) alpha onto white; inputs in [0, 1], output uint8."""
    a = alpha[..., None] if color.ndim == 3 else alpha
    flat = color * a + (1.0 - a)
    return np.clip(np.rint(flat * 255.0), 0, 255).astype(np.uint8)


def _to_rgb_channels(array: np.ndarray) -> np.ndarray:
    if array.ndim == 2:
        return np.repeat(array[:, :, None], 3, axis=2)
    return array


def _scale_float(values: np.ndarray) -> np.ndarray:
    """Float samples to [0, 1]: data in [0, 1] is taken as-is, [0, 255] and [0, 65535] by their range."""
    values = np.nan_to_num(values.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    peak = float(values.max()) if values.size else 0.0
    scale = 1.0 if peak <= 1.0 else 255.0 if peak <= 255.0 else 65535.0
    return np.clip(values / scale, 0.0, 1.0)


def _pillow_to_rgb(path: Path, image: Image.Image) -> np.ndarray:
    mode = image.mode
    if mode == "RGB":
        return np.asarray(image, dtype=np.uint8)
    if mode == "L":
        return _to_rgb_channels(np.asarray(image, dtype=np.uint8))
    if mode == "1":
        return _to_rgb_channels(np.asarray(image.convert("L"), dtype=np.uint8))
    if mode in ("P", "PA"):
        has_alpha = mode == "PA" or "transparency" in image.info
        image = image.convert("RGBA" if has_alpha else "RGB")
        mode = image.mode
        if mode == "RGB":
            return np.asarray(image, dtype=np.uint8)
    if mode in ("RGBa", "La"):  # premultiplied: un-premultiply via Pillow first
        image = image.convert("RGBA" if mode == "RGBa" else "LA")
        mode = image.mode
    if mode in ("RGBA", "LA"):
        data = np.asarray(image, dtype=np.float64) / 255.0
        colour = data[..., 0] if mode == "LA" else data[..., :3]
        return _to_rgb_channels(_composite_on_white(colour, data[..., -1]))
    if mode.startswith("I;16"):
        data = np.asarray(image).astype(np.float64) / 65535.0
        return _to_rgb_channels(np.clip(np.rint(data * 255.0), 0, 255).astype(np.uint8))
    if mode == "I":
        data = np.asarray(image).astype(np.float64)
        top = 65535.0 if data.size == 0 or data.max() <= 65535 else float(2**32 - 1)
        return _to_rgb_channels(np.clip(np.rint(data / top * 255.0), 0, 255).astype(np.uint8))
    if mode == "F":
        data = _scale_float(np.asarray(image))
        return _to_rgb_channels(np.rint(data * 255.0).astype(np.uint8))
    if mode in ("CMYK", "YCbCr", "LAB", "HSV"):
        # Pillow already inverts Adobe (APP14) CMYK JPEGs on load, so a plain convert is correct.
        return np.asarray(image.convert("RGB"), dtype=np.uint8)
    try:
        return np.asarray(image.convert("RGB"), dtype=np.uint8)
    except (ValueError, OSError) as exc:
        raise ImageDecodeError(path, "unsupported", f"pixel mode {mode!r} cannot be converted to RGB") from exc


def _high_bit_depth(kind: str, head: bytes, image: Image.Image) -> bool:
    """True when the file has 16-bit colour samples that Pillow would truncate to 8 bits."""
    if image.mode.startswith("I") or image.mode == "F":
        return False  # Pillow keeps these at full precision
    if kind == "png" and len(head) >= 26:
        return head[24] == 16  # IHDR bit depth
    if kind == "tiff":
        try:
            bits = image.tag_v2.get(258)
        except AttributeError:
            return False
        bits = bits if isinstance(bits, tuple) else (bits,)
        return any(b is not None and int(b) > 8 for b in bits)
    return False


def _cv2_high_bit_depth(path: Path) -> np.ndarray | None:
    """16-bit colour via OpenCV (Pillow has no 16-bit RGB mode); scaled to 8 bits by rounding v*255/65535.

    None when OpenCV cannot decode the file (some valid TIFF layouts): Pillow then decodes it at 8 bits
    (at most one grey level off the rounded scaling), and reports truncated data itself.
    """
    import cv2

    try:
        data = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    except cv2.error:
        return None
    if data is None:
        return None
    if data.dtype == np.uint8:
        scaled = data.astype(np.float64) / 255.0
    elif data.dtype == np.uint16:
        scaled = data.astype(np.float64) / 65535.0
    elif data.dtype.kind == "f":
        scaled = _scale_float(data)
    else:
        raise ImageDecodeError(path, "unsupported", f"sample type {data.dtype} is not supported")
    channels = 1 if scaled.ndim == 2 else scaled.shape[2]
    if channels == 1:
        return _to_rgb_channels(np.rint(scaled.reshape(scaled.shape[:2]) * 255.0).astype(np.uint8))
    if channels == 2:
        return _to_rgb_channels(_composite_on_white(scaled[..., 0], scaled[..., 1]))
    rgb = scaled[..., 2::-1]  # OpenCV is BGR(A)
    if channels == 4:
        return _composite_on_white(rgb, scaled[..., 3])
    return np.rint(rgb * 255.0).astype(np.uint8)


def decode_image(path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode any supported painting file to uint8 RGB ``(H, W, 3)`` with EXIF orientation applied.

    Raises :class:`ImageDecodeError` (reason: not_a_regular_file, zero_byte, not_an_image, truncated,
    decompression_bomb, unsupported, unreadable). The pixel-count check happens on the header, before any
    pixels are decoded; a FIFO, socket or device is never opened.
    """
    path = Path(path)
    head = _read_head(path)
    kind = _check_type(path, head)
    with contextlib.ExitStack() as stack:
        # TIFFs are read through a file object: for plain uncompressed files opened by name, Pillow memory-maps
        # the pixels and then skips the quarter turns of the Orientation tag it applies everywhere else.
        try:
            source = stack.enter_context(open(path, "rb")) if kind == "tiff" else None
        except OSError as exc:
            raise ImageDecodeError(path, "unreadable", str(exc)) from exc
        image = _open_header(path, max_pixels, source)
        return _decode_opened(path, kind, head, image, max_pixels)


def _decode_opened(path: Path, kind: str, head: bytes, image: Image.Image, max_pixels: int) -> np.ndarray:
    with image:
        width, height = image.size
        if width * height > max_pixels:
            raise _bomb_error(path, width * height, max_pixels)
        if width == 0 or height == 0:
            raise ImageDecodeError(path, "unreadable", f"image has no pixels ({width}x{height})")
        orientation = _exif_orientation(image)
        final_width, final_height = _oriented_size(kind, (width, height), orientation)
        try:
            rgb = None
            if _high_bit_depth(kind, head, image):
                rgb = _cv2_high_bit_depth(path)  # raw sample order: OpenCV ignores the orientation here
            if rgb is None:
                image.load()
                rgb = _pillow_to_rgb(path, image)
                if kind == "tiff" and _pillow_orients_tiff():
                    orientation = 1  # Pillow has already turned the pixels
        except ImageDecodeError:
            raise
        except Image.DecompressionBombError as exc:  # e.g. a TIFF whose later IFD is huge
            raise _bomb_error(path, None, max_pixels) from exc
        except (OSError, SyntaxError, ValueError, EOFError, MemoryError) as exc:
            raise _classify_decode_failure(path, exc) from exc
    rgb = apply_orientation(rgb, orientation)
    if rgb.shape[:2] != (final_height, final_width):
        decoded = f"{rgb.shape[1]}x{rgb.shape[0]}"
        raise ImageDecodeError(path, "unreadable", f"decoded {decoded}, header says {final_width}x{final_height}")
    return rgb


def image_size(path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[int, int]:
    """``(width, height)`` from the header only, as :func:`decode_image` would return it (EXIF-rotated)."""
    path = Path(path)
    head = _read_head(path)
    kind = _check_type(path, head)
    with _open_header(path, max_pixels) as image:
        return _oriented_size(kind, image.size, _exif_orientation(image))


def luma_bt601(rgb: np.ndarray) -> np.ndarray:
    """BT.601 luma ``Y = 0.299 R + 0.587 G + 0.114 B`` rounded half up, exact (integer arithmetic)."""
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8:
        raise ValueError(f"luma_bt601 expects uint8, got {rgb.dtype}")
    if rgb.ndim == 2:
        return rgb.copy()
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"luma_bt601 expects (H, W, 3) RGB, got shape {rgb.shape}")
    wide = rgb.astype(np.uint32)
    # Integer weights in thousandths make the half-up rounding exact (no float ties).
    total = 299 * wide[..., 0] + 587 * wide[..., 1] + 114 * wide[..., 2] + 500
    return (total // 1000).astype(np.uint8)


def lab_planes(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CIELAB planes L* (0..100), a*, b* (signed), float32 and contiguous, of uint8 sRGB ``(H, W, 3)`` (OpenCV's
    float path: exact, and faster than its 8-bit one; each plane contiguous, as every later use is per channel)."""
    import cv2

    scaled = np.multiply(rgb, np.float32(1.0 / 255.0), dtype=np.float32)
    lightness, a, b = cv2.split(cv2.cvtColor(scaled, cv2.COLOR_RGB2LAB))
    return lightness, a, b


def vermilion(lightness: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Where a pixel has the colour of seal paste (vermilion/cinnabar, also faded): red (a* > 16) with a hue
    angle below ~52 deg, neither near-black nor paper-white. Ochre (hue 60-70 deg), brown silk (small a*, large
    b*) and mineral greens/blues fall outside. The seal filter's colour test and the renderer's kept seals."""
    return (a > 16.0) & (b < 1.3 * a) & (b > -0.35 * a) & (lightness > 20.0) & (lightness < 90.0)


_SAVE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF", ".tiff": "TIFF",
                 ".webp": "WEBP", ".bmp": "BMP"}


def save_image(path: str | os.PathLike, array: np.ndarray, *, quality: int = 95) -> Path:
    """Write a uint8 RGB ``(H, W, 3)`` or grayscale ``(H, W)`` array atomically; format from the suffix.

    PNG, TIFF, BMP and WebP are lossless; JPEG uses ``quality`` with full-resolution chroma (4:4:4).
    """
    path = Path(path)
    array = np.asarray(array)
    if array.dtype != np.uint8:
        raise ValueError(f"save_image({path}): expects uint8, got {array.dtype}")
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] == 3)):
        raise ValueError(f"save_image({path}): expects (H, W) or (H, W, 3), got shape {array.shape}")
    fmt = _SAVE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"save_image({path}): unsupported suffix {path.suffix!r}; use one of {sorted(_SAVE_FORMATS)}")
    if fmt == "PNG":
        # Tiles are written by the thousand: the project's own encoder is ~5x faster than Pillow's at the
        # same size (see encode_png).
        return write_bytes_atomic(path, encode_png(array))
    image = Image.fromarray(np.ascontiguousarray(array), mode="L" if array.ndim == 2 else "RGB")
    options: dict = {}
    if fmt == "JPEG":
        options = {"quality": int(quality), "subsampling": 0}
    elif fmt == "TIFF":
        options = {"compression": "tiff_lzw"}
    elif fmt == "WEBP":
        options = {"lossless": True}
    with atomic_path(path) as tmp:
        image.save(tmp, format=fmt, **options)
    return path


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_FILTER_UP = 2


def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def encode_png(array: np.ndarray) -> bytes:
    """Lossless 8-bit PNG (RGB ``(H, W, 3)`` or grayscale ``(H, W)``) of a uint8 array.

    Every row uses PNG's "Up" filter (difference to the row above, one vectorised subtraction) and the
    stream is deflated by ISA-L at level 1. Pillow's adaptive filtering plus zlib level 1 gives the same size
    on painting tiles (~107 KiB per 256-px colour tile) at ~5x the time, which dominated writing tile pairs.
    """
    array = np.ascontiguousarray(array)
    if array.dtype != np.uint8 or not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] == 3)):
        raise ValueError(f"encode_png expects uint8 (H, W) or (H, W, 3), got {array.dtype} {array.shape}")
    height, width = array.shape[:2]
    if height == 0 or width == 0:
        raise ValueError(f"encode_png cannot encode an empty image of shape {array.shape}")
    rows = array.reshape(height, -1)
    filtered = np.empty((height, rows.shape[1] + 1), np.uint8)
    filtered[:, 0] = _PNG_FILTER_UP
    filtered[0, 1:] = rows[0]  # the row above the first one counts as zeros
    np.subtract(rows[1:], rows[:-1], out=filtered[1:, 1:])  # uint8 arithmetic wraps modulo 256, as PNG wants
    colour_type = 2 if array.ndim == 3 else 0
    header = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    return b"".join((
        _PNG_SIGNATURE,
        _png_chunk(b"IHDR", header),
        _png_chunk(b"IDAT", isal_zlib.compress(filtered.tobytes(), 1)),
        _png_chunk(b"IEND", b""),
    ))


_PNG_END = _png_chunk(b"IEND", b"")


def png_complete(path: str | os.PathLike) -> bool:
    """Whether the file ends with a PNG's IEND chunk (a cut-off copy does not); reads 12 bytes."""
    try:
        with open(path, "rb") as handle:
            handle.seek(-len(_PNG_END), os.SEEK_END)
            return handle.read() == _PNG_END
    except OSError:
        return False


def content_hash(path: str | os.PathLike) -> str:
    """Stable id of a file: the first 16 hex digits of the SHA-256 of its bytes (streamed)."""
    return sha256_file(path)[:16]
