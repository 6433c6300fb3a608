"""Object-size scaling (`object_size=`): training samples show each image at the scale that makes its median
object `object_size` across (seglab/data/instance/object_size.py), and inference measures that scale on a first
pass and predicts again at it (seglab/inference/instance_scale.py)."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from seglab.cli import main
from seglab.data.instance import InstanceDataset, open_instance_split
from seglab.data.instance.object_size import JITTER, MAX_SCALE, median_diameter, object_scale, scale_for
from seglab.inference.instance import InstanceOptions, InstancePrediction, InstancePredictor
from seglab.inference.instance_scale import MIN_OBJECTS, SIZE_SCORE, measured_scale
from test_instance_tiling import CPU, DiscFinder, draw_discs, matches, metadata


def disc_mask(height: int, width: int, cy: int, cx: int, r: int) -> np.ndarray:
    yy, xx = np.mgrid[:height, :width]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


def write_dsb_discs(root: Path, radii: list[int], height: int = 120, width: int = 160) -> Path:
    """A DSB2018-layout folder: image k holds four discs of radius radii[k] (and an empty one when 0)."""
    for k, r in enumerate(radii):
        sample = root / "stage1_train" / f"img{k:02d}"
        centres = [(30, 40), (30, 120), (90, 40), (90, 120)] if r else []
        image, _ = draw_discs(height, width, [(cy, cx, r) for cy, cx in centres])
        (sample / "images").mkdir(parents=True)
        (sample / "masks").mkdir()
        Image.fromarray(image).save(sample / "images" / f"{sample.name}.png")
        for j, (cy, cx) in enumerate(centres):
            Image.fromarray(disc_mask(height, width, cy, cx, r).astype(np.uint8) * 255).save(
                sample / "masks" / f"m{j}.png")
    return root


def diameter_of(masks: torch.Tensor) -> float:
    return median_diameter(masks.flatten(1).sum(1).numpy())


def test_the_equivalent_diameter_of_a_disc_is_twice_its_radius():
    assert median_diameter(np.array([math.pi * 25, math.pi * 100, math.pi * 400])) == pytest.approx(20.0)
    assert median_diameter(disc_mask(80, 80, 40, 40, 15).sum()[None]) == pytest.approx(30.0, abs=0.3)
    assert median_diameter(np.zeros(3)) is None
    assert object_scale(12.0, 24.0) == 2.0 and object_scale(1.0, 24.0) == MAX_SCALE  # clipped


def test_an_image_without_objects_keeps_the_longer_side_rule():
    assert scale_for(np.zeros((0, 100, 400), bool), 24.0, 64, None) == 64 / 400


def test_a_validation_sample_is_the_whole_image_at_the_truths_scale(tmp_path):
    split = open_instance_split(write_dsb_discs(tmp_path / "dsb", [5, 10, 0, 5, 10]), "train", val_fraction=0.01)
    dataset = InstanceDataset(split, 64, object_size=20.0)
    for index, item in enumerate(split.items):
        image, target, _ = dataset[index]
        truth = item.load()
        if not len(truth.masks):
            assert image.shape[-2:] == (48, 64)  # 64 / the longer side 160
            continue
        scale = 20.0 / median_diameter(truth.masks.reshape(len(truth.masks), -1).sum(1))
        assert image.shape[-2:] == (round(120 * scale), round(160 * scale))
        assert target["masks"].shape[0] == 4 and diameter_of(target["masks"]) == pytest.approx(20.0, abs=1.0)


def test_a_training_sample_is_a_seeded_window_at_a_jittered_scale(tmp_path):
    split = open_instance_split(write_dsb_discs(tmp_path / "dsb", [5, 5, 5, 5, 5]), "train", val_fraction=0.01)
    dataset = InstanceDataset(split, 128, object_size=20.0)  # windows of ~64 of the 120x160 source pixels
    first, again, other = dataset[(0, 7)], dataset[(0, 7)], dataset[(0, 8)]
    assert torch.equal(first[0], again[0]) and torch.equal(first[1]["masks"], again[1]["masks"])
    assert not torch.equal(first[0], other[0])
    shapes, sizes = set(), []
    for seed in range(20):
        image, target, _ = dataset[(0, seed)]
        assert max(image.shape[-2:]) <= 128
        shapes.add(tuple(image.shape[-2:]))
        areas = target["masks"].flatten(1).sum(1)
        whole = [m for m, a in zip(target["masks"], areas) if not (m[0].any() or m[-1].any() or m[:, 0].any()
                                                                       or m[:, -1].any())]
        sizes += [diameter_of(torch.stack(whole))] if whole else []
    assert len(shapes) > 1  # the scale varies
    assert sizes and all(20.0 / JITTER - 1.5 <= d <= 20.0 * JITTER + 1.5 for d in sizes)
    assert max(sizes) - min(sizes) > 2.0


def prediction_of(discs: list[tuple[int, int, int]], scores: list[float], size=(100, 100)) -> InstancePrediction:
    ids = np.zeros(size, np.int32)
    for k, (cy, cx, r) in enumerate(discs):
        ids[disc_mask(*size, cy, cx, r) & (ids == 0)] = k + 1
    return InstancePrediction(ids, np.asarray(scores, np.float32), np.zeros(len(scores), np.int64))


def test_the_scale_is_measured_on_the_confident_instances_only():
    discs = [(15, 15, 5), (15, 50, 5), (50, 15, 5), (70, 70, 20)]
    d = median_diameter(np.array([disc_mask(100, 100, 50, 50, 5).sum()]))
    scale = measured_scale(prediction_of(discs, [0.9, 0.8, 0.7, SIZE_SCORE - 0.01]), 24.0)
    assert scale == pytest.approx(24.0 / d)  # the big low-score disc is not measured
    assert measured_scale(prediction_of(discs[:MIN_OBJECTS - 1] + discs[3:], [0.9, 0.8, 0.2][:MIN_OBJECTS]), 24.0) \
        is None


class SizeMinded(DiscFinder):
    """DiscFinder scoring a region 0.9 when it is 16-32 px across in the model's view, else 0.6 (still measured)."""

    def forward(self, x):
        out = super().forward(x)
        for found in out:
            areas = found["masks"].flatten(1).sum(1).numpy()
            right = (np.sqrt(areas / math.pi) * 2 >= 16) & (np.sqrt(areas / math.pi) * 2 <= 32)
            found["scores"] = torch.where(torch.from_numpy(right), 0.9, 0.6)
        return out


