"""The sensor that refreshes the dataset when LPD_RAW_DIR changes, and the definitions as a whole."""

import dagster as dg
import numpy as np

from lpd_pipeline import imaging
from lpd_pipeline.defs.sensors import new_raw_paintings


def _evaluate(cursor=None):
    context = dg.build_sensor_context(cursor=cursor)
    result = new_raw_paintings(context)
    return result, context.cursor


def test_sensor_skips_without_a_raw_dir(monkeypatch):
    monkeypatch.delenv("LPD_RAW_DIR", raising=False)
    result, _ = _evaluate()
    assert isinstance(result, dg.SkipReason)


def test_sensor_requests_a_run_only_when_the_folder_changes(monkeypatch, tmp_path):
    monkeypatch.setenv("LPD_RAW_DIR", str(tmp_path))
    imaging.save_image(tmp_path / "a.png", np.zeros((8, 8, 3), np.uint8))
    first, cursor = _evaluate()
    assert isinstance(first, dg.RunRequest)
    unchanged, _ = _evaluate(cursor)
    assert isinstance(unchanged, dg.SkipReason)
    (tmp_path / "notes.txt").write_text("not an image: ignored")
    assert isinstance(_evaluate(cursor)[0], dg.SkipReason)
    imaging.save_image(tmp_path / "b.jpg", np.zeros((8, 8, 3), np.uint8))
    changed, new_cursor = _evaluate(cursor)
    assert isinstance(changed, dg.RunRequest) and new_cursor != cursor


def test_definitions_load_with_every_job_schedule_and_sensor():
    from lpd_pipeline.definitions import defs

    repository = defs.get_repository_def()
    assert {"prepare_dataset", "train_models"} <= set(repository.job_names)
    assert [s.name for s in repository.schedule_defs] == ["weekly_dataset_refresh"]
    assert sorted(s.name for s in repository.sensor_defs) == ["lpd_automation", "new_raw_paintings"]


def test_sensor_ignores_partial_copies_and_hidden_files(monkeypatch, tmp_path):
    """Files the local source would skip (our temp names, hidden files) must not trigger a refresh."""
    monkeypatch.setenv("LPD_RAW_DIR", str(tmp_path))
    imaging.save_image(tmp_path / "a.png", np.zeros((8, 8, 3), np.uint8))
    _, cursor = _evaluate()
    (tmp_path / ".a.k2j3.tmp.png").write_bytes(b"partial")
    (tmp_path / ".hidden.png").write_bytes(b"x")
    assert isinstance(_evaluate(cursor)[0], dg.SkipReason)
    (tmp_path / "metadata.csv").write_text("file,kind\na.png,ink\n")
    assert isinstance(_evaluate(cursor)[0], dg.RunRequest)


def test_sensor_refreshes_when_a_removal_restores_an_earlier_folder_state(monkeypatch, tmp_path):
    """Add b, then remove it: the folder looks as it did before, but the dataset still holds b's tiles."""
    monkeypatch.setenv("LPD_RAW_DIR", str(tmp_path))
    imaging.save_image(tmp_path / "a.png", np.zeros((8, 8, 3), np.uint8))
    first, cursor = _evaluate()
    imaging.save_image(tmp_path / "b.png", np.zeros((8, 8, 3), np.uint8))
    added, cursor = _evaluate(cursor)
    (tmp_path / "b.png").unlink()
    removed, cursor = _evaluate(cursor)
    keys = [request.run_key for request in (first, added, removed)]
    assert all(isinstance(r, dg.RunRequest) for r in (first, added, removed))
    assert len(set(keys)) == 3, keys  # Dagster would skip a repeated run key


def test_sensor_notices_content_rewritten_with_its_old_mtime(monkeypatch, tmp_path):
    import os

    monkeypatch.setenv("LPD_RAW_DIR", str(tmp_path))
    path = imaging.save_image(tmp_path / "a.bmp", np.zeros((8, 8, 3), np.uint8))  # BMP: size fixed by shape
    _, cursor = _evaluate()
    before = path.stat()
    imaging.save_image(path, np.full((8, 8, 3), 255, np.uint8))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # what cp -p / rsync -t do
    assert path.stat().st_size == before.st_size  # same size and mtime: only the ctime tells
    assert isinstance(_evaluate(cursor)[0], dg.RunRequest)


def test_instance_config_limits_dataset_runs_to_one(tmp_path):
    import shutil
    from pathlib import Path

    from lpd_pipeline.defs.jobs import DATASET_WRITER_TAG, prepare_dataset

    shutil.copy(Path(__file__).resolve().parents[1] / "config" / "dagster.yaml", tmp_path / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        limits = instance.get_concurrency_config().run_queue_config.tag_concurrency_limits
        assert instance.run_monitoring_enabled  # so a killed run cannot hold the limit forever
    assert {"key": DATASET_WRITER_TAG, "value": "dataset", "limit": 1} in limits
    assert prepare_dataset.tags[DATASET_WRITER_TAG] == "dataset"
    assert int(prepare_dataset.tags["dagster/max_runtime"]) > 0


def test_sensor_reads_the_bare_signature_cursor_of_earlier_versions(monkeypatch, tmp_path):
    from lpd_pipeline.defs.sensors import folder_signature

    monkeypatch.setenv("LPD_RAW_DIR", str(tmp_path))
    imaging.save_image(tmp_path / "a.png", np.zeros((8, 8, 3), np.uint8))
    assert isinstance(_evaluate(folder_signature(tmp_path))[0], dg.SkipReason)  # same folder: no run
    for legacy in ("3fa9c2d1e0b4a7f2", "1234567890123456"):  # hex, and hex that parses as a JSON number
        assert isinstance(_evaluate(legacy)[0], dg.RunRequest)
