"""Issue 11.5: what a damaged or hostile input is reported as (checkpoints, FIFOs, symlinked folders, HTTP bodies)."""

from __future__ import annotations

import os
import pickle

import pytest
import torch

from lpd_pipeline import imaging
from lpd_pipeline.curation import dataset as curation
from lpd_pipeline.sources.local import scan_local_folder
from lpd_pipeline.training import checkpoints as ckpt
from lpd_pipeline_tests.http_fixtures import image_bytes


class _RunsCode:
    def __reduce__(self):
        return (os.system, ("echo this must never run",))


def _good_checkpoint(run_dir, epoch: int):
    path = ckpt.checkpoint_path(run_dir, epoch)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"format": ckpt.CHECKPOINT_FORMAT, "epoch": epoch}, path)
    return path


def test_a_zero_byte_checkpoint_says_the_file_is_empty(tmp_path):
    path = ckpt.checkpoint_path(tmp_path, 3)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"")
    with pytest.raises(ckpt.CheckpointError) as raised:
        ckpt.load_checkpoint(path)
    assert str(raised.value).endswith("cannot be loaded: file is empty")
    with pytest.raises(ckpt.CheckpointError, match="file is empty"):
        ckpt.load_generator(path)


def test_a_hostile_checkpoint_is_refused_without_advice_to_load_it_unsafely(tmp_path):
    path = ckpt.checkpoint_path(tmp_path, 1)
    path.parent.mkdir(parents=True)
    path.write_bytes(pickle.dumps({"generator": _RunsCode()}, protocol=2))
    with pytest.raises(ckpt.CheckpointError) as raised:
        ckpt.load_checkpoint(path)
    message = str(raised.value)
    assert str(path) in message and "refused by the weights-only loader" in message
    assert "weights_only=False" not in message.replace("never load it with weights_only=False", "")
    assert "Re-running" not in message and "will likely succeed" not in message
    with pytest.raises(ckpt.CheckpointError) as raised:
        ckpt.load_generator(path)
    assert "will likely succeed" not in str(raised.value)


def test_a_second_corruption_of_an_epoch_keeps_the_first_corrupt_file(tmp_path):
    _good_checkpoint(tmp_path, 1)
    bad = ckpt.checkpoint_path(tmp_path, 2)
    bad.write_bytes(b"first damage")
    assert ckpt.set_aside_unreadable_checkpoints(tmp_path) == [bad.with_name("epoch_0002.pt.corrupt")]
    bad.write_bytes(b"second damage")
    third = ckpt.set_aside_unreadable_checkpoints(tmp_path)
    assert third == [bad.with_name("epoch_0002.pt.2.corrupt")]
    assert bad.with_name("epoch_0002.pt.corrupt").read_bytes() == b"first damage"
    assert bad.with_name("epoch_0002.pt.2.corrupt").read_bytes() == b"second damage"
    assert [epoch for epoch, _ in ckpt.list_checkpoints(tmp_path)] == [1]


def test_a_fifo_named_like_an_image_is_not_a_regular_file_and_never_opened(tmp_path):
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)  # opening it for reading would block until a writer came
    with pytest.raises(imaging.ImageDecodeError) as raised:
        imaging.decode_image(fifo)
    assert raised.value.reason == "not_a_regular_file"
    assert "not a regular file" in str(raised.value) and "FIFO" in str(raised.value)
    # Through the ingest stage as well: reported, and the good file next to it still processed.
    (tmp_path / "good.png").write_bytes(image_bytes("PNG", (64, 64), seed=1))
    items, _ = scan_local_folder(tmp_path)
    paintings, rejections = curation.ingest_paintings(items, curation.CurationConfig(workers=1))
    assert len(paintings) == 1
    assert rejections[["reason", "detail"]].values.tolist() == [["not_a_regular_file",
                                                                  "not a regular file (a FIFO / named pipe)"]]


def test_symlinked_folders_inside_the_root_are_followed_and_others_reported(tmp_path):
    root = tmp_path / "raw"
    (root / "archive" / "song").mkdir(parents=True)
    (root / "archive" / "song" / "a.png").write_bytes(image_bytes("PNG", seed=1))
    (root / ".staging" / "yuan").mkdir(parents=True)  # hidden: scanned only through the link below
    (root / ".staging" / "yuan" / "b.png").write_bytes(image_bytes("PNG", seed=2))
    os.symlink(root / ".staging" / "yuan", root / "yuan")  # inside the root: followed
    os.symlink(root / "archive" / "song", root / "song_again")  # a folder scanned already
    os.symlink(root, root / "archive" / "loop")  # holds the link itself
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "c.png").write_bytes(image_bytes("PNG", seed=3))
    os.symlink(outside, root / "outside_link")
    paintings, failures = scan_local_folder(root)
    assert [p.source_ref for p in paintings] == ["archive/song/a.png", "yuan/b.png"]
    reasons = sorted((f.item, f.reason) for f in failures)
    assert reasons == [("archive/loop", "symlink_repeats_folder"), ("outside_link", "symlink_outside_root"),
                       ("song_again", "symlink_repeats_folder")]
    assert all(f.detail for f in failures)
