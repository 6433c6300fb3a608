"""The training loop in small named steps: `train_one_epoch`, `validate_epoch`, `update_best`, `fit`.

`fit` knows nothing about files: validation is a callable it is given (`validate(model) -> result`,
the dict seglab's evaluators return, with "dataset" metrics and "loss"), and everything written
(checkpoints, metrics.csv, TensorBoard, the console line) comes from the sinks it is given
(seglab/engine/sinks.py). With no sinks, `fit` trains and returns the state: nothing touches disk.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping

from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from seglab.engine.distributed import Group, all_reduce_sum, barrier
from seglab.engine.sampler import EpochBatchSampler
from seglab.engine.trainer import SELECTION_METRICS, Trainer, TrainingError, TrainState

Validate = Callable[[nn.Module], dict]


@dataclass
class FitOptions:
    epochs: int
    budget: float | None  # seconds; when set, it governs instead of `epochs`
    batch: int
    metric: str = "miou"
    patience: int = 0  # validations without improvement before stopping; 0 = never
    val_every: int = 1  # validate every N epochs, and always after the last one
    verbose: bool = True
    selection: Mapping[str, float] = field(default_factory=lambda: dict(SELECTION_METRICS))  # metric -> sign (the task's)


@dataclass
class Clock:
    """Training seconds, counted on from a resumed state's `elapsed`."""

    budget: float | None
    start: float

    @classmethod
    def resume(cls, budget: float | None, elapsed: float) -> "Clock":
        return cls(budget, time.perf_counter() - elapsed)

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def out_of_time(self) -> bool:
        return self.budget is not None and self.elapsed() >= self.budget

    def progress(self, state: TrainState, total_steps: int) -> float:
        """Schedule progress in [0, 1]: by time under a budget, else by optimizer steps."""
        if self.budget:
            return min(1.0, self.elapsed() / self.budget)
        return state.step / max(1, total_steps)


class Sink:
    """What a run writes or shows; every hook is optional (override the ones you need)."""

    def fit_start(self, state: TrainState) -> None: ...
    def batch_end(self, trainer: Trainer, state: TrainState) -> None: ...
    def epoch_end(self, trainer: Trainer, state: TrainState, row: dict, improved: bool) -> None: ...
    def fit_end(self, state: TrainState) -> None: ...

    def kept(self) -> str | None:
        """After a failure: what this sink kept (e.g. "last.pt in runs/x holds the last good state")."""
        return None


def train_one_epoch(trainer: Trainer, loader: DataLoader, sampler: EpochBatchSampler, state: TrainState,
                    clock: Clock, on_batch: Callable[[TrainState], None] = lambda state: None,
                    show_progress: bool = False, world_size: int = 1) -> tuple[int, float]:
    """Train the batches of `state.epoch` from `state.batch` on (or until the budget ends).

    Returns (images seen by this process, seconds). A pending accumulated gradient is stepped at the end."""
    sampler.set_epoch(state.epoch, state.batch)
    trainer.model.train()
    epoch_start, images_seen = time.perf_counter(), 0
    bar = tqdm(loader, desc=f"epoch {state.epoch}", leave=False, file=sys.stderr,
               disable=None if show_progress else True)
    for images, targets, _ in bar:
        loss = trainer.step(images, targets, state, clock.progress(state, trainer.total_steps))
        state.batch += 1
        state.loss_sum += loss * len(images)
        state.seen += len(images)
        images_seen += len(images)
        state.elapsed = clock.elapsed()
        bar.set_postfix(loss=f"{state.loss_sum / state.seen:.4f}",
                        img_s=f"{images_seen * world_size / (time.perf_counter() - epoch_start):.1f}")
        on_batch(state)
        if clock.out_of_time():
            break
    bar.close()
    if state.batch % trainer.accumulate:
        trainer.optimizer_step()
        state.step += 1
    return images_seen, time.perf_counter() - epoch_start


def selection_value(metric: str, val: dict, selection: Mapping[str, float] = SELECTION_METRICS) -> float:
    """The number that picks best.pt: higher is better (a metric whose sign is -1, like the loss, enters negated)."""
    value = val.get("loss") if metric == "loss" else val["dataset"].get(metric)
    return -math.inf if value is None else selection[metric] * value


