"""The parts of the instance task that need no training: mask resizing and painting, id PNGs, COCO results,
overlays, and the train-time checks of the config."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from seglab.cli import main
from seglab.inference.instance import InstancePrediction, interpolation_matrix, paint
from seglab.inference.instance_outputs import instance_overlay, outlines, results_entries, save_ids
from test_instance_data_layouts import write_penn_fudan


@pytest.mark.parametrize("out_size, in_size", [(7, 7), (50, 16), (16, 50), (33, 32), (1, 5), (5, 1)])
def test_interpolation_matrix_is_torch_bilinear(out_size, in_size):
    values = torch.rand(in_size, 9, generator=torch.Generator().manual_seed(out_size))
    expected = F.interpolate(values.T[None, None], size=(9, out_size), mode="bilinear", align_corners=False)[0, 0].T
    got = interpolation_matrix(out_size, in_size) @ values.numpy()
    np.testing.assert_allclose(got, expected.numpy(), atol=1e-5)


def blob(h, w, cy, cx, r, seed):
    """Probabilities: a smooth bump (>= 0.5 inside radius ~r), zero far away, noise in between."""
    yy, xx = np.mgrid[:h, :w]
    d = np.sqrt((yy - cy) ** 2 + (xx - cx) ** 2)
    noise = np.random.default_rng(seed).uniform(0, 0.2, (h, w))
    return np.where(d < 2 * r, np.clip(1.0 - d / (2 * r), 0, 1) + noise * (d > r), 0).astype(np.float32)


@pytest.mark.parametrize("size", [(53, 71), (20, 24), (40, 48)])
def test_painting_equals_resizing_whole_masks_then_thresholding(size):
    probs = np.stack([blob(40, 48, 12, 14, 5, 0), blob(40, 48, 25, 30, 7, 1), blob(40, 48, 14, 16, 4, 2)])
    ids, kept = paint(probs, size)
    full = F.interpolate(torch.from_numpy(probs)[None], size=size, mode="bilinear", align_corners=False)[0] >= 0.5
    expected = np.zeros(size, np.int32)
    for k, mask in enumerate(full.numpy()):  # best first: a pixel goes to the first mask covering it
        expected[(expected == 0) & mask] = k + 1
    # kept detections are renumbered 1..K in order; map the expected ids through `kept`
    renumber = np.zeros(len(probs) + 1, np.int32)
    renumber[[k + 1 for k in kept]] = np.arange(1, len(kept) + 1)
    differ = (renumber[expected] != ids).mean()
    assert differ < 1e-3  # float rounding at exactly 0.5 only


def test_a_mask_no_output_pixel_reads_vanishes_when_shrunk_more_than_twice():
    """Shrunk 4x, output rows read source rows 1-2, 5-6, ...: a detection only on row 3 has no pixel left
    (torch agrees), rather than crashing the painting (object_size predicts tiles at scales up to 8)."""
    probs = np.zeros((2, 40, 48), np.float32)
    probs[0, 3, 3] = 1.0
    probs[1, 20:30, 20:30] = 1.0
    ids, kept = paint(probs, (10, 12))
    full = F.interpolate(torch.from_numpy(probs)[None], size=(10, 12), mode="bilinear", align_corners=False)[0]
    assert not (full[0] >= 0.5).any() and kept == [1] and np.array_equal(ids == 1, (full[1] >= 0.5).numpy())


def test_a_detection_covered_by_better_ones_is_dropped_and_masks_never_overlap():
    square = np.zeros((20, 20), np.float32)
    square[4:12, 4:12] = 1.0
    inner = np.zeros((20, 20), np.float32)
    inner[6:10, 6:10] = 0.9
    other = np.zeros((20, 20), np.float32)
    other[10:16, 10:16] = 0.8
    ids, kept = paint(np.stack([square, inner, other]), (20, 20))
    assert kept == [0, 2]
    assert (ids == 1).sum() == 64 and (ids == 2).sum() == 36 - 4  # the corner 10..11 x 10..11 is the square's
    prediction = InstancePrediction(ids, np.array([0.9, 0.4]), np.array([0, 0]))
    masks = prediction.masks
    assert masks.shape == (2, 20, 20) and masks.sum(0).max() == 1
    confident = prediction.confident(0.5)
    assert len(confident) == 1 and set(np.unique(confident.ids)) == {0, 1}


@pytest.mark.parametrize("max_covered, kept_expected", [(1.0, [0, 1, 2]), (0.5, [0, 2]), (0.75, [0, 1, 2])])
def test_a_detection_mostly_covered_by_a_better_one_is_dropped_not_kept_as_a_sliver(max_covered, kept_expected):
    best = np.zeros((20, 20), np.float32)
    best[2:12, 2:12] = 1.0
    sliver = np.zeros((20, 20), np.float32)
    sliver[2:12, 6:14] = 0.9  # 80 pixels, 60 of them the best one's: 75 % covered
    apart = np.zeros((20, 20), np.float32)
    apart[14:18, 14:18] = 0.8
    ids, kept = paint(np.stack([best, sliver, apart]), (20, 20), max_covered)
    assert kept == kept_expected
    assert (ids == 1).sum() == 100 and (ids == len(kept)).sum() == 16
    if 1 in kept:  # kept, it holds only its 20 free pixels
        assert (ids == 2).sum() == 20


def test_the_tiled_path_drops_covered_detections_by_the_same_rule():
    from seglab.inference.instance_tiling import predict_tiled

    best = np.zeros((16, 16), np.float32)
    best[2:10, 2:10] = 1.0
    sliver = np.zeros((16, 16), np.float32)
    sliver[2:10, 4:12] = 0.9  # 64 pixels, 48 covered
    found = {"scores": np.array([0.9, 0.8], np.float32), "labels": np.array([0, 0]), "probs": np.stack([best, sliver])}
    image = np.zeros((16, 16, 3), np.uint8)
    for max_covered, count in [(1.0, 2), (0.7, 1)]:
        prediction = predict_tiled(image, lambda view: found, 16, 0.25, max_covered=max_covered)
        assert len(prediction) == count and (prediction.ids == 1).sum() == 64


def test_id_png_is_16_bit_beyond_255_instances(tmp_path):
    ids = np.arange(300, dtype=np.int32).reshape(15, 20)
    save_ids(tmp_path / "many.png", ids)
    read = np.asarray(Image.open(tmp_path / "many.png"))
    assert read.dtype == np.uint16 and np.array_equal(read, ids)
    save_ids(tmp_path / "few.png", ids % 200)
    read = Image.open(tmp_path / "few.png")
    assert read.mode == "L" and np.array_equal(np.asarray(read), ids % 200)


def test_results_entries_load_in_pycocotools_and_point_at_the_png_ids(tmp_path):
    from pycocotools import mask as coco_mask
    from pycocotools.coco import COCO

    ids = np.zeros((20, 30), np.int32)
    ids[2:6, 3:9], ids[10:18, 12:20] = 1, 2
    prediction = InstancePrediction(ids, np.array([0.9, 0.3]), np.array([1, 0]))
    entries = results_entries(4, "x.png", prediction, category_ids=[7, 3], min_score=0.5)
    assert [e["category_id"] for e in entries] == [3, 7] and [e["instance_id"] for e in entries] == [1, 0]
    assert entries[0]["bbox"] == [3.0, 2.0, 6.0, 4.0]
    gt = COCO()
    gt.dataset = {"images": [{"id": 4, "height": 20, "width": 30}], "annotations": [],
                  "categories": [{"id": 3}, {"id": 7}]}
    gt.createIndex()
    path = tmp_path / "predictions.json"
    path.write_text(json.dumps(entries))
    results = gt.loadRes(str(path))
    for k, ann in enumerate(results.loadAnns(results.getAnnIds()), start=1):
        assert np.array_equal(coco_mask.decode(ann["segmentation"]).astype(bool), ids == k)


def test_overlay_outlines_each_instance_in_its_own_colour():
    ids = np.zeros((24, 24), np.int32)
    ids[2:10, 2:10], ids[10:20, 10:20] = 1, 2
    image = np.full((24, 24, 3), 40, np.uint8)
    out = instance_overlay(image, InstancePrediction(ids, np.array([0.9, 0.8]), np.array([0, 0])), ["cell"],
                           text=False)
    edge = outlines(ids)
    assert edge[2, 5] and not edge[5, 5] and not edge[0, 0]
    assert (out[0, 0] == 40).all()  # background untouched
    assert not np.array_equal(out[2, 5], out[10, 15])  # two instances, two colours


def test_instance_train_checks_metric_and_size_before_reading_data(tmp_path, capsys):
    root = tmp_path / "PennFudanPed"
    write_penn_fudan(root, n=3)
    project = tmp_path / "runs"
    assert main(["train", f"data={root}", "model=yolo_seg", "metric=miou", f"project={project}"]) == 1
    assert "metric='miou': instance training selects best.pt by one of mask_ap, mask_ap50, matching_accuracy" \
        in capsys.readouterr().err
    assert main(["train", f"data={root}", "model=yolo_seg", "imgsz=64x96", f"project={project}"]) == 1
    assert "instance training resizes each image's longer side to one size" in capsys.readouterr().err
    assert not project.exists()


def test_images_with_more_than_255_objects_can_be_scored():
    """DSB 2018 has images with ~400 nuclei (pycocotools' area() of >255 RLEs at once overflows under NumPy 2)."""
    from seglab.metrics.instance import InstanceEvaluator

    ids = np.arange(1, 301, dtype=np.int32).repeat(4).reshape(30, 40)  # 300 objects of 4 pixels
    truth = ids[None] == np.arange(1, 301)[:, None, None]
    evaluator = InstanceEvaluator(1)
    evaluator.process({"masks": truth, "labels": np.zeros(300, np.int64)},
                      {"masks": truth[:200], "scores": np.ones(200), "labels": np.zeros(200, np.int64)})
    result = evaluator.evaluate()
    assert result["num_gt"] == 300 and result["matching"]["tp"][0] == 200
