"""The pix2pix training loop: reference-faithful update, GPU speed switches, DDP, checkpoints, exact resume.

Exact resume rests on three facts: (1) the data order and the flips are pure functions of (seed, epoch,
rank) — see data.EpochIndexSampler / flip_decision; (2) the global torch RNG (dropout) is reseeded from
(seed, epoch, rank) at the start of every epoch; (3) a checkpoint at an epoch boundary holds every piece of
mutable state (weights, BatchNorm buffers, Adam moments, scheduler, grad scaler). A run killed at any
moment therefore repeats, from its last checkpoint, exactly the computation an uninterrupted run performs.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
import torch.distributed as dist
from torch import nn

from lpd_pipeline.files import write_parquet_atomic
from lpd_pipeline.models.colorspace import encode_batch
from lpd_pipeline.models.abbins import prior_from_tiles
from lpd_pipeline.models.build import build_model_discriminator, build_model_generator
from lpd_pipeline.models.palette import histograms as palette_histograms
from lpd_pipeline.models.networks import GANLoss, init_weights
from lpd_pipeline.training.checkpoints import (
    CHECKPOINT_FORMAT,
    apply_retention,
    capture_rng_state,
    check_compatible,
    checkpoint_dir,
    checkpoint_path,
    export_generator,
    generator_path,
    history_path,
    latest_checkpoint,
    list_checkpoints,
    read_checkpoint_table,
    remove_stale_temp_files,
    restore_rng_state,
    save_torch_atomic,
    set_aside_unreadable_checkpoints,
    table_path,
    write_checkpoint_table,
    write_loss_history,
)
from lpd_pipeline.training.config import LOSS_NAMES, TrainConfig
from lpd_pipeline.training.ema import WeightAverage
from lpd_pipeline.training.perceptual import AlexNetFeatureLoss
from lpd_pipeline.training.remedies import colorfulness_loss, saturate_targets, to_rgb01
from lpd_pipeline.training.data import (
    EpochIndexSampler,
    TilePairDataset,
    mix_seed,
    build_tile_store,
    make_loader,
    open_tile_store,
    train_tile_size,
)

log = logging.getLogger(__name__)

EventHandler = Callable[[dict[str, Any]], None]
StepHook = Callable[[int, nn.Module, nn.Module], None]


class TrainingError(RuntimeError):
    """The run cannot start or continue (existing checkpoints without resume, bad data, ...)."""


# ---- devices and distribution ----------------------------------------------------------------------------
@dataclass
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    created_group: bool = False

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self, device: torch.device) -> None:
        if self.enabled:
            if device.type == "cuda":
                dist.barrier(device_ids=[device.index])
            else:
                dist.barrier()


def resolve_device(config: TrainConfig, local_rank: int = 0) -> torch.device:
    if config.device == "cuda" or (config.device == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise TrainingError("TrainConfig.device='cuda' but CUDA is not available on this machine")
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    return torch.device("cpu")


def init_distributed(config: TrainConfig) -> tuple[DistContext, torch.device]:
    """Read torchrun's RANK/WORLD_SIZE/LOCAL_RANK; join the process group (nccl on CUDA, gloo on CPU)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistContext(), resolve_device(config)
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    device = resolve_device(config, local_rank)
    created = False
    if not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
        created = True
    return DistContext(rank, world_size, local_rank, created), device


def configure_backends(config: TrainConfig, device: torch.device) -> None:
    """cudnn / determinism switches (process-wide, as torch offers them)."""
    if config.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.deterministic = True
        if config.cudnn_benchmark:
            log.warning("cudnn_benchmark ignored: deterministic=True requires it off")
        torch.backends.cudnn.benchmark = False
    else:
        torch.backends.cudnn.deterministic = False
        torch.backends.cudnn.benchmark = bool(config.cudnn_benchmark)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = not config.deterministic
        torch.backends.cudnn.allow_tf32 = not config.deterministic


# ---- the model and its update ----------------------------------------------------------------------------
def _linear_decay_rule(n_epochs: int, n_epochs_decay: int) -> Callable[[int], float]:
    """The reference's 'linear' lr rule: constant for n_epochs, then linear towards 0 over n_epochs_decay."""

    def factor(epoch: int) -> float:
        return 1.0 - max(0, epoch + 1 - n_epochs) / float(n_epochs_decay + 1)

    return factor


