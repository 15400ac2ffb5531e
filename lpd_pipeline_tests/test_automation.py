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
    assert [s.name for s in repository.sensor_defs] == ["new_raw_paintings"]


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
