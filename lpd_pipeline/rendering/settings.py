"""RenderSettings: how a whole painting is colorized (tiling, blending, luminance, scale, consistency, limits).

The rule: every choice that changes the output pixels is a field here, so the settings written into each
output PNG's text chunks describe exactly how it was made. Defaults are the product's: 50 % overlapping tiles at
the generator's own training tile size, a Hann window, the input's full-resolution lightness kept, and a
low-resolution anchor pass for colour consistency. A :class:`lpd_pipeline.config.Settings` model: the colorize CLI's
flags and the ``colorized_masterpieces`` run config are generated from these fields.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from lpd_pipeline.config import Settings
from lpd_pipeline.imaging import DEFAULT_MAX_PIXELS


class RenderSettings(Settings):
    """Settings of one whole-painting colorization (strict, frozen, unknown fields refused; ConfigError)."""

    mode: Literal["blended", "naive"] = Field(
        "blended",
        description="'blended': overlapping tiles averaged with a smooth window (seam-free); 'naive': "
                    "non-overlapping tiles pasted side by side (for comparison: shows the seams)")
    tile: int | None = Field(
        None, ge=32,
        description="tile size in pixels fed to the generator; None: the generator's training tile size")
    overlap: float = Field(
        0.5, ge=0.0, lt=1.0,
        description="fraction of a tile shared with its neighbour in each axis (blended mode; stride = "
                    "tile x (1 - overlap)); naive mode always uses 0")
    window: Literal["hann", "gaussian"] = Field(
        "hann", description="blending window over a tile (separable); both fall to the floor at the tile edge")
    window_floor: float = Field(
        0.01, gt=0.0, le=1.0,
        description="smallest window weight (at a tile's edge), so no pixel ever has zero total weight")
    keep_luminance: bool = Field(
        True,
        description="output lightness (CIE L*) is the input's at full resolution; only chroma (a*b*) comes "
                    "from the model, so ink lines stay as sharp as the original")
    keep_seals: bool = Field(
        True,
        description="pixels of the input whose colour is seal paste (vermilion, the seal filter's colour test) "
                    "keep the input's colour: a red seal stays red; false: every pixel is the model's")
    scale: float = Field(
        1.0, gt=0.0, le=1.0,
        description="colorize at this fraction of the painting's resolution, chroma upsampled to full size "
                    "(lightness always full resolution when keep_luminance)")
    consistency: Literal["anchor", "none"] = Field(
        "anchor",
        description="'anchor': a low-resolution pass over the whole painting sets each tile's mean a*b*, so "
                    "neighbouring tiles of one wash agree in hue; 'none': tiles keep their own colour")
    anchor_size: int = Field(
        0, ge=0,
        description="short side in pixels of the anchor pass's downscaled painting; 0: the tile size")
    palette: str = Field(
        "", description="palette control: a preset of the generator (e.g. blue-green, ochre) or a painting file "
                        "whose colours every tile follows; only for generators trained with palette: true")
    temperature: float | None = Field(
        None, gt=0.0, le=1.0,
        description="a*b*-class generators (labcls): the annealed-mean decode temperature, lower = nearer the most "
                    "likely colour, 1 = the mean (bench/RESULTS.md: validation tiles trade ΔE against "
                    "colourfulness with it); None: the generator's own. Other generators ignore it in the "
                    "pipeline; the colorize CLI refuses it for them")
    batch_size: int = Field(8, ge=1, description="tiles per forward pass")
    device: str = Field("auto", description="'auto' (cuda when available), 'cpu', 'cuda' or 'cuda:N'")
    max_pixels: int = Field(
        DEFAULT_MAX_PIXELS, ge=1,
        description="largest input (width x height) decoded; raise it only for trusted input")

    def stride(self, tile: int) -> int:
        """The tile step in pixels for a tile of ``tile`` pixels (``tile`` in naive mode)."""
        if self.mode == "naive":
            return tile
        return max(1, min(tile, int(round(tile * (1.0 - self.overlap)))))

    def anchor_short_side(self, tile: int) -> int:
        return self.anchor_size or tile

    def describe(self) -> dict:
        """The settings as written into an output's metadata (device and limits say nothing about pixels)."""
        return self.model_dump(exclude={"device", "max_pixels", "batch_size"})
