"""The training loop's named steps on their own: no run folder, a fake validation, sinks one at a time."""
from __future__ import annotations

import math
import os

import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from seglab.data.spec import ClassTable
from seglab.engine.device import Runtime
from seglab.engine.loop import Clock, FitOptions, Sink, fit, selection_value, train_one_epoch, update_best, validate_epoch
from seglab.engine.optim import ProgressSchedule
from seglab.engine.sampler import EpochBatchSampler
from seglab.engine.sinks import CheckpointSink, MetricsSink
from seglab.engine.trainer import Trainer, TrainingError, TrainState
from seglab.models.unet import UNet

NAMES = ["a", "b"]


class Squares(Dataset):
    """Images whose bright square is class 1: learnable in a few steps."""

    def __init__(self, n: int = 8, size: int = 16):
        g = torch.Generator().manual_seed(0)
        self.masks = torch.zeros(n, size, size, dtype=torch.long)
        for i in range(n):
            y, x = torch.randint(0, size - 6, (2,), generator=g).tolist()
            self.masks[i, y:y + 6, x:x + 6] = 1
        self.images = (self.masks * 200 + 20).to(torch.uint8)[:, None].expand(-1, 3, -1, -1).contiguous()

    def __len__(self):
        return len(self.masks)

    def __getitem__(self, key):
        index = key[0] if isinstance(key, tuple) else key
        return self.images[index], self.masks[index], index


def make_trainer(lr: float = 0.05, loss_fn=None) -> Trainer:
    torch.manual_seed(0)
    model = UNet(num_classes=2, width=4, depth=2, norm="group")
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    runtime = Runtime(torch.device("cpu"), "fp32", False)
    return Trainer(model=model, loss_fn=loss_fn or torch.nn.CrossEntropyLoss(), optimizer=optimizer,
                   schedule=ProgressSchedule(optimizer, "constant"), runtime=runtime,
                   preprocess={"mean": [0.5] * 3, "std": [0.5] * 3}, total_steps=100)


def loader_for(data: Dataset, batch: int = 4):
    sampler = EpochBatchSampler(len(data), batch, seed=0)
    return DataLoader(data, batch_sampler=sampler), sampler


def scripted_validation(values: list[float]):
    """A validate(model) that returns the given mIoU values in turn (and counts its calls)."""
    calls = []

    def validate(model):
        calls.append(model)
        value = values[min(len(calls) - 1, len(values) - 1)]
        return {"dataset": {"miou": value, "pixel_accuracy": value, "iou_per_class": [value, value]}, "loss": 1 - value}

    return validate, calls


def test_fit_without_sinks_trains_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    trainer = make_trainer()
    before = {k: v.clone() for k, v in trainer.module.state_dict().items()}
    loader, sampler = loader_for(Squares())
    validate, calls = scripted_validation([0.1, 0.3, 0.2])
    state = fit(trainer, loader, sampler, validate, TrainState(), FitOptions(3, None, 4, verbose=False), NAMES)
    assert os.listdir(tmp_path) == []
    assert len(calls) == 3 and len(state.history) == 3
    assert state.step == 6 and state.epoch == 4  # 2 batches x 3 epochs
    assert state.best_epoch == 2 and state.best == pytest.approx(0.3)
    assert any(not torch.equal(before[k], v) for k, v in trainer.module.state_dict().items())
    assert [row["val_miou"] for row in state.history] == [0.1, 0.3, 0.2]


def test_patience_stops_after_epochs_without_improvement():
    trainer = make_trainer()
    loader, sampler = loader_for(Squares())
    validate, calls = scripted_validation([0.5, 0.4, 0.4, 0.3, 0.9])
    state = fit(trainer, loader, sampler, validate, TrainState(), FitOptions(10, None, 4, patience=2, verbose=False), NAMES)
    assert len(calls) == 3 and state.best_epoch == 1 and state.bad_epochs == 2