def validate_epoch(trainer: Trainer, validate: Validate, state: TrainState, class_names: list[str],
                   seconds: float, images: int, group: Group = Group()) -> dict:
    """Validate the eval model and build the epoch's metrics.csv row: epoch, losses, then the validator's
    own columns (`result["row"]`) or, for per-pixel results, val_pixel_accuracy, val_miou and IoU per class."""
    val = validate(trainer.eval_model)
    loss_sum, seen = all_reduce_sum([state.loss_sum, state.seen], group, trainer.runtime.device)
    data = val["dataset"]
    row = {"epoch": state.epoch, "train_loss": loss_sum / max(1, seen), "val_loss": val.get("loss")}
    if "row" in val:  # a task's validator names its own columns (e.g. val_mask_ap)
        row.update(val["row"])
    else:  # per-pixel classification
        row.update({"val_pixel_accuracy": data.get("pixel_accuracy"), "val_miou": data.get("miou")})
        row.update({f"iou_{n}": v for n, v in zip(class_names, data.get("iou_per_class", []))})
    row.update({"lr": trainer.optimizer.param_groups[0]["lr"], "img_per_s": images / max(1e-9, seconds) * group.world_size,
                "seconds": seconds})
    return {"row": row, "val": val}


def training_row(trainer: Trainer, state: TrainState, seconds: float, images: int, group: Group = Group()) -> dict:
    """The metrics.csv row of an epoch that was not validated (val_every): epoch, train loss, lr, speed, time."""
    loss_sum, seen = all_reduce_sum([state.loss_sum, state.seen], group, trainer.runtime.device)
    return {"epoch": state.epoch, "train_loss": loss_sum / max(1, seen), "lr": trainer.optimizer.param_groups[0]["lr"],
            "img_per_s": images / max(1e-9, seconds) * group.world_size, "seconds": seconds}


def validation_due(state: TrainState, opts: FitOptions, clock: Clock) -> bool:
    """Whether the epoch just trained is validated: every `val_every`-th, and the last (epochs or budget)."""
    last = clock.out_of_time() or (opts.budget is None and state.epoch >= opts.epochs)
    return last or state.epoch % max(1, opts.val_every) == 0


def update_best(state: TrainState, value: float) -> bool:
    """Record an epoch's selection value; True when it is the best so far."""
    if value > state.best:
        state.best, state.best_epoch, state.bad_epochs = value, state.epoch, 0
        return True
    state.bad_epochs += 1
    return False


def fit(trainer: Trainer, loader: DataLoader, sampler: EpochBatchSampler, validate: Validate, state: TrainState,
        opts: FitOptions, class_names: list[str], group: Group = Group(), sinks: Iterable[Sink] = ()) -> TrainState:
    """Train from `state` until the epochs, the time budget or the patience run out."""
    if opts.metric not in opts.selection:
        raise KeyError(f"unknown metric '{opts.metric}'. Valid metrics: {', '.join(opts.selection)}")
    sinks = list(sinks)
    for sink in sinks:
        sink.fit_start(state)
    clock = Clock.resume(opts.budget, state.elapsed)

    def on_batch(s: TrainState) -> None:
        for sink in sinks:
            sink.batch_end(trainer, s)

    while (opts.budget is not None or state.epoch <= opts.epochs) and not clock.out_of_time():
        try:
            images, seconds = train_one_epoch(trainer, loader, sampler, state, clock, on_batch,
                                              opts.verbose and group.is_main, group.world_size)
        except TrainingError as e:
            kept = [k for k in (sink.kept() for sink in sinks) if k] or ["no checkpoint was written"]
            raise TrainingError(f"{e} of epoch {state.epoch}; stopped ({'; '.join(kept)}). "
                                "Try a lower lr or precision=fp32.") from None
        validated = validation_due(state, opts, clock)
        if validated:
            result = validate_epoch(trainer, validate, state, class_names, seconds, images, group)
            improved, row = update_best(state, selection_value(opts.metric, result["val"], opts.selection)), result["row"]
        else:
            improved, row = False, training_row(trainer, state, seconds, images, group)
        state.history.append(row)
        state.epoch, state.batch, state.loss_sum, state.seen = state.epoch + 1, 0, 0.0, 0
        state.elapsed = clock.elapsed()
        for sink in sinks:
            sink.epoch_end(trainer, state, row, improved)
        if validated and opts.patience and state.bad_epochs >= opts.patience:
            if opts.verbose and group.is_main:
                print(f"early stop: no {opts.metric} improvement for {opts.patience} validations "
                      f"(best at epoch {state.best_epoch}, stopped after epoch {state.epoch - 1})")
            break
    barrier(group)
    for sink in sinks:
        sink.fit_end(state)
    return state
