"""One training step (`Trainer.step`) and the state a run carries (`TrainState`).

The loop over epochs is in seglab/engine/loop.py, what it writes in seglab/engine/sinks.py.
Everything needed to continue after a crash lives in `TrainState` plus the model, optimizer,
scaler, EMA and RNG states (`Trainer.resume_state`), so a resumed run ends with the same weights
as an uninterrupted one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import torch

from seglab.engine import rng
from seglab.engine.device import Runtime, normalize
from seglab.engine.ema import ModelEMA
from seglab.engine.optim import ProgressSchedule

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


def semantic_batch_loss(trainer: "Trainer", images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Per-pixel classification: logits of the normalised batch against the class-id masks.

    A model that declares `set_loss = True` computes its own loss from (x, masks) (a dict of losses, summed;
    e.g. the query model's Hungarian-matched set loss) instead of `loss_fn` on its logits."""
    x = normalize(images, trainer.preprocess["mean"], trainer.preprocess["std"], trainer.runtime)
    y = masks.to(trainer.runtime.device, non_blocking=True)
    with trainer.runtime.autocast():
        if getattr(trainer.module, "set_loss", False):
            return sum(loss.float() for loss in trainer.model(x, y).values())
        logits = trainer.model(x)
    return trainer.loss_fn(logits, y)


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
    batch_loss: Callable[["Trainer", object, object], torch.Tensor] | None = None  # None: semantic_batch_loss

    @property
    def module(self) -> torch.nn.Module:
        """The bare model (without the DDP wrapper)."""
        return getattr(self.model, "module", self.model)

    @property
    def eval_model(self) -> torch.nn.Module:
        return self.ema.model if self.ema is not None else self.module

    def step(self, images, targets, state: TrainState, progress: float) -> float:
        """Forward and backward one batch; an optimizer step every `accumulate` batches.

        `images` uint8 [N, 3, H, W] and `targets` as the task's dataset gives them (masks for
        semantic); `batch_loss` (a task's) turns them into the loss, by default `loss_fn(model(x), masks)`."""
        warm = min(1.0, (state.step + 1) / self.warmup_steps) if self.warmup_steps else 1.0
        self.schedule.set_progress(progress, warm)
        loss = (self.batch_loss or semantic_batch_loss)(self, images, targets)
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
