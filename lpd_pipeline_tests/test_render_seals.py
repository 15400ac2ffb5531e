"""Seals kept: a red seal on an ink painting stays red in the colorized output (RenderSettings.keep_seals)."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

from lpd_pipeline import demo, imaging
from lpd_pipeline.rendering import RenderSettings, render_file
from lpd_pipeline.rendering.seals import KeptPixels, seal_mask
from lpd_pipeline_tests.test_render import painting, tiny_model


def ink_painting_with_seal(seed: int = 0) -> tuple[np.ndarray, demo.Box]:
    """A gray ink painting (as RGB) with a vermilion seal stamped on it, an ochre patch (not a seal colour) and a
    red speck (too small for a seal)."""
    gray = painting(96, 120, seed)
    rgb = np.repeat(gray[..., None], 3, axis=2)
    rgb[10:30, 10:40] = (190, 150, 80)  # ochre wash: hue ~70 deg, outside the seal colour
    rgb[50:53, 20:22] = (200, 40, 30)  # a red speck: not a seal
    stamped, box = demo.add_seal(rgb, np.random.default_rng(seed), size=24, position=(80, 60))
    return stamped, box


def test_the_seal_is_kept_and_nothing_else(tmp_path):
    rgb, (x0, y0, x1, y1) = ink_painting_with_seal()
    mask = seal_mask(rgb)
    assert mask[y0:y1, x0:x1].mean() > 0.5 and mask.sum() < 1.3 * (x1 - x0) * (y1 - y0)  # the stamp, not more
    assert not mask[:, :70].any()  # the ochre patch, the red speck and the ink are not
    source = imaging.save_image(tmp_path / "ink.png", rgb)

    kept_run = render_file(source, tmp_path / "kept.png", tiny_model(), RenderSettings())
    plain_run = render_file(source, tmp_path / "plain.png", tiny_model(), RenderSettings(keep_seals=False))
    kept, plain = (imaging.decode_image(run.output_path) for run in (kept_run, plain_run))
    assert np.array_equal(kept[mask], rgb[mask])  # the seal exactly as in the scan
    assert not np.array_equal(plain[mask], rgb[mask])  # the model alone repaints it
    assert np.array_equal(kept[~mask], plain[~mask])  # every other pixel is the model's
    with Image.open(tmp_path / "kept.png") as image:
        assert json.loads(image.text["lpd:settings"])["keep_seals"] is True  # the metadata says how it was made


def test_block_by_block_equals_the_whole():
    rgb, _ = ink_painting_with_seal(1)
    found = KeptPixels.find(rgb, block_rows=7)  # block edges cut through the seal
    whole = np.flatnonzero(seal_mask(rgb))
    assert np.array_equal(found.index, whole)
    assert np.array_equal(found.rgb, rgb.reshape(-1, 3)[whole])
    rows = np.zeros((10, rgb.shape[1], 3), np.uint8)
    out = found.apply(60, rows)
    assert np.array_equal(out[seal_mask(rgb)[60:70]], rgb[60:70][seal_mask(rgb)[60:70]])
