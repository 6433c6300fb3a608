"""What every task's `train` shares around the engine: resuming a run, its folder, its starting state."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from seglab.config import Config, ConfigError
from seglab.engine import distributed
from seglab.engine.checkpoint import load_checkpoint
from seglab.engine.run_folder import new_run_dir, write_config
from seglab.engine.trainer import Trainer, TrainState


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
