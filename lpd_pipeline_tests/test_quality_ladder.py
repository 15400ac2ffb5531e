"""The quality ladder's validation tiles (held out by whole painting, a fixed draw) and its rule for choosing a
class generator's decode temperature on them (bench/quality.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd
import pytest

from lpd_pipeline_tests.evaluation_fixtures import tiny_dataset


@pytest.fixture(scope="module")
def ladder():
    path = Path(__file__).resolve().parents[1] / "bench" / "quality.py"
    spec = importlib.util.spec_from_file_location("bench_quality_ladder", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_validation_holds_out_whole_train_paintings_the_same_way_each_time(ladder, tmp_path):
    table = pd.read_parquet(tiny_dataset(tmp_path))
    train = table[table["split"] == "train"].copy()
    # Six train paintings of 2-3 tiles each (the fixture's tiles are re-assigned to paintings).
    train = pd.concat([train.assign(tile_id=train["tile_id"] + f"-{k}") for k in range(4)], ignore_index=True)
    train["painting_id"] = [f"p{i % 6}" for i in range(len(train))]
    pd.concat([train, table[table["split"] != "train"]]).to_parquet(tmp_path / "dataset" / "tiles.parquet")
    path, val = ladder.hold_out_validation(tmp_path, 0.34)
    again, _ = ladder.hold_out_validation(tmp_path, 0.34)
    split = pd.read_parquet(path)
    held = split[split["split"] == ladder.VALIDATION_SPLIT]
    assert held["painting_id"].nunique() == 2  # round(0.34 * 6) whole paintings
    assert not set(held["painting_id"]) & set(split.loc[split["split"] == "train", "painting_id"])
    assert pd.read_parquet(again).equals(split)  # a fixed draw
    assert (split.loc[split["split"].str.startswith("test"), "tile_id"].sort_values().tolist()
            == table.loc[table["split"].str.startswith("test"), "tile_id"].sort_values().tolist())
    assert val["real"].shape[0] == len(held) and val["gray"].shape == val["real"].shape[:3]
    assert pd.read_parquet(tmp_path / "dataset" / "tiles.parquet")["split"].isin(["train", "test_color",
                                                                                    "test_ink"]).all()


def test_temperature_is_chosen_by_faithful_and_vivid_colour_at_equal_weight(ladder):
    sweep = [{"t": 0.4, "delta_e": 9.0, "cf": 10.0}, {"t": 0.6, "delta_e": 9.5, "cf": 18.0},
             {"t": 1.0, "delta_e": 12.5, "cf": 20.0}]
    # scores with gray dE 10, real CF 20: 0.9 + 0.5, 0.95 + 0.1, 1.25 + 0
    assert ladder.choose_temperature(sweep, real_cf=20.0, gray_delta_e=10.0) == 0.6
    assert ladder.choose_temperature(sweep, real_cf=10.0, gray_delta_e=10.0) == 0.4


def test_a_rerun_continues_from_the_newest_checkpoint_and_restart_starts_over(ladder, tmp_path):
    table = tiny_dataset(tmp_path)
    out = tmp_path / "ladder"
    args = ("resnet9", tmp_path, table, out, 32, 12, 0, 4)  # 4 train tiles: 3 epochs, a checkpoint each
    _, seen, wall = ladder.train_variant(*args)
    run_dir = out / "runs" / "resnet9"
    kept = sorted(p.name for p in (run_dir / "checkpoints").glob("epoch_*.pt"))
    assert seen == 12 and kept == ["epoch_0003.pt"]  # the last one (only the newest is kept besides it)
    first = (run_dir / "checkpoints" / "epoch_0003.pt").read_bytes()

    _, seen_again, wall_again = ladder.train_variant(*args)  # finished: scored again, not trained again
    assert seen_again == 12 and wall_again == wall
    assert (run_dir / "checkpoints" / "epoch_0003.pt").read_bytes() == first

    _, _, wall_restart = ladder.train_variant(*args, restart=True)
    assert list((run_dir / "previous_runs").iterdir())  # the earlier run is set aside, not deleted
    assert wall_restart != wall
