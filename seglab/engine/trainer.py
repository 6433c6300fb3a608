"""The training loop: `fit` runs epochs of `train_one_epoch` and `evaluate`, and keeps the run folder."""

from __future__ import annotations

import math
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from seglab.engine.checkpoint import atomic_save, make_checkpoint
from seglab.engine.device import Runtime, normalize
from seglab.engine.evaluate import evaluate
from seglab.engine.optim import ProgressSchedule
from seglab.engine.run_folder import MetricsLog, plot_curves


class TrainingError(RuntimeError):
    """Training cannot go on (e.g. the loss became NaN); the message says what was kept."""


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@dataclass
class Clock:
    """Progress through training, by steps or by a wall-clock budget, whichever is further along."""

    total_steps: int
    budget: float | None
    start: float = field(default_factory=time.perf_counter)
    step: int = 0

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    @property
    def progress(self) -> float:
        by_steps = self.step / max(1, self.total_steps) if self.budget is None else 0.0
        by_time = self.elapsed / self.budget if self.budget else 0.0
        return min(1.0, max(by_steps, by_time))

    @property
    def out_of_time(self) -> bool:
        return self.budget is not None and self.elapsed >= self.budget


@dataclass
class Trainer:
    model: torch.nn.Module
    loss_fn: torch.nn.Module
    optimizer: torch.optim.Optimizer
    schedule: ProgressSchedule
    runtime: Runtime
    preprocess: dict
    warmup_steps: int = 0
    scaler: torch.amp.GradScaler | None = None

    def step(self, images: torch.Tensor, masks: torch.Tensor, clock: Clock) -> float:
        warm = min(1.0, (clock.step + 1) / self.warmup_steps) if self.warmup_steps else 1.0
        self.schedule.set_progress(clock.progress, warm)
        x = normalize(images, self.preprocess["mean"], self.preprocess["std"], self.runtime)
        y = masks.to(self.runtime.device, non_blocking=True)
        with self.runtime.autocast():
            logits = self.model(x)
        loss = self.loss_fn(logits, y)
        if not torch.isfinite(loss):
            raise TrainingError(f"the loss became {float(loss)} at step {clock.step + 1}")
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            loss.backward()
            self.optimizer.step()
        clock.step += 1
        return float(loss.detach())

    def train_one_epoch(self, loader: DataLoader, clock: Clock, epoch: int, verbose: bool) -> tuple[float, float]:
        """Mean training loss and images/s; stops early when the time budget runs out."""
        self.model.train()
        total, images_seen, start = 0.0, 0, time.perf_counter()
        bar = tqdm(loader, desc=f"epoch {epoch}", leave=False, disable=None if verbose else True, file=sys.stderr)
        for images, masks, _ in bar:
            total += self.step(images, masks, clock) * len(images)
            images_seen += len(images)
            bar.set_postfix(loss=f"{total / images_seen:.4f}", img_s=f"{images_seen / (time.perf_counter() - start):.1f}")
            if clock.out_of_time:
                break
        bar.close()
        return total / max(1, images_seen), images_seen / max(1e-9, time.perf_counter() - start)


def fit(trainer: Trainer, train_loader: DataLoader, val_set, run_dir: Path, checkpoint_meta: dict, epochs: int,
        budget: float | None, batch: int, verbose: bool = True) -> dict:
    """Train, validate every epoch (at the training size), keep best.pt / last.pt, metrics.csv, curves.png."""
    clock = Clock(total_steps=epochs * len(train_loader), budget=budget)
    log = MetricsLog(run_dir / "metrics.csv")
    names = val_set.spec.classes.names
    best, best_epoch, epoch = -math.inf, 0, 0
    max_epochs = epochs if budget is None else sys.maxsize
    while epoch < max_epochs and not clock.out_of_time:
        epoch += 1
        epoch_start = time.perf_counter()
        try:
            train_loss, img_s = trainer.train_one_epoch(train_loader, clock, epoch, verbose)
        except TrainingError as e:
            kept = "last.pt holds the last good epoch" if epoch > 1 else "no checkpoint was written yet"
            raise TrainingError(f"{e} in epoch {epoch}; stopped ({kept}, in {run_dir}). "
                                "Try a lower lr or precision=fp32.") from None
        val = evaluate(trainer.model, val_set, trainer.runtime, trainer.preprocess, batch, trainer.loss_fn)
        data = val["dataset"]
        miou = data["miou"] if data["miou"] is not None else 0.0
        row = {"epoch": epoch, "train_loss": train_loss, "val_loss": val["loss"],
               "val_pixel_accuracy": data["pixel_accuracy"], "val_miou": miou}
        row.update({f"iou_{n}": v for n, v in zip(names, data["iou_per_class"])})
        row.update({"lr": trainer.optimizer.param_groups[0]["lr"], "img_per_s": img_s,
                    "seconds": time.perf_counter() - epoch_start})
        log.append(row)
        ckpt = make_checkpoint(trainer.model, epoch=epoch, metrics=row, optimizer=trainer.optimizer.state_dict(),
                               **checkpoint_meta)
        atomic_save(ckpt, run_dir / "last.pt")
        if miou > best:
            best, best_epoch = miou, epoch
            atomic_save(ckpt, run_dir / "best.pt")
        if verbose:
            print(f"epoch {epoch:3d}  train_loss {train_loss:.4f}  val_loss {val['loss']:.4f}  "
                  f"val_acc {data['pixel_accuracy'] or 0:.4f}  val_mIoU {miou:.4f}  {img_s:.1f} img/s  "
                  f"{row['seconds']:.1f}s", flush=True)
    plot_curves(log.rows, run_dir / "curves.png")
    return {"epochs": epoch, "best_epoch": best_epoch, "best_val_miou": best, "train_seconds": clock.elapsed}
