"""DDP on CPU (gloo, 2 processes): replicas stay identical, rank 0 alone writes a checkpoint that resumes."""

from __future__ import annotations

import hashlib
import json
import os
import socket
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from lpd_pipeline.models.build import build_model_generator
from lpd_pipeline.training import checkpoints as ckpt
from lpd_pipeline.training.config import TrainConfig
from lpd_pipeline.training.loop import train
from lpd_pipeline_tests.training_fixtures import tiny_config, write_fake_tiles

WORLD_SIZE = 2


def parameter_digest(net: torch.nn.Module) -> str:
    digest = hashlib.sha256()
    for name, param in net.named_parameters():
        digest.update(name.encode())
        digest.update(param.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _worker(rank: int, port: int, paths: dict, config: dict) -> None:
    """Two calls of ``train`` in one process group: one epoch, then a resume from its checkpoint file."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(WORLD_SIZE), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    # Joining the group here (rather than inside train) lets both phases share one start-up.
    dist.init_process_group("gloo", rank=rank, world_size=WORLD_SIZE)
    try:
        for phase, max_epochs in enumerate((1, None)):
            steps, events = [], []

            def on_step(step, generator, discriminator):
                steps.append([step, parameter_digest(generator), parameter_digest(discriminator)])

            result = train(TrainConfig.from_dict(config), paths["tiles"], paths["storage"], paths["run"],
                           on_event=events.append, on_step=on_step, max_epochs_this_run=max_epochs)
            report = {"steps": steps, "events": [e["event"] for e in events], "epochs": result.epochs_completed,
                      "resumed_from": str(result.resumed_from) if result.resumed_from else None,
                      "checkpoints": [e for e, _ in ckpt.list_checkpoints(paths["run"])]}
            Path(paths["out"], f"phase{phase}_rank{rank}.json").write_text(json.dumps(report))
            dist.barrier()
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _launch(paths: dict, config: TrainConfig) -> list[list[dict]]:
    mp.spawn(_worker, args=(_free_port(), paths, config.to_dict()), nprocs=WORLD_SIZE, join=True)
    return [[json.loads(Path(paths["out"], f"phase{p}_rank{r}.json").read_text()) for r in range(WORLD_SIZE)]
            for p in range(2)]


def test_ddp_gloo_two_processes_train_in_lockstep_and_resume(storage_root, tmp_path):
    tiles = write_fake_tiles(storage_root, n_train=4, n_test=0)
    out = tmp_path / "reports"
    out.mkdir()
    run_dir = tmp_path / "run"
    paths = {"tiles": str(tiles), "storage": str(storage_root), "run": str(run_dir), "out": str(out)}
    config = tiny_config(backbone="unet256", n_epochs=1, n_epochs_decay=1, batch_size=1)

    first, second = _launch(paths, config)
    # 4 tiles over 2 replicas, batch 1: 2 steps per epoch, the same parameters on both ranks after each.
    assert [s[0] for s in first[0]["steps"]] == [1, 2]
    assert first[0]["steps"] == first[1]["steps"]
    assert len({s[1] for s in first[0]["steps"]}) == 2  # the weights did change between steps
    assert first[0]["events"] == ["run_start", "epoch_end", "checkpoint", "run_end"]
    assert first[1]["events"] == []  # only rank 0 reports and writes

    assert first[0]["checkpoints"] == [1]
    assert not list(ckpt.checkpoint_dir(run_dir).glob(".*"))
    payload = ckpt.load_checkpoint(ckpt.checkpoint_path(run_dir, 1))
    assert payload["world_size"] == WORLD_SIZE and payload["global_step"] == 2
    rebuilt = build_model_generator(config)
    rebuilt.load_state_dict(payload["generator"])
    assert parameter_digest(rebuilt) == first[0]["steps"][-1][1]

    for report in second:
        assert report["resumed_from"].endswith("epoch_0001.pt") and report["epochs"] == 2
    assert [s[0] for s in second[0]["steps"]] == [3, 4]
    assert second[0]["steps"] == second[1]["steps"]
    assert [e for e, _ in ckpt.list_checkpoints(run_dir)] == [1, 2]
    assert ckpt.load_checkpoint(ckpt.checkpoint_path(run_dir, 2))["global_step"] == 4
