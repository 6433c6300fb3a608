"""benchmarks/accuracy_per_minute.py: cumulative minutes from metrics.csv, the plot, clear errors."""
from __future__ import annotations

import importlib.util
import math

import pytest
from PIL import Image

from conftest import REPO
from seglab.engine.run_folder import MetricsLog

spec = importlib.util.spec_from_file_location("accuracy_per_minute", REPO / "benchmarks" / "accuracy_per_minute.py")
apm = importlib.util.module_from_spec(spec)
spec.loader.exec_module(apm)


def write_run(folder, seconds, miou):
    folder.mkdir(parents=True)
    log = MetricsLog(folder / "metrics.csv")
    for epoch, (s, m) in enumerate(zip(seconds, miou), 1):
        log.append({"epoch": epoch, "train_loss": 1.0, "val_loss": 1.0, "val_pixel_accuracy": 0.5,
                    "val_miou": m, "lr": 1e-3, "img_per_s": 5.0, "seconds": s})
    return folder


def test_curve_accumulates_epoch_seconds_into_minutes(tmp_path):
    run = write_run(tmp_path / "a", [30.0, 60.0, 90.0], [0.2, 0.4, None])
    minutes, miou = apm.read_curve(run)
    assert minutes == pytest.approx([0.5, 1.5, 3.0])
    assert miou[:2] == pytest.approx([0.2, 0.4]) and math.isnan(miou[2])


def test_main_draws_one_line_per_run(tmp_path, capsys):
    a = write_run(tmp_path / "a", [60.0, 60.0], [0.3, 0.5])
    b = write_run(tmp_path / "b", [120.0], [0.6])
    out = tmp_path / "plot.png"
    assert apm.main([str(a), f"{b}=lite0", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "a: 2 epochs in 2.0 min, best val mIoU 0.500" in printed
    assert "lite0: 1 epochs in 2.0 min, best val mIoU 0.600" in printed
    with Image.open(out) as image:
        assert image.width > 300 and image.height > 200


def test_a_folder_without_metrics_is_named_in_the_error(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert apm.main([str(tmp_path / "empty"), "--out", str(tmp_path / "p.png")]) == 2
    assert "empty/metrics.csv: no metrics.csv" in capsys.readouterr().err
    assert not (tmp_path / "p.png").exists()


def test_a_csv_without_the_needed_columns_is_rejected(tmp_path):
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "metrics.csv").write_text("epoch,train_loss\n1,0.5\n")
    with pytest.raises(ValueError, match="missing: seconds, val_miou"):
        apm.read_curve(tmp_path / "bad")
