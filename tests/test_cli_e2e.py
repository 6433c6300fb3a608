"""End to end through the command line: train a tiny U-Net on the bundled sample, then val and predict."""
import csv
import json
import math
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import REPO, SAMPLE
from seglab.cli import main
from seglab.config import KEYS, make_config, parse_overrides
from seglab.data.pet import load_split
from seglab.engine.checkpoint import load_checkpoint, model_from_checkpoint
from seglab.models import model_arguments

TRAIN_ARGS = ["width=4", "depth=2", "imgsz=64", "epochs=2", "batch=4", "lr=0.01", "samples=2", "name=tiny",
              "precision=fp32"]  # fp32: the exact-agreement tests below must not depend on the CPU's bf16
CLASSES = ["pet", "background", "border"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """The run folder of `seglab train` (2 epochs, ~10 s on 2 cores)."""
    project = tmp_path_factory.mktemp("runs")
    args = [*TRAIN_ARGS, f"project={project}"]
    assert main(["train", *args]) == 0
    return project / "tiny", args


@pytest.fixture(scope="module")
def test_split_predictions(run, tmp_path_factory):
    """`seglab val split=test` and `seglab predict` over the same 12 test images."""
    run_dir, _ = run
    assert main(["val", f"model={run_dir / 'best.pt'}", "split=test", "verbose=false"]) == 0
    source = tmp_path_factory.mktemp("source")
    spec = load_split(SAMPLE, "test")
    for image, _ in spec.pairs:
        shutil.copy(image, source)
    out = tmp_path_factory.mktemp("predict")
    assert main(["predict", f"model={run_dir / 'best.pt'}", f"source={source}", f"out={out}", "batch=5"]) == 0
    return json.loads((run_dir / "val_test.json").read_text()), out, spec


def test_run_folder_contents(run):
    run_dir, _ = run
    names = {p.name for p in run_dir.iterdir()}
    assert {"config.yaml", "best.pt", "last.pt", "metrics.csv", "metrics.json", "curves.png", "samples"} <= names
    assert not [n for n in names if n.endswith((".tmp", ".part"))]
    assert Image.open(run_dir / "curves.png").format == "PNG"
    samples = sorted((run_dir / "samples").glob("*.png"))
    assert len(samples) == 2
    for sample in samples:
        image = Image.open(SAMPLE / "images" / f"{sample.stem}.jpg")
        panel = Image.open(sample)
        assert panel.size == (3 * image.width + 2 * 4, image.height)  # image | truth | prediction


def test_saved_config_loads_back_to_the_same_values(run):
    run_dir, args = run
    saved = make_config(cfg=run_dir / "config.yaml")
    assert saved == make_config({**parse_overrides(args), "model": "unet", "metric": "miou"})  # resolved: the defaults
    assert (saved.width, saved.depth, saved.imgsz, saved.epochs, saved.lr) == (4, 2, 64, 2, 0.01)


def test_metrics_csv(run):
    run_dir, _ = run
    with open(run_dir / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 and [r["epoch"] for r in rows] == ["1", "2"]
    header = list(rows[0])
    for column in ["train_loss", "val_loss", "val_pixel_accuracy", "val_miou", *(f"iou_{c}" for c in CLASSES),
                   "seconds"]:
        assert column in header
    for row in rows:
        assert float(row["train_loss"]) > 0 and float(row["val_loss"]) > 0 and float(row["seconds"]) > 0
        assert 0 <= float(row["val_pixel_accuracy"]) <= 1 and 0 <= float(row["val_miou"]) <= 1
        ious = [float(row[f"iou_{c}"]) for c in CLASSES]
        assert float(row["val_miou"]) == pytest.approx(sum(ious) / 3, abs=1e-5)


def test_metrics_json_and_best_epoch(run):
    run_dir, _ = run
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert set(metrics["iou_per_class"]) == set(CLASSES)
    for key in ("pixel_accuracy", "miou", "mean_dice"):
        assert 0 <= metrics[key] <= 1
    assert metrics["miou"] == pytest.approx(np.mean(list(metrics["iou_per_class"].values())))
    with open(run_dir / "metrics.csv", newline="") as f:
        mious = [float(r["val_miou"]) for r in csv.DictReader(f)]
    assert metrics["epochs"] == 2 and metrics["best_epoch"] == 1 + int(np.argmax(mious))


def test_checkpoints_carry_everything(run):
    run_dir, args = run
    best, last = load_checkpoint(run_dir / "best.pt"), load_checkpoint(run_dir / "last.pt")
    # the metrics row each checkpoint was saved with names the epoch it holds
    assert last["metrics"]["epoch"] == 2
    assert best["metrics"]["epoch"] == json.loads((run_dir / "metrics.json").read_text())["best_epoch"]
    for ckpt in (best, last):
        assert ckpt["arch"]["name"] == "unet"
        assert ckpt["arch"]["args"] == model_arguments("unet", 3, ckpt["config"])
        assert {k: ckpt["arch"]["args"][k] for k in ("num_classes", "width", "depth")} == {
            "num_classes": 3, "width": 4, "depth": 2}
        with torch.no_grad():
            assert model_from_checkpoint(ckpt)(torch.zeros(1, 3, 37, 29)).shape == (1, 3, 37, 29)
        assert ckpt["classes"]["names"] == CLASSES and len(ckpt["classes"]["colors"]) == 3
        assert ckpt["classes"]["ignore_index"] == 255
        assert set(ckpt["preprocess"]) >= {"mean", "std", "resize", "size"} and ckpt["preprocess"]["size"] == [64, 64]
        assert len(ckpt["preprocess"]["mean"]) == len(ckpt["preprocess"]["std"]) == 3
        assert ckpt["config"] == make_config({**parse_overrides(args), "model": "unet", "metric": "miou"}).to_dict()
        assert isinstance(ckpt["seglab_version"], str) and ckpt["seglab_version"]


def test_predict_writes_class_pngs_at_each_image_size(test_split_predictions):
    _, out, spec = test_split_predictions
    sizes = set()
    for image_path, _ in spec.pairs:
        labels = Image.open(out / f"{image_path.stem}.png")
        size = Image.open(image_path).size
        sizes.add(size)
        assert labels.mode == "L" and labels.size == size
        assert set(np.unique(np.asarray(labels))) <= {0, 1, 2}
        assert Image.open(out / f"{image_path.stem}_color.png").size == size
        assert Image.open(out / f"{image_path.stem}_overlay.png").size == size
    assert len(sizes) >= 3  # the test images really differ in size


def test_val_agrees_with_predict(test_split_predictions):
    """Pixel accuracy and IoU recomputed from predict's PNGs against the trimaps equal val's numbers."""
    result, out, spec = test_split_predictions
    assert result["split"] == "test" and result["images"] == 12 and result["resolution"] == "original"
    confusion = np.zeros((3, 3), dtype=np.int64)
    for image_path, trimap_path in spec.pairs:
        truth = np.asarray(Image.open(trimap_path)).astype(np.int64) - 1  # 1 pet, 2 background, 3 border
        pred = np.asarray(Image.open(out / f"{image_path.stem}.png")).astype(np.int64)
        confusion += np.bincount(truth.ravel() * 3 + pred.ravel(), minlength=9).reshape(3, 3)
    predicted_classes = (confusion.sum(0) > 0).sum()
    assert predicted_classes >= 2, "the tiny model predicts one class everywhere: the comparison would be weak"
    assert abs(np.trace(confusion) / confusion.sum() - result["pixel_accuracy"]) < 1e-6
    union = confusion.sum(0) + confusion.sum(1) - np.diag(confusion)
    for k, name in enumerate(CLASSES):
        if union[k]:
            assert result["iou_per_class"][name] == pytest.approx(confusion[k, k] / union[k], abs=1e-6)


def test_val_on_the_training_size(run, tmp_path):
    run_dir, _ = run
    assert main(["val", f"model={run_dir / 'last.pt'}", "split=val", "resolution=train", f"out={tmp_path}",
                 "precision=fp32", "verbose=false"]) == 0
    result = json.loads((tmp_path / "val_val.json").read_text())
    with open(run_dir / "metrics.csv", newline="") as f:
        last_row = list(csv.DictReader(f))[-1]
    # the same model, split and scoring as the last epoch's validation in training
    assert result["resolution"] == "train" and result["images"] == 5
    assert result["pixel_accuracy"] == pytest.approx(float(last_row["val_pixel_accuracy"]), abs=1e-5)


def test_help_prints_examples(capsys):
    assert main(["help"]) == 0
    text = capsys.readouterr().out
    assert "seglab train data=" in text and "seglab val model=" in text and "seglab predict model=" in text
    for key in KEYS:
        assert f"  {key} = " in text
    assert main([]) == 0 and "Examples" in capsys.readouterr().out


def test_unknown_mode_exits_2_with_a_suggestion(capsys):
    assert main(["trian", "epochs=1"]) == 2
    err = capsys.readouterr().err
    assert "unknown mode 'trian'" in err and "Did you mean 'train'?" in err


def test_unknown_key_exits_1_with_a_suggestion(capsys):
    assert main(["train", "epochz=1"]) == 1
    assert "Did you mean 'epochs'?" in capsys.readouterr().err


def test_bad_data_path_exits_1_naming_it(tmp_path, capsys):
    missing = tmp_path / "no_such_dataset"
    assert main(["train", f"data={missing}", f"project={tmp_path}"]) == 1
    err = capsys.readouterr().err
    assert str(missing) in err and "does not exist" in err and "Traceback" not in err
    assert not (tmp_path / "train").exists()  # no run folder for a run that never started


def test_missing_checkpoint_exits_1(tmp_path, capsys):
    assert main(["val", f"model={tmp_path / 'nope.pt'}"]) == 1
    assert "nope.pt: checkpoint not found" in capsys.readouterr().err


def _seglab(*args, cwd):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "seglab", *args], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=300)


def test_subprocess_predict(run, tmp_path):
    run_dir, _ = run
    image = SAMPLE / "images" / "Bengal_194.jpg"
    done = _seglab("predict", f"model={run_dir / 'best.pt'}", f"source={image}", f"out={tmp_path / 'out'}",
                   cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "predicted 1 of 1 images" in done.stdout
    assert Image.open(tmp_path / "out" / "Bengal_194.png").size == Image.open(image).size


def test_subprocess_bad_data_path(tmp_path):
    done = _seglab("train", "data=missing_folder", "epochs=1", cwd=tmp_path)
    assert done.returncode == 1
    assert "missing_folder" in done.stderr and "does not exist" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "runs").exists()
