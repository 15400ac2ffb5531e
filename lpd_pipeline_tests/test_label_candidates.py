"""bench/label_candidates.py: how candidates are picked and pooled (no real paintings needed)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import label_candidates as candidates  # noqa: E402

from lpd_pipeline.curation import tile_model  # noqa: E402


def _rows():
    rows = []
    for painting in range(4):
        for k in range(3):
            rows.append({"folder": "web/ink" if painting % 2 else "ink", "file": f"p{painting}.jpg", "x": 256 * k,
                         "y": 0, "size": 256, "p_watermark": painting / 10 + k / 100, "p_seal": 0.1 * (k + 1)})
    return rows


def test_pick_takes_at_most_two_tiles_a_painting_and_never_one_twice():
    rows, taken = _rows(), set()
    first = candidates.pick(rows, np.argsort([-r["p_watermark"] for r in rows]), 5, taken)
    assert [(r["file"], r["x"]) for r in first] == [("p3.jpg", 512), ("p3.jpg", 256), ("p2.jpg", 512),
                                                    ("p2.jpg", 256), ("p1.jpg", 512)]
    again = candidates.pick(rows, np.arange(len(rows)), 100, taken)
    assert not {(r["file"], r["x"]) for r in again} & {(r["file"], r["x"]) for r in first}
    assert all(sum(r["file"] == f for r in again) <= 2 for f in {r["file"] for r in again})


def test_pools_look_near_each_threshold_and_at_random_web_tiles():
    seal = tile_model.ClassModel(0.0, (), threshold=0.2)
    model = tile_model.TileModel(256, {"seal": seal})
    pools = candidates.choose(_rows(), model, per_class=2, seed=0)
    assert set(pools) == {"watermark_cnn", "learned_score", "web_random"}
    assert all(r["near"] == "seal" and r["p_seal"] == 0.2 for r in pools["learned_score"])
    assert all(r["folder"].startswith("web/") for r in pools["web_random"])
    chosen = [(r["file"], r["x"]) for pool in pools.values() for r in pool]
    assert len(chosen) == len(set(chosen))


def test_text_pool_takes_the_highest_text_scores_and_a_zero_count_takes_nothing():
    rows = _rows()
    for i, row in enumerate(rows):
        row["p_text"] = i / 100
    model = tile_model.TileModel(256, {})
    pools = candidates.choose(rows, model, per_class=0, seed=0, text_count=3)
    assert pools["watermark_cnn"] == [] and pools["web_random"] == []
    assert [(r["file"], r["x"]) for r in pools["text_net"]] == [("p3.jpg", 512), ("p3.jpg", 256), ("p2.jpg", 512)]
    assert "text_net" not in candidates.choose(_rows(), model, per_class=1, seed=0, text_count=3)


def test_top_pool_takes_the_highest_class_probabilities_first():
    rows = _rows()
    for i, row in enumerate(rows):
        row["p_seal"] = i / 100
    pools = candidates.choose(rows, tile_model.TileModel(256, {}), per_class=0, seed=0, top={"seal": 3})
    assert [(r["file"], r["x"]) for r in pools["seal_top"]] == [("p3.jpg", 512), ("p3.jpg", 256), ("p2.jpg", 512)]
    assert pools["watermark_cnn"] == []


def test_parse_top_refuses_unknown_classes_and_counts():
    assert candidates.parse_top(["odd_colour=36", "blank=2"]) == {"odd_colour": 36, "blank": 2}
    for bad in ("watermark=3", "colour=3", "seal=x", "seal"):
        try:
            candidates.parse_top([bad])
        except SystemExit as error:
            assert bad in str(error)
        else:
            raise AssertionError(f"{bad} accepted")


def test_near_restricts_the_learned_score_pool_to_the_named_classes():
    rows = _rows()
    for row in rows:
        row["p_blank"] = 0.5
    model = tile_model.TileModel(256, {"seal": tile_model.ClassModel(0.0, (), threshold=0.2),
                                       "blank": tile_model.ClassModel(0.0, (), threshold=0.5)})
    pools = candidates.choose(rows, model, per_class=2, seed=0, near=["blank"])
    assert {r["near"] for r in pools["learned_score"]} == {"blank"}
    assert {r["near"] for r in candidates.choose(rows, model, per_class=2, seed=0)["learned_score"]} == {"seal", "blank"}
