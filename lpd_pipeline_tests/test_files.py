"""Atomic writes: nothing half-written, no temp files left behind, usual permissions, folders created."""

from __future__ import annotations

import os
import stat

import pandas as pd
import pytest

from lpd_pipeline.files import atomic_path, sha256_file, write_bytes_atomic, write_parquet_atomic, write_text_atomic


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_write_bytes_atomic_creates_folders_replaces_and_uses_umask_permissions(tmp_path):
    target = tmp_path / "a" / "b" / "tile.png"
    write_bytes_atomic(target, b"first")
    write_bytes_atomic(target, b"second")
    assert target.read_bytes() == b"second"
    assert sorted(p.name for p in target.parent.iterdir()) == ["tile.png"]
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~_umask()


def test_atomic_path_failure_leaves_the_old_file_and_no_temp(tmp_path):
    target = tmp_path / "table.parquet"
    write_text_atomic(target, "old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            assert tmp.parent == tmp_path and tmp.suffix == ".parquet" and tmp.name.startswith(".")
            tmp.write_text("half-written")
            raise RuntimeError("crash while writing")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["table.parquet"]


def test_durable_atomic_path_and_parquet(tmp_path):
    with atomic_path(tmp_path / "ckpt" / "epoch.pt", durable=True) as tmp:
        tmp.write_bytes(b"weights")
    assert (tmp_path / "ckpt" / "epoch.pt").read_bytes() == b"weights"
    frame = pd.DataFrame({"x": [1, 2]})
    write_parquet_atomic(frame, tmp_path / "t.parquet")
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "t.parquet"), frame)
    assert len(sha256_file(tmp_path / "t.parquet")) == 64


def test_remove_stale_temp_files_spares_young_ones_and_real_files(tmp_path):
    from lpd_pipeline.files import remove_stale_temp_files

    old = tmp_path / ".tile.ab12cd.tmp.png"
    young = tmp_path / ".tile.ef34ab.tmp.png"
    real = tmp_path / "tile.png"
    for path in (old, young, real):
        path.write_bytes(b"x")
    os.utime(old, (0, 0))
    os.utime(real, (0, 0))
    assert remove_stale_temp_files(tmp_path, min_age_s=60) == 1
    assert not old.exists() and young.exists() and real.exists()
    assert remove_stale_temp_files(tmp_path) == 1 and not young.exists() and real.exists()
    assert remove_stale_temp_files(tmp_path / "missing") == 0
    users_own = tmp_path / ".notes.tmp.txt"  # hidden and "tmp", but not a name atomic_path makes
    users_own.write_text("mine")
    os.utime(users_own, (0, 0))
    assert remove_stale_temp_files(tmp_path) == 0 and users_own.exists()


def test_read_json_object_is_empty_for_missing_damaged_or_non_object_files(tmp_path):
    from lpd_pipeline.files import read_json_object

    (tmp_path / "ok.json").write_text('{"a": 1}')
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "list.json").write_text("[1, 2]")
    assert read_json_object(tmp_path / "ok.json") == {"a": 1}
    assert read_json_object(tmp_path / "bad.json") == {} == read_json_object(tmp_path / "list.json")
    assert read_json_object(tmp_path / "missing.json") == {}