class Pix2PixModel:
    """Generator, discriminator, optimizers, schedulers and the pix2pix update of one batch.

    The update is the reference one (Isola et al., junyanz/pytorch-CycleGAN-and-pix2pix ``Pix2PixModel``):
    D on concat(input, G(input).detach()) vs concat(input, target), loss_D = (fake + real) / 2; then G with
    D frozen: GAN(D(concat(input, G(input))), real) + λ·L1(G(input), target). Options (off by default) change
    only what they name: labcls (G gives bin logits; D sees their annealed-mean decode; λ_ce·rebalanced CE
    replaces the L1 term), the colourfulness term, saturated targets, hinge loss, a spectrally normalised D.
    Call ``torch.manual_seed`` before constructing it: the weight init draws from the global RNG.
    """

    def __init__(self, config: TrainConfig, device: torch.device, dist_ctx: DistContext | None = None) -> None:
        self.config = config
        self.device = device
        self.dist = dist_ctx or DistContext()
        self.classes = config.color_space == "labcls"
        self.generator = init_weights(build_model_generator(config), config.init_gain)
        self.discriminator = init_weights(build_model_discriminator(config), config.init_gain)
        if self.dist.enabled and config.sync_batchnorm:
            self.generator = nn.SyncBatchNorm.convert_sync_batchnorm(self.generator)
            self.discriminator = nn.SyncBatchNorm.convert_sync_batchnorm(self.discriminator)
        self.memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
        for net in (self.generator, self.discriminator):
            net.to(device=device, memory_format=self.memory_format)

        betas = (config.beta1, config.beta2)
        # Fused Adam: one kernel per step instead of a Python loop over parameters; same math.
        fused = device.type in ("cpu", "cuda")
        self.optimizer_g = torch.optim.Adam(self.generator.parameters(), lr=config.lr, betas=betas, fused=fused)
        self.optimizer_d = torch.optim.Adam(self.discriminator.parameters(), lr=config.lr, betas=betas,
                                            fused=fused)
        rule = _linear_decay_rule(config.n_epochs, config.n_epochs_decay)
        self.scheduler_g = torch.optim.lr_scheduler.LambdaLR(self.optimizer_g, rule)
        self.scheduler_d = torch.optim.lr_scheduler.LambdaLR(self.optimizer_d, rule)

        self.amp_dtype = {"off": None, "bf16": torch.bfloat16, "fp16": torch.float16}[config.amp]
        self.scaler = torch.amp.GradScaler(device.type, enabled=config.amp == "fp16")
        self.criterion_gan = GANLoss(config.gan_mode).to(device)
        self.criterion_l1 = nn.L1Loss()
        # Frozen ImageNet AlexNet (the metric weights): built only when its loss is on.
        self.perceptual = AlexNetFeatureLoss().to(device) if config.lambda_perceptual else None

        # What runs forward: DDP-wrapped (gradients all-reduced) and/or compiled. The G step calls the plain
        # discriminator: its parameters are frozen there, and a DDP forward whose parameters get no
        # gradient would leave DDP waiting for a reduction that never comes.
        g_forward: nn.Module = self.generator
        d_forward: nn.Module = self.discriminator
        if self.dist.enabled:
            ids = [device.index] if device.type == "cuda" else None
            g_forward = nn.parallel.DistributedDataParallel(g_forward, device_ids=ids)
            d_forward = nn.parallel.DistributedDataParallel(d_forward, device_ids=ids)
        d_frozen: nn.Module = self.discriminator
        if config.compile:
            g_forward, d_forward = torch.compile(g_forward), torch.compile(d_forward)
            d_frozen = torch.compile(self.discriminator) if self.dist.enabled else d_forward
        self.g_forward, self.d_forward, self.d_frozen = g_forward, d_forward, d_frozen
        # ema_decay: the averaged generator (training/ema.py) that checkpoints hand to inference.
        self.average = WeightAverage(self.generator, config.ema_decay) if config.ema_decay else None

    def _set_d_requires_grad(self, flag: bool) -> None:
        for param in self.discriminator.parameters():
            param.requires_grad_(flag)

    def _autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()  # no per-call autocast bookkeeping on the fp32 path
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def train_mode(self) -> None:
        """Put both networks in training mode (once per epoch: it walks every module)."""
        self.generator.train()
        self.discriminator.train()

    def _backward_step(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer) -> None:
        if self.scaler.is_enabled():
            self.scaler.scale(loss).backward()
            self.scaler.step(optimizer)
        else:
            loss.backward()
            optimizer.step()

    def encode(self, gray_u8: torch.Tensor, color_u8: torch.Tensor):
        """uint8 tiles (any device) -> ``(inputs, targets, palette)``: floats on the model device, in its memory
        format; ``palette`` is None, or with ``config.palette`` each tile's own (histogram, given-flag), the flag
        drawn from the global RNG (the epoch's stream, restored on resume) with probability 1 - palette_drop."""
        non_blocking = self.device.type == "cuda"
        gray_u8 = gray_u8.to(self.device, non_blocking=non_blocking)
        color_u8 = color_u8.to(self.device, non_blocking=non_blocking)
        real_a, real_b = encode_batch(gray_u8, color_u8, self.config.color_space)
        real_b = saturate_targets(real_b, self.config.color_space, self.config.target_saturation)
        palette = None
        if self.config.palette:
            given = (torch.rand(len(color_u8)) >= self.config.palette_drop).to(self.device)
            palette = (palette_histograms(color_u8, self.generator.palette_centers), given)
        return (real_a.contiguous(memory_format=self.memory_format),
                real_b.contiguous(memory_format=self.memory_format), palette)

    def train_step(self, real_a: torch.Tensor, real_b: torch.Tensor, palette=None) -> torch.Tensor:
        """One pix2pix update (networks in train mode, see train_mode); ``palette`` as ``encode`` gives it.

        Returns the detached losses [G_GAN, G_L1, D_real, D_fake]."""
        with self._autocast():
            logits = self.g_forward(real_a, *palette) if palette is not None else self.g_forward(real_a)
            # labcls: D judges (and L1/colourfulness see) the annealed-mean decode of the bin logits.
            fake_b = self.generator.decode_ab(logits) if self.classes else logits

        # D: fake pairs -> 0, real pairs -> 1.
        self._set_d_requires_grad(True)
        self.optimizer_d.zero_grad(set_to_none=True)
        with self._autocast():
            loss_d_fake = self.criterion_gan(self.d_forward(torch.cat((real_a, fake_b.detach()), 1)), False)
            loss_d_real = self.criterion_gan(self.d_forward(torch.cat((real_a, real_b), 1)), True)
            loss_d = (loss_d_fake + loss_d_real) * 0.5
        self._backward_step(loss_d, self.optimizer_d)

        # G: fool the frozen D and stay close to the target in L1.
        self._set_d_requires_grad(False)
        self.optimizer_g.zero_grad(set_to_none=True)
        with self._autocast():
            loss_g_gan = self.criterion_gan(self.d_frozen(torch.cat((real_a, fake_b), 1)), True, generator=True)
            loss_g_l1 = self._reconstruction_loss(real_a, real_b, logits, fake_b)
            loss_g = loss_g_gan + loss_g_l1
        self._backward_step(loss_g, self.optimizer_g)
        if self.scaler.is_enabled():
            self.scaler.update()
        if self.average is not None:
            self.average.update(self.generator)
        return torch.stack((loss_g_gan, loss_g_l1, loss_d_real, loss_d_fake)).detach().float()

    def _reconstruction_loss(self, real_a: torch.Tensor, real_b: torch.Tensor, logits: torch.Tensor,
                             fake_b: torch.Tensor) -> torch.Tensor:
        """Everything of G's loss but the GAN term (reported as G_L1): λ·L1 (regression) or λ_ce·rebalanced CE
        (labcls: L1 on the decoded mean would pull it back to the brown average), plus the colourfulness term."""
        config = self.config
        if self.classes:
            loss = self.generator.class_loss(logits, real_b) * config.lambda_ce
        else:
            loss = self.criterion_l1(fake_b.float(), real_b.float()) * config.lambda_l1
        if config.lambda_colorfulness:
            loss = loss + colorfulness_loss(real_a, fake_b, real_b, config.color_space,
                                           config.colorfulness_scale) * config.lambda_colorfulness
        if config.lambda_perceptual:
            space = config.color_space
            loss = loss + self.perceptual(to_rgb01(real_a, fake_b, space), to_rgb01(real_a, real_b, space)) \
                * config.lambda_perceptual
        return loss

    def set_ab_prior(self, color_u8) -> None:
        """labcls: the smoothed empirical a*b* prior of the training tiles (uint8 RGB [N, H, W, 3]) into the
        generator (a buffer: saved with every checkpoint; a resumed run loads the saved one), and with
        ``prior_init`` the head's bias started at it (a resumed run then loads its trained weights over it)."""
        if self.classes:
            self.generator.set_prior(prior_from_tiles(color_u8, self.generator.centers.cpu()))
            if self.config.prior_init:
                self.generator.start_at_prior()

    def set_palette_presets(self, color_u8) -> None:
        """palette: the presets (``palette.learn_presets`` over the training tiles' palettes) into the generator
        (saved with it)."""
        if self.config.palette:
            self.generator.set_presets(color_u8)

    def end_epoch(self) -> None:
        self.scheduler_g.step()
        self.scheduler_d.step()

    @property
    def lr(self) -> float:
        return float(self.optimizer_g.param_groups[0]["lr"])

    def state(self) -> dict[str, Any]:
        """What a checkpoint holds. ``generator`` is what inference loads: with ``ema_decay`` the averaged
        weights, the trained ones then in ``generator_train`` (and the average's counter), for resume."""
        averaged = {} if self.average is None else {
            "generator": self.average.average.state_dict(), "generator_train": self.generator.state_dict(),
            "ema_updates": self.average.updates}
        return {
            "generator": self.generator.state_dict(),
            "discriminator": self.discriminator.state_dict(),
            "optimizer_g": self.optimizer_g.state_dict(),
            "optimizer_d": self.optimizer_d.state_dict(),
            "scheduler_g": self.scheduler_g.state_dict(),
            "scheduler_d": self.scheduler_d.state_dict(),
            "grad_scaler": self.scaler.state_dict(),
            **averaged,
        }

    def load_state(self, payload: dict[str, Any]) -> None:
        self.generator.load_state_dict(payload.get("generator_train", payload["generator"]))
        if self.average is not None:
            self.average.load_state_dict({"weights": payload["generator"], "updates": payload["ema_updates"]})
        self.discriminator.load_state_dict(payload["discriminator"])
        self.optimizer_g.load_state_dict(payload["optimizer_g"])
        self.optimizer_d.load_state_dict(payload["optimizer_d"])
        self.scheduler_g.load_state_dict(payload["scheduler_g"])
        self.scheduler_d.load_state_dict(payload["scheduler_d"])
        # The optimizers come back with the lr the saved schedule set for the next epoch. Recompute it with
        # this config's rule: the same value when the schedule is unchanged (the same arithmetic), and the
        # right one when the schedule was lengthened on resume.
        for optimizer, scheduler in ((self.optimizer_g, self.scheduler_g), (self.optimizer_d, self.scheduler_d)):
            for group, base_lr, rule in zip(optimizer.param_groups, scheduler.base_lrs, scheduler.lr_lambdas):
                group["lr"] = base_lr * rule(scheduler.last_epoch)
            scheduler._last_lr = [group["lr"] for group in optimizer.param_groups]
        if payload.get("grad_scaler") and self.scaler.is_enabled():
            self.scaler.load_state_dict(payload["grad_scaler"])


