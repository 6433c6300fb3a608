"""What every task's `train` shares around the engine: resuming a run, its folder, its starting state,
the loader and the Trainer."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from seglab.config import Config, ConfigError, parse_time
from seglab.engine import distributed
from seglab.engine.checkpoint import load_checkpoint
from seglab.engine.ema import ModelEMA
from seglab.engine.loop import FitOptions
from seglab.engine.optim import ProgressSchedule, build_optimizer
from seglab.engine.sampler import EpochBatchSampler
from seglab.engine.run_folder import new_run_dir, write_config
from seglab.engine.trainer import Trainer, TrainState


def fit_options(cfg: Config, verbose: bool, selection=None) -> FitOptions:
    """The loop's options from the config keys (epochs, time, batch, metric, patience, val_every); `selection`:
    the task's metric -> sign table (None: the semantic one)."""
    extra = {} if selection is None else {"selection": dict(selection)}
    return FitOptions(cfg.epochs, parse_time(cfg.time), cfg.batch, metric=cfg.metric, patience=cfg.patience,
                      val_every=cfg.val_every, verbose=verbose, **extra)


def resume_checkpoint(cfg: Config) -> tuple[Config, dict | None, Path | None]:
    """For resume=..., the checkpoint, its run folder and its config (which replaces `cfg`)."""
    if not cfg.resume or cfg.resume.lower() in ("false", "no", "0"):
        return cfg, None, None
    if cfg.resume.lower() in ("true", "yes", "1"):
        path = Path(cfg.project) / (cfg.name or "train") / "last.pt"
    else:
        path = Path(cfg.resume)
        path = path / "last.pt" if path.is_dir() else path
    ckpt = load_checkpoint(path)
    if "state" not in ckpt or "optimizer" not in ckpt:
        raise ConfigError(f"{path}: has no training state to resume from (use last.pt)")
    resumed = dataclasses.replace(Config(), **ckpt["config"])
    return dataclasses.replace(resumed, resume="", verbose=cfg.verbose), ckpt, path.parent


def run_training(cfg: Config, check_metric, loop) -> Path:
    """The frame of an object task's train mode: resume (`resume=`), check `metric`, join the process group,
    `loop(cfg, ckpt, resumed_dir, group, device_name)` -> the run folder, leave the group whatever happens."""
    cfg, ckpt, resumed_dir = resume_checkpoint(cfg)
    cfg = dataclasses.replace(cfg, metric=check_metric(cfg))
    group, device_name = distributed.init(cfg.device)
    try:
        return loop(cfg, ckpt, resumed_dir, group, device_name)
    finally:
        distributed.shutdown(group)


def open_run_folder(cfg: Config, resumed_dir: Path | None, group: distributed.Group) -> Path:
    """The run folder (made by rank 0 only now that everything is built and checked; the resumed one
    when resuming) with the resolved config.yaml written into it."""
    run_dir = resumed_dir
    if run_dir is None:
        run_dir = distributed.broadcast_object(
            new_run_dir(cfg.project, cfg.name or "train", cfg.exist_ok) if group.is_main else None, group)
    if group.is_main:
        write_config(run_dir, cfg.to_dict())
    return run_dir


def start_state(trainer: Trainer, ckpt: dict | None) -> TrainState:
    """A fresh state, or the resumed checkpoint's (model, optimizer, RNG and the loop's counters)."""
    if ckpt is None:
        return TrainState()
    trainer.load_resume_state(ckpt)
    return TrainState(**ckpt["state"])


def resume_note(run_dir: Path, state: TrainState, resumed: bool) -> str:
    return f"resuming {run_dir} at epoch {state.epoch}, batch {state.batch}" if resumed else f"run folder {run_dir}"


def loader_and_trainer(cfg: Config, model, train_set, collate, runtime, preprocess: dict, group, batch_loss):
    """The task-independent training set-up: the seeded epoch sampler and its DataLoader, the optimizer and
    schedule, EMA, DistributedDataParallel under torchrun, and the Trainer with the task's `batch_loss`."""
    sampler = EpochBatchSampler(len(train_set), cfg.batch, cfg.seed, group.rank, group.world_size)
    loader = DataLoader(train_set, batch_sampler=sampler, collate_fn=collate, num_workers=cfg.workers,
                        persistent_workers=cfg.workers > 0)
    optimizer = build_optimizer(model, cfg)
    ema = ModelEMA(model, cfg.ema) if cfg.ema > 0 else None
    if group.active:
        ids = [runtime.device.index] if runtime.device.type == "cuda" else None
        model = torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)
    steps_per_epoch = -(-len(sampler) // max(1, cfg.accumulate))
    trainer = Trainer(
        model=model, loss_fn=None, optimizer=optimizer, schedule=ProgressSchedule(optimizer, cfg.schedule),
        runtime=runtime, preprocess=preprocess, total_steps=cfg.epochs * steps_per_epoch,
        warmup_steps=round(cfg.warmup_epochs * steps_per_epoch),
        scaler=torch.amp.GradScaler("cuda") if runtime.precision == "fp16" else None,
        ema=ema, clip_grad=cfg.clip_grad, accumulate=max(1, cfg.accumulate), batch_loss=batch_loss,
    )
    return sampler, loader, trainer
