"""benchmarks/results_table.py: a row per run folder from best.pt, metrics.csv and val_SPLIT.json."""
from __future__ import annotations

import importlib.util
import json

import pytest
import torch

from conftest import REPO
from seglab.data.spec import ClassTable
from seglab.engine.checkpoint import atomic_save, make_checkpoint
from seglab.engine.run_folder import MetricsLog
from seglab.models import build_model

spec = importlib.util.spec_from_file_location("results_table", REPO / "benchmarks" / "results_table.py")
results_table = importlib.util.module_from_spec(spec)
spec.loader.exec_module(results_table)

ARCH = {"name": "unet", "args": {"num_classes": 3, "width": 4, "depth": 2, "upsample": "transpose"}}
CLASSES = ClassTable(["pet", "background", "border"], [(1, 2, 3), (4, 5, 6), (7, 8, 9)], 255)
PREPROCESS = {"mean": [0.5] * 3, "std": [0.25] * 3, "resize": "stretch", "size": [64, 64]}


def make_run(folder):
    folder.mkdir()
    model = build_model(ARCH["name"], ARCH["args"])
    atomic_save(make_checkpoint(model, ARCH, CLASSES, PREPROCESS, {}, epoch=2, metrics={}), folder / "best.pt")
    log = MetricsLog(folder / "metrics.csv")
    for epoch, (seconds, img_s) in enumerate([(90.0, 4.0), (150.0, 6.0)], 1):
        log.append({"epoch": epoch, "val_miou": 0.5, "img_per_s": img_s, "seconds": seconds})
    (folder / "val_test.json").write_text(json.dumps({
        "images": 298, "pixel_accuracy": 0.8123, "mean_class_accuracy": 0.7, "miou": 0.61, "boundary_f1": 0.35,
        "iou_per_class": {"pet": 0.7, "background": 0.8, "border": 0.33}}))
    return model


def test_row_reads_parameters_time_speed_and_scores(tmp_path):
    model = make_run(tmp_path / "r")
    row = results_table.run_row(tmp_path / "r", "test")
    assert row["params_m"] == pytest.approx(sum(p.numel() for p in model.parameters()) / 1e6)
    assert row["arch"] == "unet (width=4)"
    assert row["epochs"] == 2 and row["minutes"] == pytest.approx(4.0) and row["img_s"] == pytest.approx(5.0)
    table = results_table.markdown({"scratch": row})
    header, rule, line = table.splitlines()
    assert header.endswith("| IoU pet | IoU background | IoU border |")
    assert line.split(" | ")[6:] == ["81.2", "70.0", "61.0", "35.0", "70.0", "80.0", "33.0 |"]


def test_missing_scores_name_the_val_command(tmp_path, capsys):
    make_run(tmp_path / "r")
    (tmp_path / "r" / "val_test.json").unlink()
    assert results_table.main([str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "val_test.json" in err and f"seglab val model={tmp_path / 'r'}/best.pt split=test" in err


def test_a_corrupt_checkpoint_is_an_error_not_a_traceback(tmp_path, capsys):
    make_run(tmp_path / "r")
    torch.save({"not": "a checkpoint"}, tmp_path / "r" / "best.pt")
    assert results_table.main([str(tmp_path / "r")]) == 2
    assert "not a seglab checkpoint" in capsys.readouterr().err