def test_predict_runs_again_at_the_measured_scale():
    discs = [(40 + 60 * (k // 4), 40 + 60 * (k % 4), 5) for k in range(12)]  # 11 px across, in a 240x240 image
    image, truth = draw_discs(240, 240, discs)
    predictor = InstancePredictor(SizeMinded(), CPU, InstanceOptions(object_size=24.0), metadata(120))
    once, twice = predictor.predict_once(image), predictor.predict(image)
    assert set(once.scores.tolist()) == {np.float32(0.6)}  # halved to the 120 px view, the discs are ~5 px across
    assert len(twice) == 12 and set(twice.scores.tolist()) == {np.float32(0.9)}
    scale = measured_scale(once, 24.0)
    assert 1.6 < scale < 2.8
    assert np.array_equal(twice.ids, predictor.predict_at(image, scale).ids)
    assert all(n == 1 and iou > 0.85 for n, iou in matches(twice.ids, truth))
    off = InstancePredictor(SizeMinded(), CPU, InstanceOptions(object_size=0.0),
                            {**metadata(120), "preprocess": {**metadata(120)["preprocess"], "object_size": 24.0}})
    assert np.array_equal(off.predict(image).ids, once.ids)  # 0 turns the checkpoint's object size off
    recorded = InstancePredictor(SizeMinded(), CPU, InstanceOptions(),
                                 {**metadata(120), "preprocess": {**metadata(120)["preprocess"], "object_size": 24.0}})
    assert np.array_equal(recorded.predict(image).ids, twice.ids)


def test_too_few_confident_instances_leave_the_first_pass():
    image, _ = draw_discs(240, 240, [(60, 60, 5), (60, 180, 5)])
    predictor = InstancePredictor(SizeMinded(), CPU, InstanceOptions(object_size=24.0), metadata(120))
    assert np.array_equal(predictor.predict(image).ids, predictor.predict_once(image).ids)


def test_training_with_object_size_records_it_and_val_reads_it(tmp_path):
    root = write_dsb_discs(tmp_path / "dsb", [4, 6, 8, 5, 7, 6, 4, 8])
    assert main(["train", f"data={root}", "model=yolo_seg", "encoder=resnet18", "imgsz=64", "batch=2", "epochs=1",
                 "precision=fp32", "workers=0", "verbose=false", "object_size=16", "calibrate_min_score=false",
                 f"project={tmp_path}", "name=run"]) == 0
    ckpt = torch.load(tmp_path / "run" / "best.pt", weights_only=True)
    assert ckpt["preprocess"]["object_size"] == 16.0
    predictor = InstancePredictor(tmp_path / "run" / "best.pt", CPU)
    assert predictor.object_size == 16.0 and "16 px across" in predictor.describe()
    assert InstancePredictor(tmp_path / "run" / "best.pt", CPU, InstanceOptions(object_size=0)).object_size == 0
    assert main(["val", f"model={tmp_path / 'run'}", "object_size=-1", "verbose=false"]) != 0


def test_training_time_validation_predicts_each_image_at_its_truths_scale(tmp_path, monkeypatch):
    from seglab.tasks.instance.evaluate import evaluate

    split = open_instance_split(write_dsb_discs(tmp_path / "dsb", [5, 10, 0, 7]), "train", val_fraction=0.01)
    dataset = InstanceDataset(split, 64, object_size=20.0)
    predictor = InstancePredictor(DiscFinder(), CPU, InstanceOptions(min_score=0.0), metadata(64))
    scales, predict_at = [], predictor.predict_at
    monkeypatch.setattr(predictor, "predict_at", lambda image, scale: scales.append(scale) or predict_at(image, scale))
    result = evaluate(predictor, dataset, "train")
    expected = [20.0 / median_diameter(item.load().masks.reshape(4, -1).sum(1)) if len(item.load().masks)
                else 64 / 160 for item in split.items]
    assert scales == pytest.approx(expected)
    assert result["matching_accuracy"] > 0.9 and result["num_gt"] == 12  # scored against the truth as stored


def test_with_object_size_the_presets_crop_is_left_out(tmp_path):
    split = open_instance_split(write_dsb_discs(tmp_path / "dsb", [5, 5, 5, 5, 5]), "train", val_fraction=0.01)
    plain = InstanceDataset(split, 128, object_size=20.0)
    flipped = InstanceDataset(split, 128, augment="microscopy", object_size=20.0)
    for seed in range(6):
        (a, ta, _), (b, tb, _) = plain[(0, seed)], flipped[(0, seed)]
        assert a.shape == b.shape  # the same window and scale: only flips and colours on top
        assert sorted(ta["area"].tolist()) == sorted(tb["area"].tolist())
