"""Exact resume: interrupted (even kill -9) runs continue to bitwise the same state as uninterrupted ones."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lpd_pipeline import imaging
from lpd_pipeline.training import checkpoints as ckpt
from lpd_pipeline.training.loop import TrainingError, train
from lpd_pipeline_tests.training_fixtures import tiny_config, write_fake_tiles

REPO_ROOT = Path(__file__).resolve().parents[1]
STATE_KEYS = ("generator", "discriminator", "optimizer_g", "optimizer_d", "scheduler_g", "scheduler_d")


def assert_same_state(a, b, where="state"):
    """Recursive torch.equal over nested checkpoint state (tensors, dicts, lists, scalars)."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert set(a) == set(b), where
        for key in a:
            assert_same_state(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same_state(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


def final_state(run_dir: Path) -> dict:
    payload = ckpt.load_checkpoint(ckpt.list_checkpoints(run_dir)[-1][1])
    return {key: payload[key] for key in (*STATE_KEYS, "epoch", "global_step")}


def losses(run_dir: Path) -> list:
    history = ckpt.load_checkpoint(ckpt.list_checkpoints(run_dir)[-1][1])["loss_history"]
    return [[h[k] for k in ("G_GAN", "G_L1", "D_real", "D_fake", "lr")] for h in history]


@pytest.fixture()
def tiles(storage_root):
    return write_fake_tiles(storage_root, n_train=4, n_test=0)


def test_resume_in_slices_equals_uninterrupted(storage_root, tmp_path, tiles):
    # unet256 has dropout (global RNG) and both phases of the lr schedule are crossed.
    config = tiny_config(backbone="unet256", n_epochs=2, n_epochs_decay=1)
    train(config, tiles, storage_root, tmp_path / "straight")
    first = train(config, tiles, storage_root, tmp_path / "sliced", max_epochs_this_run=1)
    assert first.epochs_completed == 1 and not first.finished
    second = train(config, tiles, storage_root, tmp_path / "sliced", max_epochs_this_run=1)
    assert second.resumed_from.name == "epoch_0001.pt" and second.epochs_completed == 2
    third = train(config, tiles, storage_root, tmp_path / "sliced")
    assert third.finished and third.epochs_completed == 3
    assert_same_state(final_state(tmp_path / "straight"), final_state(tmp_path / "sliced"))
    assert losses(tmp_path / "straight") == losses(tmp_path / "sliced")
    # Re-materialising a finished run trains nothing more.
    again = train(config, tiles, storage_root, tmp_path / "sliced")
    assert again.epochs_completed == 3 and again.history == third.history


def cli(args) -> tuple[list[str], dict]:
    # One thread each: the test machine is small and shared; both runs use the same setting.
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1"}
    return [sys.executable, "-m", "lpd_pipeline.train", *args], env


def test_kill_9_mid_run_then_resume_matches_uninterrupted(storage_root, tmp_path, tiles):
    flags = ["--tiles", str(tiles), "--storage", str(storage_root), "--backbone", "resnet9", "--ngf", "8",
             "--ndf", "8", "--n-layers-d", "2", "--tile-size", "32", "--n-epochs", "24", "--n-epochs-decay", "6",
             "--batch-size", "2", "--checkpoint-every", "1", "--device", "cpu", "--num-workers", "0"]
    killed = tmp_path / "killed"
    # Kill -9 from outside as soon as the first checkpoint exists: wherever that lands (mid-step, between
    # epochs, during a checkpoint write), the resumed run must end bitwise where an uninterrupted one does.
    command, env = cli([*flags, "--run-dir", str(killed)])
    process = subprocess.Popen(command, env=env, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    first = ckpt.checkpoint_dir(killed) / "epoch_0001.pt"
    deadline = time.monotonic() + 240
    while not first.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    process.kill()
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL, stderr.decode()[-2000:]
    written = [epoch for epoch, _ in ckpt.list_checkpoints(killed)]
    assert written and written[-1] < 30, written  # interrupted after epoch 1, well before the end

    command, env = cli([*flags, "--run-dir", str(killed)])
    resumed = subprocess.run(command, env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resuming from" in resumed.stderr and f"epoch_{written[-1]:04d}.pt" in resumed.stderr

    # The uninterrupted reference runs in-process with the subprocesses' thread count (saves a torch start-up).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        config = tiny_config(backbone="resnet9", n_epochs=24, n_epochs_decay=6)
        train(config, tiles, storage_root, tmp_path / "straight")
    finally:
        torch.set_num_threads(threads)
    assert_same_state(final_state(tmp_path / "straight"), final_state(killed))
    assert losses(tmp_path / "straight") == losses(killed)


def test_resume_refuses_other_data_or_model(storage_root, tmp_path, tiles):
    config = tiny_config(n_epochs=1, n_epochs_decay=1)
    run_dir = tmp_path / "run"
    train(config, tiles, storage_root, run_dir, max_epochs_this_run=1)

    with pytest.raises(ckpt.CheckpointError, match="different model config.*ngf"):
        train(config.replace(ngf=16), tiles, storage_root, run_dir)
    # The optimizer and scheduler come back as saved: other settings would be recorded but never applied.
    with pytest.raises(ckpt.CheckpointError, match="different optimisation settings.*lr.*beta1"):
        train(config.replace(lr=1e-5, beta1=0.9), tiles, storage_root, run_dir)
    found, payload = ckpt.latest_checkpoint(run_dir)
    with pytest.raises(ckpt.CheckpointError, match="trained by 1 process.*this run has 2"):
        ckpt.check_compatible(payload, found, config, payload["data_fingerprint"], world_size=2)

    tile = next((storage_root / "dataset" / "tiles").glob("*_color.png"))
    pixels = np.asarray(Image.open(tile)).copy()
    pixels[1, 1] ^= 0xFF
    Image.fromarray(pixels).save(tile)
    gray = tile.with_name(tile.name.replace("_color", "_gray"))
    Image.fromarray(imaging.luma_bt601(pixels)).save(gray)  # a consistent pair, just other data
    with pytest.raises(ckpt.CheckpointError, match="different data"):
        train(config, tiles, storage_root, run_dir)
    with pytest.raises(TrainingError, match="already holds checkpoints"):
        train(config, tiles, storage_root, run_dir, resume=False)
    old_checkpoint = ckpt.checkpoint_path(run_dir, 1).read_bytes()
    fresh = train(config, tiles, storage_root, run_dir, restart=True)
    assert fresh.resumed_from is None and fresh.finished
    # The previous run is set aside, not deleted.
    (archived,) = (run_dir / "previous_runs").iterdir()
    assert (archived / "checkpoints" / "epoch_0001.pt").read_bytes() == old_checkpoint
    archived_table = ckpt.read_checkpoint_table(archived)
    assert archived_table["path"].tolist() == [str(archived / "checkpoints" / "epoch_0001.pt")]
    assert [e for e, _ in ckpt.list_checkpoints(run_dir)] == [1, 2]


def test_unreadable_latest_checkpoint_falls_back_and_temp_files_are_ignored(storage_root, tmp_path, tiles):
    config = tiny_config(n_epochs=2, n_epochs_decay=1)
    run_dir = tmp_path / "run"
    train(config, tiles, storage_root, run_dir, max_epochs_this_run=2)
    latest = ckpt.checkpoint_path(run_dir, 2)
    latest.write_bytes(latest.read_bytes()[:100])  # a torn file (only possible with a non-atomic writer)
    (ckpt.checkpoint_dir(run_dir) / ".epoch_0003.abc.tmp").write_bytes(b"partial")
    (ckpt.checkpoint_dir(run_dir) / ".epoch_0003.k2j3.tmp.pt").write_bytes(b"partial")  # atomic_path's naming
    result = train(config, tiles, storage_root, run_dir)
    assert result.resumed_from.name == "epoch_0001.pt" and result.finished
    assert not list(ckpt.checkpoint_dir(run_dir).glob(".*.tmp*"))


def test_schedule_may_grow_on_resume_but_not_end_before_the_checkpoint(storage_root, tmp_path, tiles):
    config = tiny_config(n_epochs=2, n_epochs_decay=1)
    run_dir = tmp_path / "run"
    train(config, tiles, storage_root, run_dir, max_epochs_this_run=2)
    with pytest.raises(ckpt.CheckpointError, match="schedule now ends at epoch 1"):
        train(config.replace(n_epochs=1, n_epochs_decay=0), tiles, storage_root, run_dir)
    longer = train(config.replace(n_epochs=3, n_epochs_decay=1), tiles, storage_root, run_dir)
    assert longer.finished and longer.epochs_completed == 4
    # lr of each epoch: constant for epochs 1-3 under the new schedule, then the decay epoch.
    assert [round(h["lr"] / 2e-4, 6) for h in longer.history] == [1.0, 1.0, 1.0, 0.5]


def test_resume_at_another_thread_count_warns_and_goes_on(storage_root, tmp_path, tiles, caplog):
    config = tiny_config(n_epochs=2, n_epochs_decay=1)
    run_dir = tmp_path / "run"
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        train(config, tiles, storage_root, run_dir, max_epochs_this_run=1)
        assert torch.load(ckpt.checkpoint_path(run_dir, 1), weights_only=True)["torch_threads"] == 1
        with caplog.at_level("WARNING", logger="lpd_pipeline.training.loop"):
            train(config, tiles, storage_root, run_dir, max_epochs_this_run=1)  # same count: no warning
        assert "torch threads" not in caplog.text
        torch.set_num_threads(2)
        with caplog.at_level("WARNING", logger="lpd_pipeline.training.loop"):
            result = train(config, tiles, storage_root, run_dir)
    finally:
        torch.set_num_threads(threads)
    assert result.finished and result.epochs_completed == 3
    assert "at 2 torch threads; it was written at 1" in caplog.text and "OMP_NUM_THREADS=1" in caplog.text


def test_unreadable_checkpoints_are_set_aside_and_never_win_retention(storage_root, tmp_path, tiles):
    config = tiny_config(n_epochs=4, n_epochs_decay=0, keep_every=2)
    run_dir = tmp_path / "run"
    train(config, tiles, storage_root, run_dir)
    assert [e for e, _ in ckpt.list_checkpoints(run_dir)] == [2, 4]
    newest = ckpt.checkpoint_path(run_dir, 4)
    newest.write_bytes(newest.read_bytes()[:100])
    result = train(config, tiles, storage_root, run_dir)
    assert result.resumed_from.name == "epoch_0002.pt" and result.finished
    assert [e for e, _ in ckpt.list_checkpoints(run_dir)] == [2, 4]  # the new epoch 4, not deleted
    assert newest.with_name("epoch_0004.pt.corrupt").is_file()
    assert ckpt.load_generator(result.generator_path).epoch == 4

    for _, path in ckpt.list_checkpoints(run_dir):
        path.write_bytes(b"garbage")
    with pytest.raises(ckpt.CheckpointError, match="no checkpoint .* can be loaded.*restart"):
        train(config, tiles, storage_root, run_dir)
    assert [e for e, _ in ckpt.list_checkpoints(run_dir)] == [2, 4]  # nothing renamed or lost
