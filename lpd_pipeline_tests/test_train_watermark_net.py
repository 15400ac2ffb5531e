"""bench/train_watermark_net.py: hard-negative mining and the cross-validation table (no real paintings)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
torch = pytest.importorskip("torch")
import train_watermark_net as training  # noqa: E402

from lpd_pipeline.imaging import save_image  # noqa: E402


class _Brightness(torch.nn.Module):
    """A stand-in network: the logit is the tile's mean brightness, so the brightest tiles look most 'marked'."""

    def forward(self, x):
        return (x.mean(dim=(1, 2, 3)) - 0.5) * 20


def test_mining_takes_the_tiles_the_network_rates_highest(tmp_path):
    rng = np.random.default_rng(0)
    for name, level in (("dark.png", 40), ("bright.png", 220)):
        image = np.full((512, 256, 3), level, np.uint8)
        image[256:] = level // 2  # the lower grid tile of each painting is darker
        save_image(tmp_path / name, np.clip(image + rng.integers(0, 3, image.shape), 0, 255).astype(np.uint8))
    tiles, where = training.mine_hard_negatives(_Brightness(), tmp_path, ["dark.png", "bright.png"], 2)
    assert [(p, x, y) for p, x, y, _ in where] == [("bright.png", 0, 0), ("bright.png", 0, 256)]
    assert where[0][3] > where[1][3] and len(tiles) == 2 and tiles[0].shape == (256, 256, 3)
    assert tiles[0].mean() > tiles[1].mean()


def test_cv_table_counts_each_kind_against_its_split_threshold():
    def score(labels, kind, p):
        return {"painting": "a", "x": 0, "y": 0, "size": 256, "labels": labels, "kind": kind, "p": p}

    result = {"false_positive": [0.01, 0.05], "groups": [
        {"groups": [0], "thresholds": [0.9, 0.5],
         "scores": [score(["keep"], "real", 0.6), score(["keep"], "site", 0.95), score(["keep"], "corner", 0.7)]},
        {"groups": [1], "thresholds": [0.8, 0.3],
         "scores": [score(["seal"], "real", 0.85), score(["watermark"], "real", 0.4)]}]}
    rows = training.cv_table(result).splitlines()[2:]
    assert rows[0] == "| 0.01 | 0/1 | 1/1 | 0/1 | 0.50 (1/2) | 1/1 | 0/1 | – |"
    assert rows[1] == "| 0.05 | 1/1 | 1/1 | 1/1 | 1.00 (2/2) | 1/1 | 1/1 | – |"


def test_threshold_calls_the_given_share_of_clean_tiles():
    clean = np.linspace(0, 1, 101)
    assert (clean > training.threshold_for(clean, 0.02)).mean() == pytest.approx(0.02, abs=0.011)
