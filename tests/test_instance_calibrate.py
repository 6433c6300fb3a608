"""min_score calibrated on training images (seglab/tasks/instance/calibrate.py): the sweep picks the best
threshold, agrees with InstanceEvaluator at every threshold, sees training images only, is recorded in
best.pt (atomically) by training and by `seglab val calibrate=true`, and val / predict use it unless
min_score= is given."""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from seglab.cli import main
from seglab.data.instance import open_instance_split
from seglab.data.instance.spec import Instances
from seglab.inference.instance import InstanceOptions, InstancePrediction
from seglab.metrics.instance import InstanceEvaluator
from seglab.tasks.instance.calibrate import (GRID, calibrate, calibrate_checkpoint, calibration_items, choose,
                                             format_calibration, record, sweep)
from test_instance_data_layouts import write_penn_fudan

QUIET = ["precision=fp32", "verbose=false"]


def square(size: int, top: int, left: int, side: int) -> np.ndarray:
    mask = np.zeros((size, size), bool)
    mask[top:top + side, left:left + side] = True
    return mask


def prediction_of(masks: list[np.ndarray], scores: list[float], size: int) -> InstancePrediction:
    """Masks painted best score first, as InstancePredictor paints them."""
    order = np.argsort(-np.asarray(scores, np.float64), kind="stable")
    ids = np.zeros((size, size), np.int32)
    for rank, index in enumerate(order, start=1):
        ids[masks[index] & (ids == 0)] = rank
    return InstancePrediction(ids, np.asarray(scores, np.float64)[order], np.zeros(len(scores), np.int64))


class FakePredictor:
    """`predict(image)` -> a fixed prediction per image key; the options InstancePredictor resolves."""

    def __init__(self, predictions: dict):
        self.predictions, self.calls = predictions, []
        self.options = InstanceOptions(score_threshold=0.0, max_detections=100)

    def predict(self, image):
        self.calls.append(image)
        return self.predictions[image]


def item(name: str, masks: list[np.ndarray], crowd: list[bool] | None = None):
    instances = Instances(np.stack(masks), np.zeros(len(masks), np.int64),
                          np.asarray(crowd or [False] * len(masks), bool))
    return SimpleNamespace(image=name, name=name, load=lambda: instances)


def test_the_sweep_picks_the_lowest_threshold_that_keeps_the_true_objects_only():
    size, items, predictions = 32, [], {}
    for k in range(3):
        truths = [square(size, 2 + 9 * j, 2 + k, 6) for j in range(3)]
        false = [square(size, 2 + 9 * j, 22, 6) for j in range(2)]  # on background
        items.append(item(f"img{k}", truths))
        predictions[f"img{k}"] = prediction_of(truths + false, [0.7] * 3 + [0.3] * 2, size)
    predictor = FakePredictor(predictions)
    result = calibrate(predictor, SimpleNamespace(name="train", items=items), seed=0)
    assert predictor.calls == ["img0", "img1", "img2"]  # one inference pass per image for all thresholds
    accuracy = {float(t): a for t, a in result["matching_accuracy_50"].items()}
    assert list(accuracy) == list(GRID)
    for t, a in accuracy.items():
        assert a == pytest.approx(0.6 if t <= 0.3 else 1.0 if t <= 0.7 else 0.0), t
    assert 0.3 < result["min_score"] <= 0.7 and result["min_score"] == 0.35  # ties: the lower threshold
    assert result["images"] == 3 and result["split"] == "train"
    assert "on 3 train images: 0.35" in format_calibration(result) and "0.70 1.0000" in format_calibration(result)


def test_nothing_to_choose_is_said_and_not_recorded(tmp_path):
    predictor = FakePredictor({})
    predictor.options = InstanceOptions(score_threshold=0.97, max_detections=100)
    predictor.source, predictor.checkpoint = str(tmp_path / "absent.pt"), {}
    result = calibrate_checkpoint(predictor, SimpleNamespace(name="train", items=[item("a", [square(8, 0, 0, 2)])]),
                                  seed=0)
    assert result["min_score"] is None and "above every candidate" in format_calibration(result)
    assert predictor.calls == [] and "calibration" not in predictor.checkpoint  # nothing run, nothing written


def test_choose_prefers_the_best_then_the_lower_and_skips_undefined():
    assert choose((0.1, 0.2, 0.3, 0.4), [0.5, 0.8, 0.8, 0.1]) == 0.2
    assert choose((0.1, 0.2), [None, 0.3]) == 0.2
    assert choose((0.1, 0.2), [None, None]) is None


def test_the_sweep_equals_the_evaluator_at_every_threshold():
    rng = np.random.default_rng(3)
    size, items, predictions = 40, [], {}
    for k in range(4):
        truths = [square(size, *rng.integers(0, 30, 2), rng.integers(4, 10)) for _ in range(rng.integers(1, 6))]
        truths.append(np.zeros((size, size), bool))  # an empty truth is no object
        crowd = [False] * (len(truths) - 2) + [True, False]  # nor is a crowd
        found = [np.roll(t, rng.integers(-3, 4, 2), (0, 1)) for t in truths[:-1]]
        found += [square(size, *rng.integers(0, 34, 2), rng.integers(3, 7)) for _ in range(rng.integers(0, 5))]
        items.append(item(f"img{k}", truths, crowd))
        predictions[f"img{k}"] = prediction_of(found, rng.uniform(0.0, 1.0, len(found)).tolist(), size)
    scores = sweep(FakePredictor(predictions), items)
    for t, accuracy in zip(GRID, scores["accuracy"]):
        evaluator = InstanceEvaluator(1, score_threshold=t)
        for it in items:
            truth = it.load()
            evaluator.process({"masks": truth.masks, "labels": truth.labels, "iscrowd": truth.iscrowd},
                              predictions[it.image].evaluator_input())
        assert accuracy == pytest.approx(evaluator.evaluate()["match_accuracy_50"], abs=1e-12), t
    assert len(set(scores["accuracy"])) > 3  # the thresholds do make a difference here