def test_update_best_and_selection_value_signs():
    state = TrainState()
    assert update_best(state, 0.2) and state.best_epoch == 1
    state.epoch = 2
    assert not update_best(state, 0.1) and state.bad_epochs == 1
    val = {"dataset": {"miou": 0.4}, "loss": 0.7}
    assert selection_value("miou", val) == 0.4
    assert selection_value("loss", val) == -0.7  # a lower loss is better
    assert selection_value("miou", {"dataset": {"miou": None}}) == -math.inf


def test_train_one_epoch_stops_when_the_budget_is_spent():
    trainer = make_trainer()
    loader, sampler = loader_for(Squares(n=16))
    state = TrainState()
    images, _ = train_one_epoch(trainer, loader, sampler, state, Clock(budget=0.0, start=0.0))
    assert state.batch == 1 and images == 4  # one batch, then the clock says stop


def test_validate_epoch_row_has_train_loss_and_per_class_iou():
    trainer = make_trainer()
    state = TrainState(loss_sum=6.0, seen=4)
    validate, _ = scripted_validation([0.25])
    result = validate_epoch(trainer, validate, state, NAMES, seconds=2.0, images=8)
    row = result["row"]
    assert row["train_loss"] == 1.5 and row["val_miou"] == 0.25 and row["iou_b"] == 0.25
    assert row["img_per_s"] == 4.0 and row["val_loss"] == 0.75


def test_a_nan_loss_says_what_the_sinks_kept(tmp_path):
    class Kept(Sink):
        def kept(self):
            return "the note of a sink"

    trainer = make_trainer(loss_fn=lambda logits, y: logits.sum() * float("nan"))
    loader, sampler = loader_for(Squares())
    validate, _ = scripted_validation([0.1])
    with pytest.raises(TrainingError, match="became nan at batch 1 of epoch 1; stopped \\(the note of a sink\\)"):
        fit(trainer, loader, sampler, validate, TrainState(), FitOptions(1, None, 4, verbose=False), NAMES, sinks=[Kept()])


TINY_META = {"arch": {"name": "unet", "args": {"num_classes": 2, "width": 4, "depth": 2, "norm": "group"}},
             "classes": ClassTable(NAMES, [(0, 0, 0), (255, 0, 0)]),
             "preprocess": {"mean": [0.5] * 3, "std": [0.5] * 3, "resize": "stretch", "size": [16, 16]}, "config": {}}


def test_checkpoint_and_metrics_sinks_write_what_resume_reads(tmp_path):
    trainer = make_trainer()
    loader, sampler = loader_for(Squares())
    validate, _ = scripted_validation([0.2, 0.1])
    sinks = [CheckpointSink(tmp_path, TINY_META, save_every=1), MetricsSink(tmp_path)]
    fit(trainer, loader, sampler, validate, TrainState(), FitOptions(2, None, 4, verbose=False), NAMES, sinks=sinks)
    last = torch.load(tmp_path / "last.pt", weights_only=True)
    best = torch.load(tmp_path / "best.pt", weights_only=True)
    assert last["state"]["epoch"] == 3 and best["state"]["epoch"] == 2  # best.pt is epoch 1's model
    assert best["state"]["best_epoch"] == 1 and "optimizer" in last
    lines = (tmp_path / "metrics.csv").read_text().strip().splitlines()
    assert len(lines) == 3 and lines[0].startswith("epoch")
    assert (tmp_path / "curves.png").is_file()
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temporary files


def test_a_task_validator_names_its_columns_and_its_selection_metric():
    trainer = make_trainer()
    loader, sampler = loader_for(Squares())
    values = iter([0.2, 0.5, 0.4])

    def validate(model):
        ap = next(values)
        return {"dataset": {"mask_ap": ap}, "loss": None, "row": {"val_mask_ap": ap}}

    opts = FitOptions(3, None, 4, metric="mask_ap", verbose=False, selection={"mask_ap": 1.0, "loss": -1.0})
    state = fit(trainer, loader, sampler, validate, TrainState(), opts, NAMES)
    assert state.best_epoch == 2 and [r["val_mask_ap"] for r in state.history] == [0.2, 0.5, 0.4]
    assert "val_miou" not in state.history[0]
    with pytest.raises(KeyError, match="unknown metric 'miou'. Valid metrics: mask_ap, loss"):
        fit(trainer, loader, sampler, validate, TrainState(), FitOptions(1, None, 4, selection={"mask_ap": 1.0, "loss": -1.0}),
            NAMES)


