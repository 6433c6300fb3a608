"""The training loop: `Trainer.step` for one batch, `fit` for epochs, validation, checkpoints and stopping.

Everything `fit` needs to continue after a crash lives in `TrainState` plus the model, optimizer,
scaler, EMA and RNG states, all written to last.pt (atomically) at every epoch end and every
`save_every` batches, so a resumed run ends with the same weights as an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from seglab.engine import rng
from seglab.engine.checkpoint import atomic_save, make_checkpoint
from seglab.engine.device import Runtime, normalize
from seglab.engine.distributed import Group, all_reduce_sum, barrier
from seglab.engine.ema import ModelEMA
from seglab.engine.evaluate import evaluate
from seglab.engine.optim import ProgressSchedule
from seglab.engine.run_folder import MetricsLog, plot_curves
from seglab.engine.sampler import EpochBatchSampler

SELECTION_METRICS = {"miou": 1.0, "pixel_accuracy": 1.0, "mean_dice": 1.0, "loss": -1.0}  # sign: higher is better


class TrainingError(RuntimeError):
    """Training cannot go on (e.g. the loss became NaN); the message says what was kept."""


@dataclass
class TrainState:
    epoch: int = 1  # the epoch in progress, 1-based
    batch: int = 0  # batches finished in it
    step: int = 0  # optimizer steps so far
    elapsed: float = 0.0  # training seconds so far (counts against the time budget)
    loss_sum: float = 0.0  # running sum of this epoch's train loss over images
    seen: int = 0
    best: float = -math.inf
    best_epoch: int = 0
    bad_epochs: int = 0  # epochs since the best one (early stopping)
    history: list = field(default_factory=list)  # metrics.csv rows so far


@dataclass
class Trainer:
    model: torch.nn.Module  # what is trained (DDP-wrapped when distributed)
    loss_fn: torch.nn.Module
    optimizer: torch.optim.Optimizer
    schedule: ProgressSchedule
    runtime: Runtime
    preprocess: dict
    total_steps: int = 1
    warmup_steps: int = 0
    scaler: torch.amp.GradScaler | None = None
    ema: ModelEMA | None = None
    clip_grad: float = 0.0
    accumulate: int = 1

    @property
    def module(self) -> torch.nn.Module:
        """The bare model (without the DDP wrapper)."""
        return getattr(self.model, "module", self.model)

    @property
    def eval_model(self) -> torch.nn.Module:
        return self.ema.model if self.ema is not None else self.module

    def step(self, images: torch.Tensor, masks: torch.Tensor, state: TrainState, progress: float) -> float:
        """Forward and backward one batch; an optimizer step every `accumulate` batches."""
        warm = min(1.0, (state.step + 1) / self.warmup_steps) if self.warmup_steps else 1.0
        self.schedule.set_progress(progress, warm)
        x = normalize(images, self.preprocess["mean"], self.preprocess["std"], self.runtime)
        y = masks.to(self.runtime.device, non_blocking=True)
        with self.runtime.autocast():
            logits = self.model(x)
        loss = self.loss_fn(logits, y)
        if not torch.isfinite(loss):
            raise TrainingError(f"the loss became {float(loss.detach())} at batch {state.batch + 1}")
        scaled = loss / self.accumulate
        (self.scaler.scale(scaled) if self.scaler is not None else scaled).backward()
        if (state.batch + 1) % self.accumulate == 0:
            self.optimizer_step()
            state.step += 1
        return float(loss.detach())

    def optimizer_step(self) -> None:
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        if self.clip_grad > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.clip_grad)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.ema is not None:
            self.ema.update(self.module)

    def resume_state(self) -> dict:
        """Everything besides TrainState that an exact resume needs."""
        out = {"optimizer": self.optimizer.state_dict(), "rng": rng.capture()}
        if self.scaler is not None:
            out["scaler"] = self.scaler.state_dict()
        if self.ema is not None:
            out["train_model"] = {k: v.detach().cpu() for k, v in self.module.state_dict().items()}
        return out

    def load_resume_state(self, ckpt: dict) -> None:
        if self.ema is not None:
            self.module.load_state_dict(ckpt["train_model"])
            self.ema.load_state_dict(ckpt["model"])
        else:
            self.module.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        if self.scaler is not None and "scaler" in ckpt:
            self.scaler.load_state_dict(ckpt["scaler"])
        rng.restore(ckpt["rng"])


@dataclass
class FitOptions:
    epochs: int
    budget: float | None  # seconds; when set, it governs instead of `epochs`
    batch: int
    metric: str = "miou"
    patience: int = 0  # epochs without improvement before stopping; 0 = never
    save_every: int = 0  # also write last.pt every N batches; 0 = at epoch ends only
    verbose: bool = True


def _save(trainer: Trainer, run_dir: Path, name: str, state: TrainState, meta: dict, group: Group) -> None:
    if group.is_main:
        ckpt = make_checkpoint(trainer.eval_model, epoch=len(state.history), metrics=state.history[-1] if state.history else {},
                               state=dataclasses.asdict(state), **trainer.resume_state(), **meta)
        atomic_save(ckpt, run_dir / name)


def _selection_value(metric: str, val: dict) -> float:
    value = val["loss"] if metric == "loss" else val["dataset"][metric]
    return -math.inf if value is None else SELECTION_METRICS[metric] * value


def _validate(trainer: Trainer, val_set, state: TrainState, opts: FitOptions, group: Group, epoch_seconds: float,
              img_s: float) -> dict:
    val = evaluate(trainer.eval_model, val_set, trainer.runtime, trainer.preprocess, max(1, opts.batch // group.world_size),
                   trainer.loss_fn, indices=range(group.rank, len(val_set), group.world_size), group=group)
    loss_sum, seen = all_reduce_sum([state.loss_sum, state.seen], group, trainer.runtime.device)
    data, names = val["dataset"], val_set.spec.classes.names
    row = {"epoch": state.epoch, "train_loss": loss_sum / max(1, seen), "val_loss": val["loss"],
           "val_pixel_accuracy": data["pixel_accuracy"], "val_miou": data["miou"]}
    row.update({f"iou_{n}": v for n, v in zip(names, data["iou_per_class"])})
    row.update({"lr": trainer.optimizer.param_groups[0]["lr"], "img_per_s": img_s * group.world_size,
                "seconds": epoch_seconds})
    return {"row": row, "value": _selection_value(opts.metric, val)}


def fit(trainer: Trainer, loader: DataLoader, sampler: EpochBatchSampler, val_set, run_dir: Path, meta: dict,
        state: TrainState, opts: FitOptions, group: Group = Group(), writer=None) -> TrainState:
    """Train from `state` until the epochs, the time budget or the patience run out."""
    if opts.metric not in SELECTION_METRICS:
        raise KeyError(f"unknown metric '{opts.metric}'. Valid metrics: {', '.join(SELECTION_METRICS)}")
    log = MetricsLog(run_dir / "metrics.csv") if group.is_main else None
    if log is not None:
        log.rewrite(state.history)
    start = time.perf_counter() - state.elapsed
    out_of_time = lambda: opts.budget is not None and time.perf_counter() - start >= opts.budget  # noqa: E731
    while (opts.budget is not None or state.epoch <= opts.epochs) and not out_of_time():
        sampler.set_epoch(state.epoch, state.batch)
        trainer.model.train()
        epoch_start, images_seen = time.perf_counter(), 0
        bar = tqdm(loader, desc=f"epoch {state.epoch}", leave=False, file=sys.stderr,
                   disable=None if opts.verbose and group.is_main else True)
        for images, masks, _ in bar:
            progress = (min(1.0, (time.perf_counter() - start) / opts.budget) if opts.budget
                        else state.step / max(1, trainer.total_steps))
            try:
                loss = trainer.step(images, masks, state, progress)
            except TrainingError as e:
                kept = f"last.pt in {run_dir} holds the last good state" if (run_dir / "last.pt").exists() else "no checkpoint was written"
                raise TrainingError(f"{e} of epoch {state.epoch}; stopped ({kept}). Try a lower lr or precision=fp32.") from None
            state.batch += 1
            state.loss_sum += loss * len(images)
            state.seen += len(images)
            images_seen += len(images)
            state.elapsed = time.perf_counter() - start
            bar.set_postfix(loss=f"{state.loss_sum / state.seen:.4f}",
                            img_s=f"{images_seen * group.world_size / (time.perf_counter() - epoch_start):.1f}")
            if opts.save_every and state.batch % opts.save_every == 0:
                _save(trainer, run_dir, "last.pt", state, meta, group)
            if out_of_time():
                break
        bar.close()
        if state.batch % trainer.accumulate:
            trainer.optimizer_step()
            state.step += 1
        epoch_seconds = time.perf_counter() - epoch_start
        result = _validate(trainer, val_set, state, opts, group, epoch_seconds, images_seen / max(1e-9, epoch_seconds))
        row = result["row"]
        state.history.append(row)
        improved = result["value"] > state.best
        if improved:
            state.best, state.best_epoch, state.bad_epochs = result["value"], state.epoch, 0
        else:
            state.bad_epochs += 1
        if log is not None:
            log.append(row)
            if writer is not None:
                for key, value in row.items():
                    if isinstance(value, float):
                        writer.add_scalar(key, value, state.epoch)
        if opts.verbose and group.is_main:
            print(f"epoch {state.epoch:3d}  train_loss {row['train_loss']:.4f}  val_loss {row['val_loss']:.4f}  "
                  f"val_acc {row['val_pixel_accuracy'] or 0:.4f}  val_mIoU {row['val_miou'] or 0:.4f}  "
                  f"{row['img_per_s']:.1f} img/s  {epoch_seconds:.1f}s", flush=True)
        finished_epoch = state.epoch
        state.epoch, state.batch, state.loss_sum, state.seen = state.epoch + 1, 0, 0.0, 0
        state.elapsed = time.perf_counter() - start
        _save(trainer, run_dir, "last.pt", state, meta, group)
        if improved:
            _save(trainer, run_dir, "best.pt", state, meta, group)
        if opts.patience and state.bad_epochs >= opts.patience:
            if opts.verbose and group.is_main:
                print(f"early stop: no {opts.metric} improvement for {opts.patience} epochs "
                      f"(best at epoch {state.best_epoch}, stopped after epoch {finished_epoch})")
            break
    barrier(group)
    if log is not None and state.history:
        plot_curves(state.history, run_dir / "curves.png")
    return state
