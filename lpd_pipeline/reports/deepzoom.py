"""Deep Zoom (DZI) tile pyramids, so a painting of any size zooms to full resolution in a browser.

The rule: level ``maxLevel = ceil(log2(max(W, H)))`` is the image itself; each lower level halves it (``ceil``
of the size, as OpenSeadragon computes it) down to 1x1. Each level is cut into ``tile_size`` squares with
``overlap`` extra pixels on every inner edge, saved as JPEG ``<name>_files/<level>/<column>_<row>.jpg``, plus
the ``<name>.dzi`` XML descriptor. Memory: only the current level and the next (a quarter of it) are held, and
a level is halved in row strips; from a file, the peak is the decoder's own (bench/site_pyramid.py: 3.3x the
decoded image at 10 and 100 MP, the levels adding nothing measurable). The viewer gets
the descriptor inline (:meth:`DeepZoomImage.tile_source`), so no XHR is needed and pages work from ``file://``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree
from xml.sax.saxutils import quoteattr

import cv2
import numpy as np
from PIL import Image

from lpd_pipeline import imaging
from lpd_pipeline.files import write_text_atomic

DZI_XMLNS = "http://schemas.microsoft.com/deepzoom/2008"
DEFAULT_TILE_SIZE = 254  # 254 + 2 x 1 overlap = 256-px tiles, the usual DZI choice
DEFAULT_OVERLAP = 1
DEFAULT_QUALITY = 88
_STRIP_ROWS = 512  # rows of a level halved at once (even, so strips of the next level line up)


@dataclass(frozen=True)
class DeepZoomImage:
    """A written pyramid: ``<folder>/<name>.dzi`` and ``<folder>/<name>_files/``."""

    name: str
    width: int
    height: int
    tile_size: int
    overlap: int
    format: str
    tiles: int
    folder: Path

    @property
    def files_dir(self) -> Path:
        return self.folder / f"{self.name}_files"

    def thumbnail(self) -> np.ndarray:
        """The largest level that fits in one tile (its only tile, decoded): a preview of the whole image."""
        level = thumbnail_level(self.width, self.height, self.tile_size)
        return imaging.decode_image(self.files_dir / str(level) / "0_0.jpg")

    @property
    def max_level(self) -> int:
        return max_level(self.width, self.height)

    def tile_source(self, url_prefix: str) -> dict:
        """OpenSeadragon's inline DZI description (``tileSources: {Image: ...}``): tiles load as plain images from
        ``<url_prefix><name>_files/``, nothing is fetched by XHR."""
        return {"Image": {
            "xmlns": DZI_XMLNS,
            "Url": f"{url_prefix}{self.name}_files/",
            "Format": self.format,
            "Overlap": str(self.overlap),
            "TileSize": str(self.tile_size),
            "Size": {"Width": str(self.width), "Height": str(self.height)},
        }}


def max_level(width: int, height: int) -> int:
    return int(math.ceil(math.log2(max(width, height, 1))))


def level_size(width: int, height: int, level: int) -> tuple[int, int]:
    """``(w, h)`` of ``level`` (DZI: ``ceil(size / 2**(maxLevel - level))``)."""
    scale = 2 ** (max_level(width, height) - level)
    return -(-width // scale), -(-height // scale)


def thumbnail_level(width: int, height: int, tile_size: int) -> int:
    """The deepest level whose image fits in one tile."""
    level = max_level(width, height)
    while level and max(level_size(width, height, level)) > tile_size:
        level -= 1
    return level


def _tile_spans(length: int, tile_size: int, overlap: int) -> list[tuple[int, int]]:
    spans = []
    for index in range(-(-length // tile_size)):
        start = max(index * tile_size - overlap, 0)
        spans.append((start, min((index + 1) * tile_size + overlap, length)))
    return spans


def write_deep_zoom(
    source: np.ndarray | str | os.PathLike,
    folder: str | os.PathLike,
    name: str,
    *,
    tile_size: int = DEFAULT_TILE_SIZE,
    overlap: int = DEFAULT_OVERLAP,
    quality: int = DEFAULT_QUALITY,
    max_pixels: int = imaging.DEFAULT_MAX_PIXELS,
) -> DeepZoomImage:
    """Write the pyramid of ``source`` (uint8 RGB/gray array, or an image file decoded robustly) into ``folder``.

    Meant to be written into a folder that is published as a whole afterwards (a site built in a temp folder and
    then swapped in); the ``.dzi`` descriptor itself is written atomically.
    """
    if tile_size < 16 or overlap < 0 or overlap >= tile_size // 2:
        raise ValueError(f"tile_size must be >= 16 and 0 <= overlap < tile_size/2, got {tile_size}, {overlap}")
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"pyramid name {name!r} must be a plain file name")
    level_image = imaging.decode_image(source, max_pixels) if not isinstance(source, np.ndarray) else source
    if level_image.dtype != np.uint8 or level_image.ndim not in (2, 3) or min(level_image.shape[:2]) == 0:
        raise ValueError(f"pyramid {name}: expects a non-empty uint8 image, got {level_image.dtype} "
                         f"{level_image.shape}")
    height, width = level_image.shape[:2]
    folder = Path(folder)
    files_dir = folder / f"{name}_files"
    tiles = 0
    for level in range(max_level(width, height), -1, -1):
        level_w, level_h = level_size(width, height, level)
        assert level_image.shape[:2] == (level_h, level_w), (level_image.shape, level_w, level_h)
        level_dir = files_dir / str(level)
        level_dir.mkdir(parents=True, exist_ok=True)
        for row, (y0, y1) in enumerate(_tile_spans(level_h, tile_size, overlap)):
            for column, (x0, x1) in enumerate(_tile_spans(level_w, tile_size, overlap)):
                tile = np.ascontiguousarray(level_image[y0:y1, x0:x1])
                Image.fromarray(tile).save(level_dir / f"{column}_{row}.jpg", format="JPEG", quality=quality)
                tiles += 1
        if level:
            level_image = _halve(level_image, *level_size(width, height, level - 1))
    write_text_atomic(folder / f"{name}.dzi", _dzi_xml(width, height, tile_size, overlap, "jpg"))
    return DeepZoomImage(name, width, height, tile_size, overlap, "jpg", tiles, folder)


def read_deep_zoom(folder: str | os.PathLike, name: str) -> DeepZoomImage:
    """The description of a pyramid written by :func:`write_deep_zoom` (its ``.dzi`` file and tile count)."""
    folder = Path(folder)
    root = ElementTree.fromstring((folder / f"{name}.dzi").read_text(encoding="utf-8"))
    size = root.find(f"{{{DZI_XMLNS}}}Size")
    if root.tag != f"{{{DZI_XMLNS}}}Image" or size is None:
        raise ValueError(f"{folder / name}.dzi is not a Deep Zoom descriptor")
    tiles = sum(1 for _ in (folder / f"{name}_files").glob("*/*.jpg"))
    return DeepZoomImage(name, int(size.get("Width")), int(size.get("Height")), int(root.get("TileSize")),
                         int(root.get("Overlap")), root.get("Format"), tiles, folder)


def _halve(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """``image`` reduced to ``width`` x ``height`` (about half) by area averaging, in row strips."""
    out = np.empty((height, width, *image.shape[2:]), np.uint8)
    for top in range(0, height, _STRIP_ROWS // 2):
        bottom = min(top + _STRIP_ROWS // 2, height)
        strip = image[2 * top: min(2 * bottom, image.shape[0])]
        # An odd last row/column is averaged with itself (edge replicate), as ceil-halving wants.
        pad_y = 2 * (bottom - top) - strip.shape[0]
        pad_x = 2 * width - strip.shape[1]
        if pad_y or pad_x:
            strip = cv2.copyMakeBorder(strip, 0, pad_y, 0, pad_x, cv2.BORDER_REPLICATE)
        out[top:bottom] = cv2.resize(strip, (width, bottom - top), interpolation=cv2.INTER_AREA).reshape(
            out[top:bottom].shape)
    return out


def _dzi_xml(width: int, height: int, tile_size: int, overlap: int, fmt: str) -> str:
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<Image xmlns={quoteattr(DZI_XMLNS)} Format={quoteattr(fmt)} Overlap="{overlap}" '
            f'TileSize="{tile_size}">\n  <Size Width="{width}" Height="{height}"/>\n</Image>\n')
