"""The dataset invariants behind the asset checks must catch what they claim to catch."""

import numpy as np
import pandas as pd

from lpd_pipeline import imaging
from lpd_pipeline.curation import validation
from lpd_pipeline.curation.tiling import tile_origins


def _tile_row(tile_id, painting_id, split, phash, size=32, color_path="", gray_path=""):
    return {"tile_id": tile_id, "painting_id": painting_id, "split": split, "phash": phash, "size": size,
            "color_path": color_path, "gray_path": gray_path}


def _paintings(rows):
    return pd.DataFrame(rows, columns=["painting_id", "split", "work_id", "dup_cluster", "is_representative"])


def test_split_leaks_none_for_a_clean_split():
    tiles = pd.DataFrame([_tile_row("a1", "a", "train", 0), _tile_row("b1", "b", "test_color", -1)])
    paintings = _paintings([("a", "train", "a", 0, True), ("b", "test_color", "b", 1, True)])
    assert validation.split_leaks(paintings, tiles, tile_max_distance=6) == []


def test_split_leaks_finds_painting_work_cluster_and_tile_leaks():
    tiles = pd.DataFrame([
        _tile_row("a1", "a", "train", 0b1111), _tile_row("a2", "a", "test_color", 1 << 40),
        _tile_row("b1", "b", "test_ink", 0b0111),  # 1 bit from a1: a near-duplicate across splits
    ])
    paintings = _paintings([("a", "train", "w", 0, True), ("b", "test_ink", "w", 0, True),
                            ("c", "train", "c", 0, False)])
    problems = "\n".join(validation.split_leaks(paintings, tiles, tile_max_distance=2))
    assert "painting a has tiles in 2 splits" in problems
    assert "work_id w spans 2 splits" in problems
    assert "dup_cluster 0 spans 2 splits" in problems
    assert "near-duplicate copy c was given a split" in problems
    assert "near-duplicate tiles a1 (train) and b1 (test_ink)" in problems


def test_pair_problems_catch_wrong_luma_size_missing_and_escaping_paths(tmp_path):
    rng = np.random.default_rng(0)
    color = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    imaging.save_image(tmp_path / "ok_color.png", color)
    imaging.save_image(tmp_path / "ok_gray.png", imaging.luma_bt601(color))
    wrong_gray = imaging.luma_bt601(color)
    wrong_gray[0, 0] ^= 1
    imaging.save_image(tmp_path / "bad_gray.png", wrong_gray)
    imaging.save_image(tmp_path / "small_color.png", color[:16, :16])
    tiles = pd.DataFrame([
        _tile_row("ok", "p", "train", 0, color_path="ok_color.png", gray_path="ok_gray.png"),
        _tile_row("luma", "p", "train", 0, color_path="ok_color.png", gray_path="bad_gray.png"),
        _tile_row("size", "p", "train", 0, color_path="small_color.png", gray_path="ok_gray.png"),
        _tile_row("missing", "p", "train", 0, color_path="nope.png", gray_path="ok_gray.png"),
        _tile_row("escape", "p", "train", 0, color_path="../outside.png", gray_path="ok_gray.png"),
    ])
    problems = validation.pair_problems(tiles, tmp_path)
    flagged = {p.split(":")[0] for p in problems}
    assert flagged == {"luma", "size", "missing", "escape"}
    assert any("differs from the colour tile's luma" in p for p in problems)
    assert any("escapes the storage root" in p for p in problems)


def test_tile_origins_cover_edges_without_slivers():
    assert tile_origins(100, 100, 256, 256) == []
    assert tile_origins(512, 512, 256, 256) == [(0, 0), (256, 0), (0, 256), (256, 256)]
    # 600 px: the grid misses 88 px (> a quarter tile), so a last tile flush with the edge is added.
    assert [x for x, y in tile_origins(256, 600, 256, 256)] == [0, 256, 344]
    # 540 px: 28 px left over is a sliver: no extra, nearly duplicate tile.
    assert [x for x, y in tile_origins(256, 540, 256, 256)] == [0, 256]
    assert len(tile_origins(512, 512, 256, 128)) == 9


def test_assemble_dataset_groups_works_and_never_leaks():
    """Paintings sharing a near-duplicate tile form one work; an ink painting tied to training data is dropped."""
    from lpd_pipeline.curation import dataset as curation

    rng = np.random.default_rng(1)
    n_colored = 30
    rows, tiles = [], []
    for i in range(n_colored + 2):
        pid = f"p{i:02d}"
        kind = "ink" if i >= n_colored else "colored"
        rows.append({"painting_id": pid, "kind": kind, "is_representative": True, "path": f"/x/{pid}.png"})
        for t in range(3):
            tiles.append({"tile_id": f"{pid}_{t}", "painting_id": pid, "x": 0, "y": 0, "size": 32,
                          "color_path": "", "gray_path": "", "rejected_by": "",
                          "phash": int(rng.integers(-2**62, 2**62)),
                          **{c: 0.0 for c in curation.SCORE_COLUMNS}})
    tiles = pd.DataFrame(tiles)
    # p01 repeats a tile of p00 (overlapping crops of one scroll); ink p31 repeats a tile of p00 too.
    tiles.loc[tiles["tile_id"] == "p01_0", "phash"] = tiles.loc[tiles["tile_id"] == "p00_0", "phash"].iat[0]
    tiles.loc[tiles["tile_id"] == "p31_0", "phash"] = tiles.loc[tiles["tile_id"] == "p00_1", "phash"].iat[0]
    paintings = pd.DataFrame(rows)
    config = curation.CurationConfig(test_color_fraction=0.3, tile_max_distance=2)
    out_paintings, out_tiles, rejections = curation.assemble_dataset(paintings, tiles, config)

    split = dict(zip(out_paintings["painting_id"], out_paintings["split"]))
    work = dict(zip(out_paintings["painting_id"], out_paintings["work_id"]))
    assert work["p00"] == work["p01"] == work["p31"]
    assert split["p00"] == split["p01"]
    assert split["p30"] == "test_ink"
    assert {"train", "test_color"} <= set(out_tiles["split"])
    assert "p01_0" not in set(out_tiles["tile_id"])  # the repeated tile is dropped
    if split["p00"] == "train":
        assert split["p31"] == "" and (out_tiles["painting_id"] != "p31").all()
        assert "ink_work_shares_training_painting" in set(rejections["reason"])
    else:
        assert split["p31"] == "test_ink"
    assert validation.split_leaks(out_paintings, out_tiles, tile_max_distance=2) == []
    # Deterministic and stable: the same call gives the same split.
    again = curation.assemble_dataset(paintings, tiles, config)[0]
    assert dict(zip(again["painting_id"], again["split"])) == split
