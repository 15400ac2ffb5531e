"""Generated watermarks on real tiles: the measurement set of the watermark filter.

Rule: every overlay is drawn with Pillow's bundled fonts only (the scalable default font, plain or with a
stroke, and the classic bitmap font scaled up), seeded by an integer, so a tile and a seed always give the same
pixels. Three kinds, the ones web-scraped paintings carry (docs/FILTER_RULES.md, ``watermark``):

- ``site``: a site logo and URL across the brushwork (e.g. "Artron.Net" over "www.artron.net"), semi-transparent,
  pale (white) or dark, at any angle, repeated or once;
- ``corner``: a studio or gallery name stamped small in a corner, nearly opaque;
- ``edge``: URL text running vertically along one edge.

Real labelled watermarks are too few to measure a recall on (8 tiles); these overlays carry the class.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

KINDS = ("site", "corner", "edge")
SITE_MARKS = (("Artron.Net", "www.artron.net"), ("PurpleCulture", "purpleculture.net"),
              ("fine art america", "fineartamerica.com"), ("ChinaOnlineMuseum", "comuseum.com"),
              ("Art Gallery", "www.art-gallery.cn"), ("ebay", "ebayID: inkstudio88"))
STUDIO_NAMES = ("Studio Wang", "(c) Li Art Studio", "Zhang Gallery", "Qingshan Tang", "Mountain Ink Studio",
                "www.shanshui.cn", "Copyright Chen")


def _font(rng: np.random.Generator, size: int) -> tuple[ImageFont.ImageFont | ImageFont.FreeTypeFont, int]:
    """A bundled font at about ``size`` px and a stroke width: the scalable default (plain or bold-like) or
    the bitmap font (drawn at 11 px; the caller scales the layer)."""
    choice = int(rng.integers(3))
    if choice == 2:
        return ImageFont.load_default_imagefont(), 0
    return ImageFont.load_default(size=max(6, size)), choice  # 1: a 1-px stroke thickens the letters


def _text_layer(text: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """Coverage in [0, 1] of ``text`` at about ``size`` px letter height, on its own tight canvas."""
    font, stroke = _font(rng, size)
    probe = ImageDraw.Draw(Image.new("L", (1, 1)))
    left, top, right, bottom = probe.textbbox((0, 0), text, font=font, stroke_width=stroke)
    canvas = Image.new("L", (right - left + 4, bottom - top + 4), 0)
    ImageDraw.Draw(canvas).text((2 - left, 2 - top), text, fill=255, font=font, stroke_width=stroke)
    if isinstance(font, ImageFont.ImageFont):  # bitmap font: fixed 11 px, scale it to the wanted size
        scale = max(1.0, size / 11.0)
        canvas = canvas.resize((max(1, round(canvas.width * scale)), max(1, round(canvas.height * scale))),
                               Image.Resampling.BILINEAR)
    return np.asarray(canvas, np.float32) / 255.0


def _stack(lines: list[np.ndarray], gap: int) -> np.ndarray:
    """Lines of text centred one under the other."""
    width = max(line.shape[1] for line in lines)
    height = sum(line.shape[0] for line in lines) + gap * (len(lines) - 1)
    out = np.zeros((height, width), np.float32)
    y = 0
    for line in lines:
        x = (width - line.shape[1]) // 2
        out[y:y + line.shape[0], x:x + line.shape[1]] = line
        y += line.shape[0] + gap
    return out


def _rotate(layer: np.ndarray, angle: float) -> np.ndarray:
    image = Image.fromarray((layer * 255).astype(np.uint8))
    return np.asarray(image.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True), np.float32) / 255.0


def _paste(alpha: np.ndarray, layer: np.ndarray, x: int, y: int) -> None:
    """Add ``layer`` into ``alpha`` at (x, y), clipped to the tile."""
    h, w = alpha.shape
    x0, y0, x1, y1 = max(0, x), max(0, y), min(w, x + layer.shape[1]), min(h, y + layer.shape[0])
    if x1 > x0 and y1 > y0:
        region = layer[y0 - y:y1 - y, x0 - x:x1 - x]
        alpha[y0:y1, x0:x1] = np.maximum(alpha[y0:y1, x0:x1], region)


def _site_layer(side: int, rng: np.random.Generator) -> np.ndarray:
    logo, url = SITE_MARKS[int(rng.integers(len(SITE_MARKS)))]
    size = int(rng.uniform(0.07, 0.16) * side)
    layer = _stack([_text_layer(logo, size, rng), _text_layer(url, max(6, int(size * 0.6)), rng)], size // 4)
    layer = _rotate(layer, float(rng.uniform(-35, 35)))
    alpha = np.zeros((side, side), np.float32)
    if rng.random() < 0.4:  # a repeated pattern across the image
        step_x, step_y = layer.shape[1] + side // 6, layer.shape[0] + side // 5
        for row, y in enumerate(range(-int(rng.integers(step_y)), side, step_y)):
            for x in range(-int(rng.integers(step_x)) - (row % 2) * step_x // 2, side, step_x):
                _paste(alpha, layer, x, y)
    else:
        _paste(alpha, layer, int(rng.integers(-layer.shape[1] // 4, max(1, side - 3 * layer.shape[1] // 4))),
               int(rng.integers(-layer.shape[0] // 4, max(1, side - 3 * layer.shape[0] // 4))))
    return alpha


def _corner_layer(side: int, rng: np.random.Generator) -> np.ndarray:
    layer = _text_layer(STUDIO_NAMES[int(rng.integers(len(STUDIO_NAMES)))], int(rng.uniform(0.045, 0.08) * side),
                        rng)
    margin = int(rng.uniform(0.01, 0.06) * side)
    x = margin if rng.random() < 0.5 else side - layer.shape[1] - margin
    y = margin if rng.random() < 0.5 else side - layer.shape[0] - margin
    alpha = np.zeros((side, side), np.float32)
    _paste(alpha, layer, x, y)
    return alpha


def _edge_layer(side: int, rng: np.random.Generator) -> np.ndarray:
    url = SITE_MARKS[int(rng.integers(len(SITE_MARKS)))][1]
    layer = _rotate(_text_layer(url, int(rng.uniform(0.045, 0.08) * side), rng), 90.0 if rng.random() < 0.5 else -90.0)
    margin = int(rng.uniform(0.01, 0.05) * side)
    x = margin if rng.random() < 0.5 else side - layer.shape[1] - margin
    alpha = np.zeros((side, side), np.float32)
    _paste(alpha, layer, x, int(rng.integers(0, max(1, side - layer.shape[0]))))
    return alpha


_LAYERS = {"site": _site_layer, "corner": _corner_layer, "edge": _edge_layer}


def add_watermark(rgb: np.ndarray, seed: int, kind: str | None = None) -> tuple[np.ndarray, dict]:
    """The tile with one generated watermark, and what was drawn (``kind``, ``tone``, ``opacity``).

    ``kind``: one of :data:`KINDS` (default: chosen by the seed). Pale marks are white, dark ones near-black;
    a site mark is semi-transparent (opacity 0.25-0.6), a corner or edge mark nearly opaque (0.6-0.95)."""
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected a uint8 RGB tile, got {rgb.dtype} {rgb.shape}")
    rng = np.random.default_rng(seed)
    kind = kind or KINDS[int(rng.choice(len(KINDS), p=(0.5, 0.25, 0.25)))]
    if kind not in _LAYERS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    side = min(rgb.shape[:2])
    coverage = _LAYERS[kind](side, rng)
    opacity = float(rng.uniform(0.25, 0.6) if kind == "site" else rng.uniform(0.6, 0.95))
    tone = "pale" if rng.random() < 0.6 else "dark"
    colour = np.array((255, 255, 255) if tone == "pale" else (30, 30, 35), np.float32)
    alpha = np.zeros(rgb.shape[:2], np.float32)
    alpha[:side, :side] = coverage * opacity
    out = rgb.astype(np.float32) * (1 - alpha[..., None]) + colour * alpha[..., None]
    return np.clip(out + 0.5, 0, 255).astype(np.uint8), {"kind": kind, "tone": tone, "opacity": round(opacity, 3)}
