"""The storage root: paths never leave it, and it is absolute whatever the working directory does."""

from __future__ import annotations

import os

import pytest

from lpd_pipeline.settings import PathEscapeError, StorageLayout, default_storage_root, safe_join


@pytest.mark.parametrize("parts", [("..", "etc", "passwd"), ("/etc/passwd",), ("a", "..", "..", "b")])
def test_safe_join_refuses_parent_and_absolute_paths(tmp_path, parts):
    with pytest.raises(PathEscapeError, match="escapes the storage root"):
        safe_join(tmp_path, *parts)


def test_safe_join_refuses_symlinks_out_of_the_root_but_allows_inside(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "data").mkdir(parents=True)
    outside.mkdir()
    (root / "escape").symlink_to(outside)
    (root / "alias").symlink_to(root / "data")
    with pytest.raises(PathEscapeError):
        safe_join(root, "escape", "x.png")
    assert safe_join(root, "alias", "x.png") == (root / "data" / "x.png").resolve()
    assert safe_join(root, "a", "..", "b") == (root / "b").resolve()


def test_relative_root_is_resolved_once(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    layout = StorageLayout("store")
    assert layout.root == tmp_path / "store" and layout.root.is_absolute()
    (tmp_path / "elsewhere").mkdir()
    os.chdir(tmp_path / "elsewhere")
    assert layout.tiles_dir == tmp_path / "store" / "dataset" / "tiles"
    assert layout.tiles_dir.relative_to(layout.root).as_posix() == "dataset/tiles"


def test_storage_root_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("LPD_STORAGE", str(tmp_path / "s"))
    assert default_storage_root() == tmp_path / "s"
    assert StorageLayout(default_storage_root()).dagster_home == tmp_path / "s" / "dagster_home"
