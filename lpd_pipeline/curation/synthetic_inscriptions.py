"""Generated inscriptions on real tiles: the training positives of the text detector (:mod:`text_net`).

Rule: what the labelling rules call ``inscription`` (docs/FILTER_RULES.md) — columns of handwritten characters,
read top to bottom, right to left — drawn with a Kai (brush-style) font, ``fonts-arphic-ukai``
(:data:`FONT_PATHS`), seeded by an integer so a tile and a seed always give the same pixels. One to ten columns
of 3-20 characters each (sometimes a single horizontal title line), glyphs of 8-30 px on a 256-px tile, each
glyph slightly jittered in place and size, the block anywhere on the tile (cut by its edges too), a slight blur,
and the ink laid on by multiplication (ink darkens the paper and lets its grain show through, as real ink does),
dark or faint. Without the font nothing is drawn: :func:`font_path` is None and :func:`add_inscription` raises.
"""

from __future__ import annotations

import functools
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

FONT_PATHS = (Path("/usr/share/fonts/truetype/arphic/ukai.ttc"),)
# Common characters of poems and colophons (all in GB2312, which the font covers).
CHARACTERS = (
    "山水云月风花雪夜春秋江天人日长空清白青寒松石溪流远近高低深浅明暗烟雨林泉水阁亭楼台舟桥路归来去登临望观"
    "写画图题诗书年月日于时为之也而以其所此有无不可我君子在中上下前后东西南北古今岁华光阴草木竹梅兰菊鸟鹤"
    "飞落开见闻知得生成道德心意情思怀乡客游居家门外里千万一二三四五六七八九十百先臣王李张陈刘杨赵黄周吴"
    "丙午甲子乙丑丁卯戊辰己巳庚申辛酉壬戌癸亥仲冬季夏孟秋初春元正作于斋堂馆轩寓舍并识记题跋款印章墨笔纸绢"
)
SIZE_RANGE = (8, 30)
SIDE = 256  # the tile side the sizes above refer to; other sides scale them


@functools.cache
def font_path() -> Path | None:
    """The Kai font's file, or None when ``fonts-arphic-ukai`` is not installed."""
    return next((p for p in FONT_PATHS if p.is_file()), None)


@functools.cache
def _font(size: int) -> ImageFont.FreeTypeFont:
    path = font_path()
    if path is None:
        raise FileNotFoundError(f"no Kai font at {', '.join(map(str, FONT_PATHS))}: apt-get install fonts-arphic-ukai")
    return ImageFont.truetype(str(path), size)


def _glyph_block(rng: np.random.Generator, side: int) -> tuple[np.ndarray, dict]:
    """Ink coverage in [0, 1] of one inscription on a ``side`` x ``side`` canvas, and what was drawn."""
    scale = side / SIDE
    size = max(4, round(rng.uniform(*SIZE_RANGE) * scale))
    columns = int(rng.integers(1, 11))
    per_column = int(rng.integers(3, 21))
    horizontal = rng.random() < 0.15
    pitch = size * rng.uniform(1.0, 1.25)  # along a column
    spacing = size * rng.uniform(1.3, 2.0)  # between columns
    canvas = Image.new("L", (side, side), 0)
    draw = ImageDraw.Draw(canvas)
    # The first column (or line) starts inside the tile with room for three characters; the others may be cut.
    room = side - 3 * pitch
    if horizontal:
        x0, y0 = rng.uniform(-0.5 * size, max(room, 0.0)), rng.uniform(0, side - size)
    else:
        x0, y0 = rng.uniform(0, side - size), rng.uniform(-0.5 * size, max(room, 0.0))
    lengths = []
    for c in range(1 if horizontal else columns):
        length = per_column if c == 0 else max(1, int(per_column * rng.uniform(0.3, 1.0)))
        lengths.append(length)
        for k in range(length):
            glyph = CHARACTERS[int(rng.integers(len(CHARACTERS)))]
            jitter = rng.normal(0, 0.06 * size, 2)
            g = max(4, round(size * rng.uniform(0.85, 1.15)))
            along, across = k * pitch + jitter[0], -c * spacing + jitter[1]
            x, y = (x0 + along, y0) if horizontal else (x0 + across, y0 + along)
            draw.text((x, y), glyph, fill=255, font=_font(g), stroke_width=int(g >= 18 and rng.random() < 0.4))
    coverage = np.asarray(canvas, np.float32) / 255.0
    blur = rng.uniform(0.3, 1.2) * max(scale, 0.5)
    coverage = cv2.GaussianBlur(coverage, (0, 0), blur)
    return coverage, {"size": size, "columns": len(lengths), "characters": int(sum(lengths)),
                      "horizontal": bool(horizontal)}


def add_inscription(rgb: np.ndarray, seed: int) -> tuple[np.ndarray, dict]:
    """The tile with a generated inscription multiplied on, and what was drawn (size, columns, characters,
    horizontal, ink, strength). Dark ink (near-black or brownish grey) at full or faint strength."""
    rng = np.random.default_rng(seed)
    side = min(rgb.shape[:2])
    coverage, info = _glyph_block(rng, side)
    coverage = coverage[:rgb.shape[0], :rgb.shape[1]]
    if coverage.shape != rgb.shape[:2]:
        coverage = np.pad(coverage, ((0, rgb.shape[0] - coverage.shape[0]), (0, rgb.shape[1] - coverage.shape[1])))
    ink = np.clip(rng.uniform(5, 70) + rng.normal(0, 6, 3), 0, 255) / 255.0
    strength = rng.uniform(0.3, 0.65) if rng.random() < 0.3 else rng.uniform(0.75, 1.0)
    factor = 1.0 - (strength * coverage)[..., None] * (1.0 - ink[None, None, :])
    out = np.clip(rgb.astype(np.float32) * factor + 0.5, 0, 255).astype(np.uint8)
    return out, {**info, "ink": round(float(ink.mean()) * 255), "strength": round(float(strength), 3)}
