"""What a training run writes and shows, as `fit` sinks (seglab/engine/loop.py): one job each.

- `CheckpointSink`: last.pt at every epoch end (and every `save_every` batches), best.pt when the
  selection metric improves; written atomically, with everything an exact resume needs.
- `MetricsSink`: metrics.csv (a row per epoch, rewritten from the state on resume) and curves.png.
- `TensorBoardSink`: the float values of each row as scalars.
- `ConsoleSink`: one line per epoch.
In a DDP run only rank 0 gets sinks that write.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from seglab.engine.checkpoint import atomic_save, make_checkpoint
from seglab.engine.loop import Sink
from seglab.engine.run_folder import MetricsLog, plot_curves
from seglab.engine.trainer import Trainer, TrainState


class CheckpointSink(Sink):
    def __init__(self, run_dir: Path, meta: dict, save_every: int = 0):
        self.run_dir, self.meta, self.save_every = Path(run_dir), meta, save_every

    def save(self, trainer: Trainer, state: TrainState, name: str) -> None:
        ckpt = make_checkpoint(trainer.eval_model, epoch=len(state.history),
                               metrics=state.history[-1] if state.history else {},
                               state=dataclasses.asdict(state), **trainer.resume_state(), **self.meta)
        atomic_save(ckpt, self.run_dir / name)

    def batch_end(self, trainer: Trainer, state: TrainState) -> None:
        if self.save_every and state.batch % self.save_every == 0:
            self.save(trainer, state, "last.pt")

    def epoch_end(self, trainer: Trainer, state: TrainState, row: dict, improved: bool) -> None:
        self.save(trainer, state, "last.pt")
        if improved:
            self.save(trainer, state, "best.pt")

    def kept(self) -> str | None:
        last = self.run_dir / "last.pt"
        return f"last.pt in {self.run_dir} holds the last good state" if last.exists() else None


class MetricsSink(Sink):
    def __init__(self, run_dir: Path, curve: str = "val_miou"):
        self.run_dir, self.curve = Path(run_dir), curve  # curve: the val column curves.png plots
        self.log = MetricsLog(self.run_dir / "metrics.csv")

    def fit_start(self, state: TrainState) -> None:
        self.log.rewrite(state.history)

    def epoch_end(self, trainer: Trainer, state: TrainState, row: dict, improved: bool) -> None:
        self.log.append(row)

    def fit_end(self, state: TrainState) -> None:
        if state.history:
            plot_curves(state.history, self.run_dir / "curves.png", self.curve)


class TensorBoardSink(Sink):
    def __init__(self, writer):
        self.writer = writer

    def epoch_end(self, trainer: Trainer, state: TrainState, row: dict, improved: bool) -> None:
        for key, value in row.items():
            if isinstance(value, float):
                self.writer.add_scalar(key, value, row["epoch"])

    def fit_end(self, state: TrainState) -> None:
        self.writer.close()


class ConsoleSink(Sink):
    """One line per epoch: the losses, every other val_* number of the row, speed and time."""

    def epoch_end(self, trainer: Trainer, state: TrainState, row: dict, improved: bool) -> None:
        shown = [f"train_loss {row['train_loss']:.4f}"]
        if row.get("val_loss") is not None:  # tasks whose models give no loss in eval mode leave it out
            shown.append(f"val_loss {row['val_loss']:.4f}")
        shown += [f"{key} {value:.4f}" for key, value in row.items()
                  if key.startswith("val_") and key != "val_loss" and isinstance(value, float)]
        print(f"epoch {row['epoch']:3d}  {'  '.join(shown)}  {row['img_per_s']:.1f} img/s  {row['seconds']:.1f}s",
              flush=True)


def tensorboard_sink(run_dir: Path) -> TensorBoardSink | None:
    """A TensorBoard sink writing to <run>/tensorboard, or None when tensorboard is not installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional
        return None
    return TensorBoardSink(SummaryWriter(str(Path(run_dir) / "tensorboard")))


def run_folder_sinks(run_dir: Path, meta: dict, save_every: int, verbose: bool, curve: str = "val_miou") -> list[Sink]:
    """The sinks of a normal run on rank 0: checkpoints, metrics.csv + curves (of the `curve` column),
    TensorBoard, console."""
    sinks: list[Sink] = [CheckpointSink(run_dir, meta, save_every), MetricsSink(run_dir, curve)]
    board = tensorboard_sink(run_dir)
    if board is not None:
        sinks.append(board)
    if verbose:
        sinks.append(ConsoleSink())
    return sinks
