"""Whole-painting colorization: sliding-window inference, blending, colour consistency, luminance, output files.

Modules (one idea each): ``settings`` (RenderSettings), ``grid`` (tile grid, padding, windows), ``sliding``
(strip-by-strip blended inference), ``consistency`` (spread measure, low-resolution anchor), ``compose``
(lightness + chroma -> RGB), ``resample`` (scale down / chroma up), ``seams`` (seam measure), ``png_stream``
(streamed PNG with text chunks), ``model`` (which checkpoint, loading, tile -> chroma), ``foreign`` (reference
pix2pix generators), ``render`` (the whole painting, file to file). No Dagster here.
"""

import importlib

# Names re-exported lazily (PEP 562), so that importing the settings (e.g. by the Dagster definitions) does not
# import torch; each name lives in the module given.
_EXPORTS = {
    "CheckpointChoice": "model", "RenderModel": "model", "load_render_model": "model",
    "read_best_checkpoint": "model", "resolve_checkpoint": "model",
    "RenderInputError": "render", "RenderPlan": "render", "RenderReport": "render", "colorize_gray": "render",
    "plan_render": "render", "read_gray": "render", "render_blocks": "render", "render_file": "render",
    "RenderSettings": "settings",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'lpd_pipeline.rendering' has no attribute {name!r}")
    return getattr(importlib.import_module(f"lpd_pipeline.rendering.{_EXPORTS[name]}"), name)


def __dir__():
    return sorted(list(globals()) + __all__)
