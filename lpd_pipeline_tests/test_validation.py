"""The dataset invariants behind the asset checks must catch what they claim to catch."""

import numpy as np
import pandas as pd

from lpd_pipeline import imaging
from lpd_pipeline.curation import validation
from lpd_pipeline.curation.tiling import tile_origins


def _tile_row(tile_id, painting_id, split, phash, size=32, color_path="", gray_path="", x=0, y=0):
    return {"tile_id": tile_id, "painting_id": painting_id, "split": split, "phash": phash, "size": size,
            "color_path": color_path, "gray_path": gray_path, "x": x, "y": y}


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


def test_pair_problems_catch_swapped_pairs_coloured_gray_files_and_repeated_tiles(tmp_path):
    rng = np.random.default_rng(1)
    painting = rng.integers(0, 256, (32, 64, 3), dtype=np.uint8)
    imaging.save_image(tmp_path / "painting.png", painting)
    rows = []
    for x in (0, 32):
        crop = painting[:, x:x + 32]
        imaging.save_image(tmp_path / f"{x}_color.png", crop)
        imaging.save_image(tmp_path / f"{x}_gray.png", imaging.luma_bt601(crop))
        rows.append(_tile_row(f"t{x}", "p", "train", 0, x=x, color_path=f"{x}_color.png", gray_path=f"{x}_gray.png"))
    tiles = pd.DataFrame(rows)
    paths = {"p": str(tmp_path / "painting.png")}
    assert validation.pair_problems(tiles, tmp_path, painting_paths=paths) == []

    swapped = tiles.copy()
    swapped.loc[0, ["color_path", "gray_path"]] = ["32_color.png", "32_gray.png"]
    assert [p.split(":")[0] for p in validation.pair_problems(swapped, tmp_path, painting_paths=paths)] == ["t0"]

    luma = imaging.luma_bt601(painting[:, :32])
    fake_gray = np.stack([luma, rng.integers(0, 256, luma.shape, dtype=np.uint8), luma], axis=-1)
    imaging.save_image(tmp_path / "0_gray.png", fake_gray)  # red channel right, the others noise
    problems = validation.pair_problems(tiles, tmp_path, painting_paths=paths)
    assert len(problems) == 1 and "has colour" in problems[0]

    repeated = pd.concat([tiles, tiles.iloc[:1]], ignore_index=True)
    assert "tile t0 is listed more than once" in validation.split_leaks(
        pd.DataFrame({"painting_id": ["p"], "split": ["train"]}), repeated, tile_max_distance=0)


def test_tile_origins_cover_edges_without_slivers():
    assert tile_origins(100, 100, 256, 256) == []
    assert tile_origins(512, 512, 256, 256) == [(0, 0), (256, 0), (0, 256), (256, 256)]
    # 600 px: the grid misses 88 px (> a quarter tile), so a last tile flush with the edge is added.
    assert [x for x, y in tile_origins(256, 600, 256, 256)] == [0, 256, 344]
    # 540 px: 28 px left over is a sliver: no extra, nearly duplicate tile.
    assert [x for x, y in tile_origins(256, 540, 256, 256)] == [0, 256]
    assert len(tile_origins(512, 512, 256, 128)) == 9


def _synthetic(n_colored: int, n_ink: int = 0, seed: int = 1, prefix: str = "p"):
    """Representative paintings with three random-hash kept tiles each (no two tiles near each other)."""
    from lpd_pipeline.curation import dataset as curation

    rng = np.random.default_rng(seed)
    rows, tiles = [], []
    for i in range(n_colored + n_ink):
        pid = f"{prefix}{i:02d}"
        kind = "ink" if i >= n_colored else "colored"
        rows.append({"painting_id": pid, "kind": kind, "is_representative": True, "path": f"/x/{pid}.png"})
        for t in range(3):
            tiles.append({"tile_id": f"{pid}_{t}", "painting_id": pid, "x": 0, "y": 0, "size": 32,
                          "color_path": "", "gray_path": "", "rejected_by": "",
                          "phash": int(rng.integers(-2**62, 2**62)),
                          **{c: 0.0 for c in curation.SCORE_COLUMNS}})
    return pd.DataFrame(rows), pd.DataFrame(tiles)


def _copy_tile(tiles: pd.DataFrame, to_tile: str, from_tile: str, from_tiles: pd.DataFrame | None = None) -> None:
    """Give ``to_tile`` the hash of ``from_tile`` (in ``from_tiles``, default the same table): a repeated tile."""
    source = tiles if from_tiles is None else from_tiles
    tiles.loc[tiles["tile_id"] == to_tile, "phash"] = source.loc[source["tile_id"] == from_tile, "phash"].iat[0]


def _splits(paintings, tiles, config) -> dict[str, str]:
    from lpd_pipeline.curation import dataset as curation

    out = curation.assemble_dataset(paintings, tiles, config)[0]
    return dict(zip(out["painting_id"], out["split"]))