def test_the_console_line_shows_every_val_number_and_no_missing_loss(capsys):
    from seglab.engine.sinks import ConsoleSink

    row = {"epoch": 3, "train_loss": 0.5, "val_loss": None, "val_mask_ap": 0.25, "val_matching_accuracy": 0.4,
           "lr": 0.001, "img_per_s": 2.0, "seconds": 10.0}
    ConsoleSink().epoch_end(None, None, row, True)
    line = capsys.readouterr().out
    assert "val_mask_ap 0.2500" in line and "val_matching_accuracy 0.4000" in line and "val_loss" not in line
    ConsoleSink().epoch_end(None, None, {**row, "val_loss": 0.75}, True)
    assert "val_loss 0.7500" in capsys.readouterr().out


def test_val_every_validates_every_nth_epoch_and_the_last(tmp_path):
    trainer = make_trainer()
    loader, sampler = loader_for(Squares())
    validate, calls = scripted_validation([0.3, 0.2, 0.1])
    sinks = [CheckpointSink(tmp_path, TINY_META), MetricsSink(tmp_path)]
    state = fit(trainer, loader, sampler, validate, TrainState(), FitOptions(5, None, 4, val_every=2, verbose=False),
                NAMES, sinks=sinks)
    assert len(calls) == 3  # epochs 2, 4 and the last, 5
    assert [r["epoch"] for r in state.history if "val_miou" in r] == [2, 4, 5]
    assert state.best_epoch == 2 and state.step == 10  # every epoch trained; best.pt only among validated ones
    assert torch.load(tmp_path / "best.pt", weights_only=True)["state"]["best_epoch"] == 2
    lines = (tmp_path / "metrics.csv").read_text().strip().splitlines()
    header = lines[0].split(",")
    assert len(lines) == 6 and "val_miou" in header and "train_loss" in header  # widened at epoch 2, rows of all 5
    first = dict(zip(header, lines[1].split(",")))
    assert first["epoch"] == "1" and first["val_miou"] == "" and float(first["train_loss"]) > 0
    assert dict(zip(header, lines[2].split(",")))["val_miou"] == "0.3"


def test_val_every_validates_when_the_budget_ends_and_patience_counts_validations(monkeypatch):
    trainer = make_trainer()
    loader, sampler = loader_for(Squares(n=16))
    validate, calls = scripted_validation([0.4])
    answers = iter([False] + [True] * 10)  # time left to start epoch 1; out of time after its first batch
    monkeypatch.setattr(Clock, "out_of_time", lambda self: next(answers))
    state = fit(trainer, loader, sampler, validate, TrainState(), FitOptions(1, 60.0, 4, val_every=5, verbose=False), NAMES)
    assert state.batch == 0 and len(state.history) == 1 and state.step == 1
    assert len(calls) == 1 and "val_miou" in state.history[-1]  # the budget ended the run: validated anyway
    monkeypatch.undo()
    validate, calls = scripted_validation([0.5, 0.4, 0.4])
    state = fit(trainer, loader, sampler, validate, TrainState(), FitOptions(20, None, 4, patience=2, val_every=3,
                                                                            verbose=False), NAMES)
    assert len(calls) == 3 and state.epoch - 1 == 9  # validations at 3, 6, 9; two without improvement stop it


def test_fit_options_carry_every_loop_key_from_the_config():
    from seglab.config import make_config
    from seglab.tasks.training import fit_options

    cfg = make_config(epochs=7, time="2m", batch=3, metric="mask_ap", patience=4, val_every=2)
    opts = fit_options(cfg, verbose=False, selection={"mask_ap": 1.0})
    assert (opts.epochs, opts.budget, opts.batch, opts.metric, opts.patience, opts.val_every, opts.verbose) == (
        7, 120.0, 3, "mask_ap", 4, 2, False)
    assert dict(opts.selection) == {"mask_ap": 1.0}
    assert fit_options(make_config(), verbose=True).selection == FitOptions(1, None, 1).selection
