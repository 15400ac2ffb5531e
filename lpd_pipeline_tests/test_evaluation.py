"""Checkpoint evaluation core: rows cached by content, leakage refusals, shared inference, sample sheets,
best-epoch rules, best_checkpoint.json, comparison, evaluation-aware retention.

The metric networks are replaced by a small fake (FakeMetricModels): these tests are about the evaluation's
bookkeeping; the metric arithmetic comes from ``lpd_pipeline.metrics`` unchanged.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from lpd_pipeline import imaging
from lpd_pipeline.config import ConfigError
from lpd_pipeline.evaluation import EvaluationError, EvaluationSettings, read_best_checkpoint, store
from lpd_pipeline.evaluation.comparison import write_comparison
from lpd_pipeline.evaluation.evaluate import evaluate_checkpoints
from lpd_pipeline.evaluation.generation import generate, load_for_evaluation
from lpd_pipeline.evaluation.retention import apply_evaluated_retention, deletable_checkpoints
from lpd_pipeline.evaluation.selection import best_record, choose_best
from lpd_pipeline.evaluation.testsets import load_test_set, sample_indices
from lpd_pipeline.models.inference import colorize_tiles
from lpd_pipeline.settings import StorageLayout
from lpd_pipeline_tests.evaluation_fixtures import FakeMetricModels, tiny_dataset, tiny_training

FAST = EvaluationSettings(bootstrap=20)


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    """Every test here runs tiny networks on one torch thread (conftest.one_torch_thread)."""


def _evaluate(layout, table, variant="resnet9", settings=FAST):
    return evaluate_checkpoints(layout, variant, table, settings, models_factory=FakeMetricModels)


@pytest.fixture()
def trained(storage_root):
    tiny_dataset(storage_root)
    return StorageLayout(storage_root), tiny_training(storage_root)


def test_every_checkpoint_is_scored_once_and_reused_by_content(trained):
    layout, table = trained
    FakeMetricModels.instances = 0
    first = _evaluate(layout, table)
    assert first.evaluated == [1, 2] and first.reused == [] and first.skipped == []
    rows = first.rows
    assert list(rows["epoch"]) == [1, 2] and set(rows["status"]) == {"ok"}
    for column in ["fid", "fid_lo", "fid_hi", "kid", "lpips", "delta_e", "psnr", "ssim", "delta_cf",
                   "ink_fid", "ink_kid", "ink_colorfulness", "generation_s", "features_s", "metrics_s"]:
        assert rows[column].map(lambda v: math.isfinite(float(v))).all(), column
    assert (rows["n_color"] == 5).all() and (rows["n_ink"] == 3).all()
    assert rows["checkpoint_sha256"].str.len().eq(64).all() and rows["checkpoint_sha256"].nunique() == 2
    # The real tiles' features are computed once and cached on disk, keyed by the split's content.
    assert len(list(store.features_dir(layout).glob("inception_*.npy"))) == 1
    assert FakeMetricModels.instances == 1

    # Nothing new: every row comes from the cache and the metric networks are not even loaded.
    again = _evaluate(layout, table)
    assert again.evaluated == [] and again.reused == [1, 2]
    assert FakeMetricModels.instances == 1
    pd.testing.assert_frame_equal(again.rows.drop(columns=["evaluated_at"]), rows.drop(columns=["evaluated_at"]),
                                  check_dtype=False)
    assert len(store.read_evaluations(layout, "resnet9")) == 2


def test_a_new_checkpoint_evaluates_only_itself_and_a_new_test_set_everything(trained, storage_root):
    layout, table = trained
    _evaluate(layout, table)
    longer = tiny_training(storage_root, epochs=3)  # resumes: one new checkpoint
    assert list(longer["epoch"]) == [1, 2, 3]
    run = _evaluate(layout, longer)
    assert run.evaluated == [3] and run.reused == [1, 2]

    # Another test set (one test tile's pixels changed): every checkpoint is scored again.
    tiles = pd.read_parquet(storage_root / "dataset" / "tiles.parquet")
    row = tiles[tiles["split"] == "test_color"].iloc[0]
    color = imaging.decode_image(storage_root / row.color_path).copy()
    color[:4] = 255 - color[:4]
    imaging.save_image(storage_root / row.color_path, color)
    imaging.save_image(storage_root / row.gray_path, imaging.luma_bt601(color))
    redone = _evaluate(layout, longer)
    assert redone.evaluated == [1, 2, 3]
    assert redone.rows["test_fingerprint"].nunique() == 1
    assert redone.rows["test_fingerprint"].iloc[0] != run.rows["test_fingerprint"].iloc[0]
    # Other settings (bootstrap) are another cache key, too.
    assert _evaluate(layout, longer, settings=EvaluationSettings(bootstrap=5)).evaluated == [1, 2, 3]


def test_checkpoints_whose_training_tiles_are_now_test_tiles_are_refused(trained, storage_root):
    layout, table = trained
    # A refresh moved a training tile into test_color: checkpoints trained on it must not be scored on it.
    path = storage_root / "dataset" / "tiles.parquet"
    tiles = pd.read_parquet(path)
    moved = tiles.index[tiles["split"] == "train"][0]
    tiles.loc[moved, "split"] = "test_color"
    tiles.to_parquet(path, index=False)
    run = _evaluate(layout, table)
    assert run.evaluated == [] and [e for e, _ in run.skipped] == [1, 2]
    reason = run.rows["reason"].iloc[0]
    assert "overlap the current test split" in reason and tiles.loc[moved, "tile_id"] in reason
    assert set(run.rows["status"]) == {"skipped"}


def test_a_checkpoint_of_an_unknown_training_set_is_refused(trained, storage_root):
    layout, table = trained
    # The training store and the registry no longer know the checkpoint's tiles, and the train split changed.
    (storage_root / "training" / "tile_store" / "train" / "index.json").unlink()
    for recorded in store.variant_dir(layout, "resnet9").parent.glob("training_sets/*.json"):
        recorded.unlink()
    path = storage_root / "dataset" / "tiles.parquet"
    tiles = pd.read_parquet(path)
    tiles = tiles.drop(index=tiles.index[tiles["split"] == "train"][0])
    tiles.to_parquet(path, index=False)
    run = _evaluate(layout, table)
    assert run.evaluated == []
    assert "cannot be ruled out" in run.rows["reason"].iloc[0]


def test_a_training_set_seen_once_stays_known_after_a_refresh(trained, storage_root):
    layout, table = trained
    _evaluate(layout, table)  # records the training set behind the checkpoints' fingerprint
    (storage_root / "training" / "tile_store" / "train" / "index.json").unlink()
    path = storage_root / "dataset" / "tiles.parquet"
    tiles = pd.read_parquet(path)
    tiles.drop(index=tiles.index[tiles["split"] == "train"][0]).to_parquet(path, index=False)
    run = _evaluate(layout, table)
    assert run.skipped == [] and run.reused == [1, 2]


def test_checkpoint_of_another_variant_or_missing_file_is_skipped_with_the_reason(trained, storage_root):
    layout, table = trained
    run = _evaluate(layout, table, variant="unet256")
    assert "not of variant 'unet256'" in run.rows["reason"].iloc[0]
    gone = table.copy()
    gone.loc[0, "path"] = str(storage_root / "nowhere" / "epoch_0001.pt")
    run = _evaluate(layout, gone)
    assert run.skipped[0][0] == 1 and "does not exist" in run.skipped[0][1] and run.evaluated == [2]


@pytest.mark.parametrize("mode", ["eval", "pix2pix"])
def test_generation_is_the_shared_inference_path(trained, mode):
    layout, table = trained
    loaded = load_for_evaluation(table["path"].iloc[-1], mode=mode)
    gray = np.array(load_test_set(layout).color.gray())
    out = generate(loaded, gray, batch_size=2)
    assert out.shape == (*gray.shape, 3) and out.dtype == np.uint8
    if mode == "eval":  # batches do not change the result
        expected = colorize_tiles(loaded.net, "rgb", torch.from_numpy(gray)).numpy()
    else:  # one tile at a time, as the reference test script at batch 1
        expected = np.concatenate([colorize_tiles(loaded.net, "rgb", torch.from_numpy(gray[i:i + 1])).numpy()
                                   for i in range(len(gray))])
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(generate(loaded, gray, batch_size=5), out)


def test_sample_sheet_is_written_per_checkpoint(trained):
    layout, table = trained
    run = _evaluate(layout, table, settings=EvaluationSettings(bootstrap=0, sample_color_tiles=4,
                                                               sample_ink_tiles=2))
    sheet_path = store.sample_sheet_path(layout, "resnet9", 2)
    assert run.rows["sample_sheet"].iloc[-1] == str(sheet_path)
    sheet = np.asarray(Image.open(sheet_path).convert("RGB"))
    # title strip, heading + 2 rows of triplets (4 tiles, 6 cells per row), heading + 1 row of ink pairs
    assert sheet.shape[1] == 6 * 160 and sheet.shape[0] == 3 * 24 + 3 * (160 + 16)
    assert sample_indices(5, 4) == [0, 1, 3, 4] and sample_indices(3, 8) == [0, 1, 2] and sample_indices(0, 4) == []


def _rows(*values):
    """Rows (epoch, fid, fid_lo, fid_hi, lpips)."""
    return pd.DataFrame([{"epoch": e, "fid": f, "fid_lo": lo, "fid_hi": hi, "lpips": lp, "status": "ok",
                          "checkpoint": f"/x/epoch_{e:04d}.pt", "checkpoint_sha256": str(e) * 64,
                          "test_fingerprint": "t", "cache_key": "k", "inference_mode": "eval"}
                         for e, f, lo, hi, lp in values])


def test_selection_rules():
    rows = _rows((5, 120.0, 110.0, 130.0, 0.20), (10, 100.0, 92.0, 112.0, 0.25), (15, 105.0, 98.0, 115.0, 0.18),
                 (20, 140.0, 135.0, 150.0, 0.10))
    # Lowest FID is epoch 10, but its interval overlaps epochs 5 and 15: the lowest LPIPS among those wins.
    choice = choose_best(rows)
    assert int(choice.row["epoch"]) == 15 and "overlapping those of epochs 5, 10, 15" in choice.chosen_by
    assert int(choose_best(rows, "fid").row["epoch"]) == 10
    assert int(choose_best(rows, "lpips").row["epoch"]) == 20
    clear = _rows((5, 150.0, 145.0, 155.0, 0.1), (10, 100.0, 95.0, 105.0, 0.3))
    assert int(choose_best(clear).row["epoch"]) == 10 and "overlaps no other" in choose_best(clear).chosen_by
    # Skipped rows and non-finite values never win; ties go to the earlier epoch.
    rows.loc[3, "status"] = "skipped"
    rows.loc[2, "fid"] = float("nan")
    assert int(choose_best(rows, "lpips").row["epoch"]) == 15  # its FID is not needed by this rule
    assert int(choose_best(rows).row["epoch"]) == 5  # 15 has no FID; 5 and 10 overlap, 5 has the lower LPIPS
    assert int(choose_best(_rows((5, 1.0, 1.0, 1.0, 0.1), (10, 1.0, 1.0, 1.0, 0.1)), "fid").row["epoch"]) == 5
    assert choose_best(rows.iloc[0:0]) is None
    with pytest.raises(ValueError, match="unknown selection rule"):
        choose_best(rows, "psnr")


def test_best_checkpoint_record_round_trips_and_names_a_vanished_file(trained):
    layout, table = trained
    assert read_best_checkpoint(layout, "resnet9") is None
    run = _evaluate(layout, table)
    choice = choose_best(run.rows)
    record = best_record("resnet9", choice, "fid_then_lpips")
    store.write_best_checkpoint(layout, "resnet9", record)
    read = read_best_checkpoint(layout, "resnet9")
    assert read == json.loads(json.dumps(record))
    assert read["checkpoint"] == str(table.set_index("epoch").loc[read["epoch"], "path"])
    assert all(math.isfinite(read[k]) for k in ("fid", "kid", "lpips", "delta_e", "delta_cf"))
    assert len(read["checkpoint_sha256"]) == 64 and read["chosen_by"]
    from pathlib import Path

    Path(read["checkpoint"]).unlink()
    with pytest.raises(EvaluationError, match="no longer exists"):
        read_best_checkpoint(layout, "resnet9")
    with pytest.raises(ValueError, match="unknown model variant"):
        read_best_checkpoint(layout, "../x")


def test_comparison_table_and_plot(trained):
    layout, table = trained
    run = _evaluate(layout, table)
    store.write_best_checkpoint(layout, "resnet9", best_record("resnet9", choose_best(run.rows), "fid_then_lpips"))
    frame, png, paths = write_comparison(layout)
    assert list(frame["variant"]) == ["resnet9"] and frame["best_epoch"].iloc[0] in (1, 2)
    assert set(["fid", "kid", "lpips", "delta_e", "delta_cf"]) <= set(frame.columns)
    assert png.startswith(b"\x89PNG") and (layout.root / "reports" / "backbone_comparison.png").is_file()
    assert pd.read_csv(paths["table_csv"])["variant"].tolist() == ["resnet9"]
    assert pd.read_csv(paths["epochs_csv"])["epoch"].tolist() == [1, 2]


def test_retention_keeps_unevaluated_best_latest_and_every_kth(storage_root):
    tiny_dataset(storage_root)
    layout = StorageLayout(storage_root)
    table = tiny_training(storage_root, epochs=5)
    run_dir = storage_root / "training" / "resnet9"
    # Epochs 1-4 evaluated; epoch 5 is written after the evaluation (unevaluated, and the latest).
    run = _evaluate(layout, table[table["epoch"] <= 4])
    best = run.rows.set_index("epoch").loc[1, "checkpoint"]
    assert deletable_checkpoints(run_dir, run.rows, best, 0) == []
    deleted = apply_evaluated_retention(run_dir, run.rows, best, 2)
    assert sorted(p.name for p in deleted) == ["epoch_0003.pt"]
    left = pd.read_parquet(run_dir / "checkpoints.parquet")
    assert list(left["epoch"]) == [1, 2, 4, 5]
    # A file rewritten after its evaluation counts as unevaluated: with k=4 and no best, only epoch 1 may go.
    assert [p.name for p in deletable_checkpoints(run_dir, run.rows, None, 4)] == ["epoch_0001.pt", "epoch_0002.pt"]
    rewritten = run_dir / "checkpoints" / "epoch_0002.pt"
    rewritten.write_bytes(rewritten.read_bytes())
    assert [p.name for p in deletable_checkpoints(run_dir, run.rows, None, 4)] == ["epoch_0001.pt"]


def test_settings_are_strict():
    with pytest.raises(ConfigError, match="bootstraps"):
        EvaluationSettings(bootstraps=10)
    with pytest.raises(ConfigError, match="selection_rule"):
        EvaluationSettings(selection_rule="psnr")
    assert EvaluationSettings().cache_key("eval") != EvaluationSettings().cache_key("pix2pix")
    assert EvaluationSettings(device="cuda").cache_key("eval") == EvaluationSettings().cache_key("eval")


def test_one_ink_tile_gets_colourfulness_but_no_fid(storage_root):
    tiny_dataset(storage_root, n_ink=1)
    layout = StorageLayout(storage_root)
    run = _evaluate(layout, tiny_training(storage_root, epochs=1))
    row = run.rows.iloc[0]
    assert row["status"] == "ok" and row["n_ink"] == 1
    assert math.isfinite(row["ink_colorfulness"]) and not math.isfinite(float(row["ink_fid"]))


@pytest.mark.slow
def test_with_the_real_metric_networks_rows_equal_the_metrics_suite(trained):
    """The evaluation's composition of the metrics equals metrics.all_metrics on the same generated tiles."""
    from lpd_pipeline import metrics
    from lpd_pipeline.metrics.weights import weights_ready

    if not weights_ready():
        pytest.skip("metric weights not provisioned (python -m lpd_pipeline.metrics.weights)")
    layout, table = trained
    models = metrics.MetricModels("cpu", allow_download=False)
    run = evaluate_checkpoints(layout, "resnet9", table.tail(1), FAST, models_factory=lambda device: models)
    row = run.rows.iloc[0]
    tiles = load_test_set(layout)
    generated = generate(load_for_evaluation(table["path"].iloc[-1]), np.asarray(tiles.color.gray()))
    expected = metrics.all_metrics(np.array(tiles.color.color()), generated, models, bootstrap=FAST.bootstrap,
                                   seed=FAST.seed)
    for key in metrics.KEYS:
        if key != "n":
            assert float(row[key]) == pytest.approx(expected[key], rel=1e-6, abs=1e-9), key
    assert row["n_color"] == expected["n"]