# ---- the run ---------------------------------------------------------------------------------------------
@dataclass
class TrainResult:
    """What one call of ``train`` did and where its outputs are."""

    run_dir: Path
    epochs_completed: int
    total_epochs: int
    finished: bool
    resumed_from: Path | None
    checkpoints: list[Path] = field(default_factory=list)
    history: list[dict[str, float]] = field(default_factory=list)
    generator_path: Path | None = None
    table_path: Path | None = None

    @property
    def last_losses(self) -> dict[str, float]:
        return {k: self.history[-1][k] for k in LOSS_NAMES} if self.history else {}


def _seed_everything(seed: int) -> None:
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _format_eta(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


# Where restart moves a run's previous outputs (one timestamped folder per restart).
PREVIOUS_RUNS_DIR = "previous_runs"


def _prepare_run_dir(run_dir: Path, *, resume: bool, restart: bool) -> None:
    """Rank 0 only: set a run aside for restart, or refuse to silently overwrite one when resume is off."""
    if restart:
        _archive_previous_run(run_dir)
    elif not resume and list_checkpoints(run_dir):
        raise TrainingError(
            f"{run_dir} already holds checkpoints; resume from them (resume=True) or start over (restart=True)"
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temp_files(run_dir)
    if resume:
        set_aside_unreadable_checkpoints(run_dir)


def _archive_previous_run(run_dir: Path) -> Path | None:
    """Move the run's checkpoints and outputs to ``<run_dir>/previous_runs/<UTC time>/`` instead of deleting
    them: a restart (after a dataset refresh, say) must not destroy weeks of training. Delete that folder to
    reclaim the space."""
    # (Not dagster_run_config.json: the asset writes the new run's settings there before training starts; the
    # old settings live on in every archived checkpoint.)
    candidates = (checkpoint_dir(run_dir), table_path(run_dir), history_path(run_dir), generator_path(run_dir))
    outputs = [path for path in candidates if path.exists()]
    if not outputs:
        return None
    base = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    archive, suffix = run_dir / PREVIOUS_RUNS_DIR / base, 0
    while archive.exists():  # two restarts within one second
        suffix += 1
        archive = archive.with_name(f"{base}-{suffix}")
    archive.mkdir(parents=True)
    for path in outputs:
        os.replace(path, archive / path.name)
    # The checkpoint table lists absolute paths: point them at the archived files, or the old table would
    # name the new run's checkpoints once they are written under the same names.
    archived_table = table_path(archive)
    if archived_table.exists():
        try:
            table = read_checkpoint_table(archive)
            paths = table["path"]
        except (OSError, ValueError, KeyError) as exc:  # a damaged table must not stop the restart meant to recover
            log.warning("restart: archived %s left as it was (unreadable: %s)", archived_table, exc)
        else:
            old_dir, new_dir = str(checkpoint_dir(run_dir)), str(checkpoint_dir(archive))
            table["path"] = [new_dir + p[len(old_dir):] if p.startswith(old_dir) else p for p in paths]
            write_parquet_atomic(table, archived_table)
    log.info("restart: previous run moved to %s", archive)
    return archive


def train(
    config: TrainConfig,
    tiles_parquet: str | os.PathLike,
    storage_root: str | os.PathLike,
    run_dir: str | os.PathLike,
    *,
    resume: bool = True,
    restart: bool = False,
    on_event: EventHandler | None = None,
    max_epochs_this_run: int | None = None,
    store_dir: str | os.PathLike | None = None,
    on_step: StepHook | None = None,
) -> TrainResult:
    """Train (or continue training) pix2pix on the ``train`` split of ``tiles_parquet``.

    Continues from the newest checkpoint in ``run_dir`` unless ``restart`` (which first moves the run's
    checkpoints and outputs to ``previous_runs/<time>/``). ``on_event`` (rank 0 only) receives dicts:
    ``run_start``, ``epoch_end`` (losses, lr, img_per_s, eta_s, wall_time_s), ``checkpoint`` (epoch, path)
    and ``run_end``. ``max_epochs_this_run`` stops early (after a checkpoint) so long schedules can be run in
    slices. ``store_dir`` defaults to
    ``<storage_root>/training/tile_store/train``, shared by runs on the same tiles. ``on_step(global_step,
    generator, discriminator)`` is called on every rank after each update (monitoring and tests).
    Under torchrun (WORLD_SIZE > 1) every rank calls this; rank 0 alone writes files.
    """
    config.validate()
    run_dir = Path(run_dir).resolve()
    storage_root = Path(storage_root).resolve()
    store_dir = Path(store_dir) if store_dir is not None else storage_root / "training" / "tile_store" / "train"
    if max_epochs_this_run is not None and max_epochs_this_run < 1:
        raise TrainingError(f"max_epochs_this_run must be >= 1, got {max_epochs_this_run}")

    dist_ctx, device = init_distributed(config)
    emit = on_event if (on_event is not None and dist_ctx.is_main) else (lambda event: None)
    try:
        return _train(config, Path(tiles_parquet), storage_root, run_dir, store_dir, dist_ctx, device,
                      resume=resume, restart=restart, emit=emit, max_epochs_this_run=max_epochs_this_run,
                      on_step=on_step)
    finally:
        if dist_ctx.created_group and dist.is_initialized():
            dist.destroy_process_group()


@dataclass
class _RunState:
    """The counters a run carries from epoch to epoch (and a checkpoint restores)."""

    start_epoch: int = 0
    global_step: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    wall_time_s: float = 0.0
    resumed_from: Path | None = None


def _train(
    config: TrainConfig,
    tiles_parquet: Path,
    storage_root: Path,
    run_dir: Path,
    store_dir: Path,
    dist_ctx: DistContext,
    device: torch.device,
    *,
    resume: bool,
    restart: bool,
    emit: EventHandler,
    max_epochs_this_run: int | None,
    on_step: StepHook | None,
) -> TrainResult:
    """The run in its phases: prepare the store, build the model, resume, run epochs (checkpoints), finish."""
    configure_backends(config, device)
    store = _prepare_store(config, tiles_parquet, storage_root, run_dir, store_dir, dist_ctx, device,
                           resume=resume, restart=restart)
    _seed_everything(config.seed)
    model = Pix2PixModel(config, device, dist_ctx)
    model.set_ab_prior(store.color())
    model.set_palette_presets(store.color())
    state = _resume(model, config, run_dir, store, dist_ctx) if resume else _RunState()

    total_epochs = config.total_epochs
    end_epoch = total_epochs if max_epochs_this_run is None else min(total_epochs,
                                                                     state.start_epoch + max_epochs_this_run)
    dataset = TilePairDataset(store, flip=config.flip, seed=config.seed, ink_augment=config.ink_augment)
    sampler = EpochIndexSampler(store.n, seed=config.seed, rank=dist_ctx.rank, world_size=dist_ctx.world_size)
    loader = make_loader(dataset, sampler, batch_size=config.batch_size, num_workers=config.num_workers,
                         pin_memory=device.type == "cuda", seed=config.seed)
    table_rows = read_checkpoint_table(run_dir).to_dict("records") if dist_ctx.is_main else []
    _announce(config, run_dir, store, dist_ctx, device, state, end_epoch, emit)

    run_started = time.perf_counter()
    for epoch in range(state.start_epoch, end_epoch):
        record = _run_epoch(model, loader, sampler, epoch, state, dist_ctx, device, on_step)
        done = epoch + 1
        mean_epoch_time = (time.perf_counter() - run_started) / (done - state.start_epoch)
        eta_s = mean_epoch_time * (total_epochs - done)
        emit({"event": "epoch_end", "total_epochs": total_epochs, "eta_s": eta_s, **record})
        if dist_ctx.is_main:
            write_loss_history(run_dir, state.history)
            log.info("epoch %d/%d G_GAN=%.4f G_L1=%.4f D_real=%.4f D_fake=%.4f lr=%.2e img/s=%.2f ETA %s",
                     done, total_epochs, *(record[name] for name in LOSS_NAMES), record["lr"],
                     record["img_per_s"], _format_eta(eta_s))
        if done % config.checkpoint_every == 0 or done == end_epoch:
            if dist_ctx.is_main:
                _save_checkpoint(model, config, run_dir, store.fingerprint, state, record, table_rows,
                                 dist_ctx.world_size, emit)
            dist_ctx.barrier(device)
    return _finish(run_dir, state, end_epoch, total_epochs, dist_ctx.is_main, emit)


def _prepare_store(config: TrainConfig, tiles_parquet: Path, storage_root: Path, run_dir: Path, store_dir: Path,
                   dist_ctx: DistContext, device: torch.device, *, resume: bool, restart: bool):
    """Rank 0 checks the tile size, prepares the run folder and decodes the tiles; the others wait, then open
    the same store. A failure on rank 0 is raised on every rank."""
    error: BaseException | None = None
    store = None
    if dist_ctx.is_main:
        try:
            size = train_tile_size(tiles_parquet)  # checked first: cheap, and decoding every tile is not
            if size != config.tile_size:
                raise TrainingError(
                    f"the training tiles in {tiles_parquet} are {size}px but the config says tile_size="
                    f"{config.tile_size}; pass --tile-size {size} (tile_size in a config) or re-cut the dataset"
                )
            _prepare_run_dir(run_dir, resume=resume, restart=restart)
            store = build_tile_store(tiles_parquet, storage_root, "train", store_dir)
        except BaseException as exc:  # re-raised below, after releasing the other ranks
            error = exc
    if dist_ctx.enabled:
        flag = torch.tensor([1 if error else 0], device=device)
        dist.broadcast(flag, 0)
        if flag.item():
            if error is None:
                raise TrainingError("rank 0 failed to prepare the run (see its log)")
    if error is not None:
        raise error
    return store if store is not None else open_tile_store(store_dir)


def _resume(model: Pix2PixModel, config: TrainConfig, run_dir: Path, store, dist_ctx: DistContext) -> _RunState:
    """Load the newest readable checkpoint into ``model`` and the RNGs (every rank loads the same file, which
    rank 0 wrote before the previous barrier); a fresh state when there is none."""
    found = latest_checkpoint(run_dir)
    if found is None:
        return _RunState()
    path, payload = found
    changed = check_compatible(payload, path, config, store.fingerprint, dist_ctx.world_size)
    if changed and dist_ctx.is_main:
        log.warning("resuming %s with a changed schedule (%s): the lr rule follows the new schedule from the "
                    "next epoch", path, ", ".join(changed))
    _warn_other_threads(payload, path, dist_ctx)
    model.load_state(payload)
    restore_rng_state(payload["rng"])
    state = _RunState(int(payload["epoch"]), int(payload["global_step"]), list(payload.get("loss_history", [])),
                      float(payload.get("wall_time_s", 0.0)), path)
    if dist_ctx.is_main:
        log.info("resuming from %s (epoch %d, step %d)", path, state.start_epoch, state.global_step)
    return state


def _warn_other_threads(payload: dict[str, Any], path: Path, dist_ctx: DistContext) -> None:
    """A resume at another torch thread count goes on, with a warning: CPU kernels split their sums by thread,
    so float rounding (and, amplified by GAN training, the final weights) depends on the count (measured: one
    update at 1 vs 2 threads already differs by ~1e-5 in the weights, for every recipe)."""
    saved = payload.get("torch_threads")
    if saved is not None and int(saved) != torch.get_num_threads() and dist_ctx.is_main:
        log.warning("resuming %s at %d torch threads; it was written at %d: the run goes on, but its weights will "
                    "not be bit-identical to an uninterrupted run's (set OMP_NUM_THREADS=%d for that)", path,
                    torch.get_num_threads(), int(saved), int(saved))


def _announce(config: TrainConfig, run_dir: Path, store, dist_ctx: DistContext, device: torch.device,
              state: _RunState, end_epoch: int, emit: EventHandler) -> None:
    total_epochs = config.total_epochs
    emit({"event": "run_start", "run_dir": str(run_dir), "start_epoch": state.start_epoch, "end_epoch": end_epoch,
          "total_epochs": total_epochs,
          "resumed_from": str(state.resumed_from) if state.resumed_from else None,
          "world_size": dist_ctx.world_size, "device": str(device), "n_tiles": store.n})
    if dist_ctx.is_main and state.start_epoch >= end_epoch:
        log.info("nothing to train: %s is already at epoch %d of %d", run_dir, state.start_epoch, total_epochs)
    elif dist_ctx.is_main:
        log.info("training %s/%s on %d tiles, epochs %d..%d of %d, device %s, world size %d",
                 config.backbone, config.color_space, store.n, state.start_epoch + 1, end_epoch, total_epochs,
                 device, dist_ctx.world_size)


def _run_epoch(model: Pix2PixModel, loader, sampler: EpochIndexSampler, epoch: int, state: _RunState,
               dist_ctx: DistContext, device: torch.device, on_step: StepHook | None) -> dict[str, float]:
    """One epoch of updates; appends its record (mean losses, lr, img/s, times) to ``state.history``."""
    config = model.config
    epoch_started = time.perf_counter()
    torch.manual_seed(mix_seed(config.seed, epoch, dist_ctx.rank, 0xD0))  # dropout stream of this epoch
    sampler.set_epoch(epoch)
    model.train_mode()
    lr = model.lr
    loss_sums = torch.zeros(len(LOSS_NAMES), device=device, dtype=torch.float64)
    batches = 0
    images = 0
    iterator = loader
    bar = None
    if dist_ctx.is_main and sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(loader, total=len(loader), desc=f"epoch {epoch + 1}/{config.total_epochs}", leave=False)
        iterator = bar
    for gray_u8, color_u8 in iterator:
        batch = model.encode(gray_u8, color_u8)
        loss_sums += model.train_step(*batch)
        batches += 1
        images += batch[0].shape[0]
        state.global_step += 1
        if on_step is not None:
            on_step(state.global_step, model.generator, model.discriminator)
    if bar is not None:
        bar.close()
    model.end_epoch()

    counts = torch.tensor([batches, images], device=device, dtype=torch.float64)
    if dist_ctx.enabled:
        dist.all_reduce(loss_sums)
        dist.all_reduce(counts)
    means = (loss_sums / counts[0].clamp(min=1)).tolist()
    epoch_time = time.perf_counter() - epoch_started
    state.wall_time_s += epoch_time
    record = {"epoch": epoch + 1, **dict(zip(LOSS_NAMES, means)), "lr": lr,
              "img_per_s": float(counts[1].item()) / max(epoch_time, 1e-9),
              "epoch_time_s": epoch_time, "wall_time_s": state.wall_time_s, "global_step": state.global_step}
    state.history.append(record)
    return record


def _save_checkpoint(model: Pix2PixModel, config: TrainConfig, run_dir: Path, fingerprint: str, state: _RunState,
                     record: dict[str, float], table_rows: list[dict[str, Any]], world_size: int,
                     emit: EventHandler) -> None:
    """Rank 0: the checkpoint of the epoch just finished, retention, the checkpoint table, the event."""
    done = int(record["epoch"])
    payload = {
        "format": CHECKPOINT_FORMAT,
        "epoch": done,
        "global_step": state.global_step,
        "config": config.to_dict(),
        "data_fingerprint": fingerprint,
        **model.state(),
        "rng": capture_rng_state(),
        "loss_history": state.history,
        "wall_time_s": state.wall_time_s,
        "world_size": world_size,
        "torch_version": str(torch.__version__),
        "torch_threads": torch.get_num_threads(),
    }
    path = save_torch_atomic(payload, checkpoint_path(run_dir, done))
    deleted = apply_retention(run_dir, config.keep_every, config.checkpoint_every)
    table_rows.append({"epoch": done, "path": str(path), "global_step": state.global_step,
                       **{name: record[name] for name in LOSS_NAMES}, "lr": record["lr"],
                       "wall_time_s": state.wall_time_s})
    write_checkpoint_table(run_dir, table_rows)
    log.info("checkpoint epoch %d written: %s%s", done, path,
             f" ({len(deleted)} old one(s) removed by retention)" if deleted else "")
    emit({"event": "checkpoint", "epoch": done, "path": str(path), "deleted": [str(p) for p in deleted]})


def _finish(run_dir: Path, state: _RunState, end_epoch: int, total_epochs: int, is_main: bool,
            emit: EventHandler) -> TrainResult:
    """Export the newest weights as a small inference file (rank 0) and report the run."""
    checkpoints = [p for _, p in list_checkpoints(run_dir)]
    exported = None
    if is_main and checkpoints:
        # The newest weights as a small inference file, refreshed at the end of every call.
        exported = export_generator(checkpoints[-1], generator_path(run_dir), dtype="fp32")
    finished = end_epoch >= total_epochs
    result = TrainResult(run_dir, end_epoch, total_epochs, finished, state.resumed_from, checkpoints,
                         state.history, exported, table_path(run_dir) if checkpoints else None)
    emit({"event": "run_end", "epochs_completed": end_epoch, "total_epochs": total_epochs, "finished": finished,
          "checkpoints": [str(p) for p in checkpoints],
          "generator_path": str(exported) if exported else None})
    return result
