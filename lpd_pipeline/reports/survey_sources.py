"""Where the survey's images come from: real coloured test tiles, and generated tiles of *other* test paintings.

The rule: the test_color paintings are shuffled with the seed and split into two disjoint pools, a quarter (at
least one) whose gray tiles are colorized by each model variant, and the rest whose real colour tiles are shown;
so no painting appears both real and generated anywhere in the survey. Tiles are taken round-robin across the
paintings of a pool (variety first). The generated tiles come from the one inference path
(:func:`lpd_pipeline.models.inference.colorize_tiles`), with the checkpoint each variant was rendered with,
loaded as rendering loads it (:func:`lpd_pipeline.rendering.model.load_render_model`: lpd exports and
checkpoints, or a reference pix2pix ``latest_net_G.pth``; the shared inference mode).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from lpd_pipeline import imaging
from lpd_pipeline.models.inference import colorize_tiles
from lpd_pipeline.rendering.model import load_render_model
from lpd_pipeline.reports.survey import CHOICES

TEST_SPLIT = "test_color"


def _round_robin(tiles: pd.DataFrame, count: int, rng: np.random.Generator) -> pd.DataFrame:
    per_painting = [rows.iloc[rng.permutation(len(rows))] for _, rows in tiles.groupby("painting_id", sort=True)]
    order = rng.permutation(len(per_painting))
    picked, depth = [], 0
    while len(picked) < count and any(depth < len(per_painting[i]) for i in order):
        picked += [per_painting[i].iloc[depth] for i in order if depth < len(per_painting[i])]
        depth += 1
    return pd.DataFrame(picked[:count])


def select_survey_tiles(tiles: pd.DataFrame, questions: int, variants: list[str], *, seed: int = 0
                        ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(real, gray)`` rows of ``tiles`` (the tiles table): ``CHOICES - 1`` real colour tiles per question from
    one pool of test paintings, and one gray tile per question from the other, each with the ``variant`` that
    will colorize it. A clear error when the test set is too small."""
    test = tiles[tiles["split"] == TEST_SPLIT]
    paintings = sorted(test["painting_id"].astype(str).unique())
    if len(paintings) < 2:
        raise ValueError(f"the survey needs test_color tiles of at least 2 paintings (one pool real, one "
                         f"generated); the tiles table has {len(paintings)}")
    rng = np.random.default_rng(seed)
    paintings = [paintings[i] for i in rng.permutation(len(paintings))]
    n_fake = max(1, len(paintings) // 4)
    fake_pool, real_pool = set(paintings[:n_fake]), set(paintings[n_fake:])
    need_real = questions * (CHOICES - 1)
    real = _round_robin(test[test["painting_id"].astype(str).isin(real_pool)], need_real, rng)
    gray = _round_robin(test[test["painting_id"].astype(str).isin(fake_pool)], questions, rng)
    if len(real) < need_real or len(gray) < questions:
        raise ValueError(f"{questions} questions need {need_real} real test tiles and {questions} gray ones from "
                         f"other paintings; the {len(paintings)} test_color paintings give {len(real)} and "
                         f"{len(gray)}: ask fewer questions or add test paintings")
    gray = gray.assign(variant=[variants[i % len(variants)] for i in range(len(gray))])
    return real.reset_index(drop=True), gray.reset_index(drop=True)


def colorize_survey_tiles(gray: pd.DataFrame, checkpoints: Mapping[str, str | os.PathLike],
                          out_dir: str | os.PathLike, *, base_dir: str | os.PathLike | None = None,
                          device: str = "cpu", batch_size: int = 8) -> pd.DataFrame:
    """Colorize each row's ``gray_path`` with the checkpoint of its ``variant``; returns ``path, painting_id,
    variant`` of the PNGs written into ``out_dir``."""
    out_dir = Path(out_dir)
    base = Path(base_dir) if base_dir is not None else None
    rows = []
    for variant, group in gray.groupby("variant", sort=True):
        if variant not in checkpoints:
            raise ValueError(f"no checkpoint given for model variant {variant!r}")
        model = load_render_model(checkpoints[variant], device)
        for start in range(0, len(group), batch_size):
            batch = group.iloc[start:start + batch_size]
            images = []
            for value in batch["gray_path"]:
                path = Path(str(value))
                path = path if path.is_absolute() or base is None else base / path
                images.append(imaging.luma_bt601(imaging.decode_image(path)))
            coloured = colorize_tiles(model.net, model.color_space, torch.from_numpy(np.stack(images)))
            for (_, row), rgb in zip(batch.iterrows(), coloured.numpy()):
                target = out_dir / f"{variant}_{len(rows):04d}.png"
                imaging.save_image(target, rgb)
                rows.append({"path": target, "painting_id": str(row["painting_id"]), "variant": variant})
    return pd.DataFrame(rows, columns=["path", "painting_id", "variant"])
