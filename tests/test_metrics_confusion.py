"""ConfusionMatrix: the streaming core (contract used by the training engine)."""
import json
import math

import pytest
import torch

from seglab.metrics import ConfusionMatrix, batch_confusion

REQUIRED = ("pixel_accuracy", "mean_class_accuracy", "miou", "iou_per_class", "mean_dice", "dice_per_class",
            "fwiou", "precision_per_class", "recall_per_class", "pixel_share")


def test_matrix_rows_truth_cols_pred_and_ignore():
    target = torch.tensor([[0, 1, 255], [2, 2, 1]])
    pred = torch.tensor([[0, 2, 1], [2, 1, 1]])
    cm = ConfusionMatrix(3)
    cm.update(pred, target)
    expected = torch.zeros(3, 3, dtype=torch.int64)
    for t, p in [(0, 0), (1, 2), (2, 2), (2, 1), (1, 1)]:
        expected[t, p] += 1
    assert cm.matrix.dtype == torch.int64
    assert torch.equal(cm.matrix, expected)


def test_compute_keys_json_and_values():
    cm = ConfusionMatrix(4, ignore_index=255)
    target = torch.tensor([[0, 0, 1, 1], [1, 2, 2, 255]])
    pred = torch.tensor([[0, 1, 1, 1], [1, 2, 0, 3]])
    cm.update(pred, target)
    out = cm.compute()
    json.dumps(out)
    for key in REQUIRED:
        assert key in out
    assert out["pixel_accuracy"] == pytest.approx(5 / 7)
    assert out["iou_per_class"][0] == pytest.approx(1 / 3)   # tp 1, fp 1 (2->0), fn 1
    assert out["iou_per_class"][1] == pytest.approx(3 / 4)   # tp 3, fp 1
    assert out["iou_per_class"][2] == pytest.approx(1 / 2)   # tp 1, fn 1
    assert out["iou_per_class"][3] is None                    # absent from truth and prediction (pred 3 ignored)
    assert out["miou"] == pytest.approx((1 / 3 + 3 / 4 + 1 / 2) / 3)
    assert out["pixel_share"] == pytest.approx([2 / 7, 3 / 7, 2 / 7, 0.0])
    assert out["recall_per_class"][3] is None and out["precision_per_class"][3] is None
    assert out["fwiou"] == pytest.approx(2 / 7 / 3 + 3 / 7 * 3 / 4 + 2 / 7 / 2)


def test_merge_reset_and_2d_input():
    a, b, both = ConfusionMatrix(3), ConfusionMatrix(3), ConfusionMatrix(3)
    x = torch.randint(0, 3, (2, 5, 5))
    y = torch.randint(0, 3, (2, 5, 5))
    a.update(x[0], y[0])
    b.update(x[1], y[1])
    both.update(x, y)
    assert torch.equal(a.merge(b).matrix, both.matrix)
    a.all_reduce()  # not distributed: no-op
    assert torch.equal(a.matrix, both.matrix)
    a.reset()
    assert int(a.matrix.sum()) == 0


def test_all_ignored_gives_none():
    cm = ConfusionMatrix(3)
    cm.update(torch.zeros(1, 4, 4, dtype=torch.long), torch.full((1, 4, 4), 255))
    out = cm.compute()
    assert out["pixel_accuracy"] is None and out["miou"] is None and out["num_pixels"] == 0
    assert out["iou_per_class"] == [None, None, None]


def test_errors():
    cm = ConfusionMatrix(3)
    with pytest.raises(TypeError):
        cm.update(torch.rand(2, 4, 4), torch.zeros(2, 4, 4, dtype=torch.long))
    with pytest.raises(ValueError):
        cm.update(torch.zeros(2, 4, 4, dtype=torch.long), torch.zeros(2, 4, 5, dtype=torch.long))
    with pytest.raises(ValueError):
        cm.update(torch.zeros(1, 2, 2, dtype=torch.long), torch.full((1, 2, 2), 7))
    with pytest.raises(ValueError):
        cm.merge(ConfusionMatrix(4))


def test_uint8_inputs_and_no_ignore():
    cm = ConfusionMatrix(256, ignore_index=None)
    t = torch.tensor([[255, 254]], dtype=torch.uint8)
    cm.update(t, t)
    assert int(cm.matrix[255, 255]) == 1 and int(cm.matrix.sum()) == 2


def test_batch_confusion_per_image():
    pred = torch.randint(0, 3, (4, 6, 6))
    target = torch.randint(0, 3, (4, 6, 6))
    m = batch_confusion(pred, target, 3)
    assert m.shape == (4, 3, 3)
    for i in range(4):
        assert torch.equal(m[i], batch_confusion(pred[i], target[i], 3)[0])
    assert not math.isnan(float(m.sum()))
