"""The closing summary reads what the pipeline wrote and says what is missing."""

import json

import pandas as pd

from lpd_pipeline.settings import StorageLayout
from lpd_pipeline.summary import DEMO_WARNING, summarize


def test_empty_storage_says_what_to_run(storage_root):
    text = summarize(StorageLayout(storage_root))
    assert "dataset: not prepared yet (job prepare_dataset)" in text
    assert "models: none trained yet" in text and "renders: none yet" in text
    assert DEMO_WARNING not in text


def test_counts_best_epochs_and_the_results_page(storage_root):
    dataset = storage_root / "dataset"
    dataset.mkdir()
    pd.DataFrame({"painting_id": ["a", "b", "c"], "split": ["train", "test_ink", None]}).to_parquet(
        dataset / "paintings.parquet")
    pd.DataFrame({"tile_id": ["1", "2", "3"], "split": ["train", "train", "test_ink"]}).to_parquet(
        dataset / "tiles.parquet")
    pd.DataFrame({"item": ["x", "y"], "stage": ["filter", "dedup"], "reason": ["blur", "dup"],
                  "detail": ["", ""]}).to_parquet(dataset / "rejections.parquet")
    best = storage_root / "evaluation" / "unet256" / "best_checkpoint.json"
    best.parent.mkdir(parents=True)
    best.write_text(json.dumps({"variant": "unet256", "epoch": 3, "fid": 101.62, "kid": 0.0123, "lpips": 0.1847,
                                "delta_e": 9.5, "chosen_by": "lowest FID"}))
    (storage_root / "training" / "resnet9").mkdir(parents=True)
    (storage_root / "training" / "resnet9" / "checkpoints.parquet").write_bytes(b"")
    site = storage_root / "reports" / "site"
    site.mkdir(parents=True)
    (site / "index.html").write_text("<html></html>")

    text = summarize(StorageLayout(storage_root), demo=True)
    assert "dataset: 2 of 3 paintings kept, 3 tiles (2 train, 0 test_color, 1 test_ink)" in text
    assert "rejected: 1 at dedup, 1 at filter" in text or "rejected: 1 at filter, 1 at dedup" in text
    assert "unet256: best epoch 3 — FID 101.6, KID 0.0123, LPIPS 0.185, ΔE 9.50 (chosen by lowest FID)" in text
    assert "resnet9: trained, not evaluated yet" in text
    assert f"results page: {(site / 'index.html').as_uri()}" in text
    assert text.endswith(DEMO_WARNING)
