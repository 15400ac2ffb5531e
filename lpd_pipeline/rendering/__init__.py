"""Whole-painting colorization: sliding-window inference, blending, colour consistency, luminance, output files.

Modules (one idea each): ``settings`` (RenderSettings), ``grid`` (tile grid, padding, windows), ``sliding``
(strip-by-strip blended inference), ``consistency`` (spread measure, low-resolution anchor), ``compose``
(lightness + chroma -> RGB), ``resample`` (scale down / chroma up), ``seams`` (seam measure), ``png_stream``
(streamed PNG with text chunks), ``model`` (which checkpoint, loading, tile -> chroma), ``foreign`` (reference
pix2pix generators), ``render`` (the whole painting, file to file). No Dagster here.
"""

from lpd_pipeline.rendering.model import (
    CheckpointChoice,
    RenderModel,
    load_render_model,
    read_best_checkpoint,
    resolve_checkpoint,
)
from lpd_pipeline.rendering.render import (
    RenderInputError,
    RenderPlan,
    RenderReport,
    colorize_gray,
    plan_render,
    read_gray,
    render_blocks,
    render_file,
)
from lpd_pipeline.rendering.settings import RenderSettings

__all__ = [
    "CheckpointChoice", "RenderInputError", "RenderModel", "RenderPlan", "RenderReport", "RenderSettings",
    "colorize_gray", "load_render_model", "plan_render", "read_best_checkpoint", "read_gray", "render_blocks",
    "render_file", "resolve_checkpoint",
]