def test_calibration_items_are_a_seeded_subset_in_split_order():
    split = SimpleNamespace(items=[SimpleNamespace(name=f"i{k}") for k in range(10)])
    names = [i.name for i in calibration_items(split, seed=1, max_images=4)]
    assert names == [i.name for i in calibration_items(split, seed=1, max_images=4)] and len(set(names)) == 4
    assert names == sorted(names, key=lambda n: int(n[1:]))
    assert names != [i.name for i in calibration_items(split, seed=2, max_images=4)]
    assert len(calibration_items(split, seed=0, max_images=64)) == 10


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("calibrate")
    write_penn_fudan(tmp / "PennFudanPed", n=8)  # 6 train / 2 val (seeded 80/20)
    assert main(["train", f"data={tmp / 'PennFudanPed'}", "model=yolo_seg", "encoder=resnet18", "imgsz=64",
                 "batch=3", "epochs=1", "samples=0", "workers=0", "score_threshold=0", f"project={tmp}",
                 "name=yolo", *QUIET]) == 0  # 6 images, batch 3: 2 steps
    return tmp / "yolo"


def test_training_records_the_calibration_on_training_images_only(run):
    calibration = torch.load(run / "best.pt", weights_only=True)["calibration"]
    root = run.parent / "PennFudanPed"
    train = {i.name for i in open_instance_split(root, "train", seed=0, val_fraction=0.2).items}
    val = {i.name for i in open_instance_split(root, "val", seed=0, val_fraction=0.2).items}
    assert calibration["split"] == "train" and calibration["images"] == len(calibration["image_names"]) == len(train)
    assert set(calibration["image_names"]) == train and not set(calibration["image_names"]) & val
    assert calibration["min_score"] in GRID and len(calibration["matching_accuracy_50"]) == len(GRID)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["calibration"] == calibration
    assert metrics["matching"]["score_threshold"] == calibration["min_score"]  # the final report uses it


def copy_of(run: Path, tmp_path: Path) -> Path:
    path = tmp_path / "model" / "best.pt"
    path.parent.mkdir()
    shutil.copy(run / "best.pt", path)
    return path


def val_result(model: Path, out: Path, *extra: str) -> dict:
    assert main(["val", f"model={model}", f"out={out}", *QUIET, *extra]) == 0
    return json.loads((out / "val_val.json").read_text())


def test_val_uses_the_recorded_min_score_unless_given(run, tmp_path):
    model = copy_of(run, tmp_path)
    before = torch.load(model, weights_only=True)
    record(model, {**before["calibration"], "min_score": 0.15})
    after = torch.load(model, weights_only=True)
    assert all(torch.equal(after["model"][k], v) for k, v in before["model"].items())  # the rest is kept
    assert [p.name for p in model.parent.iterdir()] == ["best.pt"]  # no temporary file left behind
    assert val_result(model, tmp_path / "a")["matching"]["score_threshold"] == 0.15
    assert val_result(model, tmp_path / "b", "min_score=0.6")["matching"]["score_threshold"] == 0.6


def test_predict_draws_at_the_recorded_min_score_unless_given(run, tmp_path):
    model, source = copy_of(run, tmp_path), run.parent / "PennFudanPed" / "PNGImages"

    def predicted(name: str, *extra: str) -> tuple[list[dict], int]:
        assert main(["predict", f"model={model}", f"source={source}", f"out={tmp_path / name}", "score_threshold=0",
                     *QUIET, *extra]) == 0
        drawn = max(int(np.asarray(Image.open(p)).max()) for p in (tmp_path / name).glob("*[0-9].png"))
        return json.loads((tmp_path / name / "predictions.json").read_text()), drawn

    entries, drawn = predicted("all", "min_score=0")
    assert entries and drawn > 0
    top = max(e["score"] for e in entries)
    assert top < 1
    record(model, {**torch.load(model, weights_only=True)["calibration"], "min_score": (top + 1) / 2})
    entries, drawn = predicted("calibrated")
    assert entries and drawn == 0 and all(e["instance_id"] == 0 for e in entries)
    assert predicted("given", "min_score=0")[1] > 0


def test_val_calibrate_true_recalibrates_the_checkpoint(run, tmp_path):
    model = copy_of(run, tmp_path)
    ckpt = torch.load(model, weights_only=True)
    del ckpt["calibration"]
    torch.save(ckpt, model)
    result = val_result(model, tmp_path / "val", "calibrate=true", "score_threshold=0")
    calibration = torch.load(model, weights_only=True)["calibration"]
    assert calibration == result["calibration"] and calibration["split"] == "train"
    # the same images and thresholds as training's calibration: one code path
    assert calibration["image_names"] == torch.load(run / "best.pt", weights_only=True)["calibration"]["image_names"]
    assert result["matching"]["score_threshold"] == calibration["min_score"]
    assert sorted(p.name for p in model.parent.iterdir()) == ["best.pt"]


def test_an_exported_onnx_file_keeps_the_calibration(run, tmp_path):
    model = copy_of(run, tmp_path)
    record(model, {**torch.load(model, weights_only=True)["calibration"], "min_score": 0.25})
    assert main(["export", f"model={model}", "verbose=false"]) == 0
    assert val_result(model.with_suffix(".onnx"), tmp_path / "onnx")["matching"]["score_threshold"] == 0.25