def test_assemble_dataset_groups_works_and_never_leaks():
    """Paintings sharing a near-duplicate tile form one work; an ink painting tied to a coloured work is left
    out whichever split that work is in."""
    from lpd_pipeline.curation import dataset as curation

    paintings, tiles = _synthetic(30, 2)
    # p01 repeats a tile of p00 (overlapping crops of one scroll); ink p31 repeats a tile of p00 too.
    _copy_tile(tiles, "p01_0", "p00_0")
    _copy_tile(tiles, "p31_0", "p00_1")
    for seed in range(12):  # p00's work lands in train for some seeds and in test_color for others
        config = curation.CurationConfig(test_color_fraction=0.3, tile_max_distance=2, seed=seed)
        out_paintings, out_tiles, rejections = curation.assemble_dataset(paintings, tiles, config)
        split = dict(zip(out_paintings["painting_id"], out_paintings["split"]))
        work = dict(zip(out_paintings["painting_id"], out_paintings["work_id"]))
        assert work["p00"] == work["p01"] == work["p31"]
        assert split["p00"] == split["p01"] in ("train", "test_color")
        assert split["p30"] == "test_ink"
        assert split["p31"] == "" and (out_tiles["painting_id"] != "p31").all()
        assert "ink_painting_in_coloured_work" in set(rejections["reason"])
        assert {"train", "test_color"} <= set(out_tiles["split"])
        assert "p01_0" not in set(out_tiles["tile_id"])  # the repeated tile is dropped
        assert validation.split_leaks(out_paintings, out_tiles, tile_max_distance=2) == []
        assert _splits(paintings, tiles, config) == split  # deterministic


def test_coloured_tile_wins_over_the_ink_copy_that_repeats_it():
    from lpd_pipeline.curation import dataset as curation

    paintings, tiles = _synthetic(4, 1)
    paintings.loc[paintings["painting_id"] == "p04", "painting_id"] = "a_ink"  # sorts before every p.. tile
    tiles.loc[tiles["painting_id"] == "p04", "tile_id"] = ["a_ink_0", "a_ink_1", "a_ink_2"]
    tiles.loc[tiles["painting_id"] == "p04", "painting_id"] = "a_ink"
    _copy_tile(tiles, "a_ink_0", "p02_0")
    config = curation.CurationConfig(test_color_fraction=0.3, tile_max_distance=2)
    _, out_tiles, _ = curation.assemble_dataset(paintings, tiles, config)
    assert "p02_0" in set(out_tiles["tile_id"]) and "a_ink_0" not in set(out_tiles["tile_id"])


def test_adding_paintings_never_moves_a_test_painting_into_training():
    from lpd_pipeline.curation import dataset as curation

    config = curation.CurationConfig(test_color_fraction=0.2, tile_max_distance=2)
    paintings, tiles = _synthetic(40)
    before = _splits(paintings, tiles, config)
    assert 0 < sum(v == "test_color" for v in before.values()) < 40

    # Unrelated coloured and ink paintings: nothing existing moves.
    new_paintings, new_tiles = _synthetic(20, 5, seed=2, prefix="n")
    grown = _splits(pd.concat([paintings, new_paintings]), pd.concat([tiles, new_tiles]), config)
    assert {pid: grown[pid] for pid in before} == before

    # New paintings linked to existing works (crops sharing a tile): test works stay test, ink never moves a
    # work, and a coloured newcomer can move a work only from train to test.
    linked_tiles = new_tiles.copy()
    for i in range(25):
        _copy_tile(linked_tiles, f"n{i:02d}_0", f"p{i:02d}_0", from_tiles=tiles)
    linked = _splits(pd.concat([paintings, new_paintings]), pd.concat([tiles, linked_tiles]), config)
    joined = [before[f"p{i:02d}"] for i in range(25)]
    assert "test_color" in joined[:20] and "train" in joined[20:], joined  # the cases below are exercised
    for pid, split in before.items():
        i = int(pid[1:])
        if split == "test_color":
            assert linked[pid] == "test_color", pid
        if 20 <= i < 25:  # joined by an ink painting only
            assert linked[pid] == split, pid
    assert all(linked[f"n{i:02d}"] == "" for i in range(20, 25))  # ink copies of coloured works are left out



def test_tiny_sets_get_both_a_train_and_a_test_work():
    from lpd_pipeline.curation import dataset as curation

    paintings, tiles = _synthetic(2)
    for fraction in (0.01, 0.5, 0.99):
        for seed in range(6):
            config = curation.CurationConfig(test_color_fraction=fraction, tile_max_distance=2, seed=seed)
            assert sorted(_splits(paintings, tiles, config).values()) == ["test_color", "train"]
    alone = _splits(paintings.iloc[:1], tiles[tiles["painting_id"] == "p00"],
                    curation.CurationConfig(test_color_fraction=0.5, tile_max_distance=2))
    assert list(alone.values())[0] in ("train", "test_color")  # one work cannot be in both


def test_paintings_without_kept_tiles_never_fill_a_split():
    from lpd_pipeline.curation import dataset as curation

    paintings, tiles = _synthetic(3)
    tiles.loc[tiles["painting_id"] == "p00", "rejected_by"] = "blank"  # p00 keeps nothing
    for seed in range(10):
        config = curation.CurationConfig(test_color_fraction=0.3, tile_max_distance=2, seed=seed)
        out_paintings, out_tiles, rejections = curation.assemble_dataset(paintings, tiles, config)
        assert set(out_tiles["split"]) == {"train", "test_color"}, seed
        assert dict(zip(out_paintings["painting_id"], out_paintings["split"]))["p00"] == ""
        assert "no_kept_tiles" in set(rejections["reason"])
