"""Property-based invariants of the metrics (hypothesis)."""
import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from seglab.metrics import BoundaryF1, ConfusionMatrix, PerImageMetrics, SegmentationMetrics

C = 4
IGNORE = 255
labels = st.sampled_from([0, 1, 2, 3, IGNORE])


@st.composite
def batches(draw, max_images=4):
    n = draw(st.integers(1, max_images))
    h, w = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    target = draw(arrays(np.int64, (n, h, w), elements=labels))
    pred = draw(arrays(np.int64, (n, h, w), elements=st.integers(0, C - 1)))
    return torch.from_numpy(pred), torch.from_numpy(target)


SETTINGS = settings(max_examples=40, deadline=None)


@SETTINGS
@given(batches())
def test_perfect_prediction_scores_one(batch):
    _, target = batch
    pred = torch.where(target == IGNORE, torch.zeros_like(target), target)
    suite = SegmentationMetrics(C, boundary=True)
    suite.update(pred, target)
    out = suite.compute()
    if (target != IGNORE).any():
        for section in ("dataset", "per_image"):
            for key in ("pixel_accuracy", "mean_class_accuracy", "miou", "mean_dice", "fwiou"):
                assert abs(out[section][key] - 1.0) < 1e-12, (section, key)
        assert out["boundary"]["bf"] == 1.0
        assert all(v in (None, 1.0) for v in out["dataset"]["iou_per_class"])


@SETTINGS
@given(batches(), st.randoms())
def test_permuting_images_changes_nothing(batch, rnd):
    pred, target = batch
    order = list(range(pred.shape[0]))
    rnd.shuffle(order)
    a, b = SegmentationMetrics(C, boundary=True), SegmentationMetrics(C, boundary=True)
    a.update(pred, target)
    for i in order:
        b.update(pred[i], target[i])
    ra, rb = a.compute(), b.compute()
    assert ra["dataset"] == rb["dataset"]
    assert torch.equal(a.dataset.matrix, b.dataset.matrix)
    for key in ("miou", "pixel_accuracy"):
        x, y = ra["per_image"][key], rb["per_image"][key]
        assert (x is None and y is None) or abs(x - y) < 1e-12
    x, y = ra["boundary"]["bf"], rb["boundary"]["bf"]
    assert (x is None and y is None) or abs(x - y) < 1e-12


@SETTINGS
@given(batches(), batches())
def test_merge_equals_union(first, second):
    parts = []
    for pred, target in (first, second):
        cm, pim, bf = ConfusionMatrix(C), PerImageMetrics(C), BoundaryF1(C)
        for m in (cm, pim, bf):
            m.update(pred, target)
        parts.append((cm, pim, bf))
    union = [ConfusionMatrix(C), PerImageMetrics(C), BoundaryF1(C)]
    for pred, target in (first, second):
        for m in union:
            m.update(pred, target)
    for mine, theirs, whole in zip(parts[0], parts[1], union):
        mine.merge(theirs)
        got, want = mine.compute(), whole.compute()
        for key, value in want.items():
            if isinstance(value, float):
                assert abs(got[key] - value) < 1e-12, key
            elif isinstance(value, list):
                assert [None if v is None else round(v, 12) for v in got[key]] == \
                       [None if v is None else round(v, 12) for v in value], key
            else:
                assert got[key] == value, key
    assert torch.equal(parts[0][0].matrix, union[0].matrix)


@SETTINGS
@given(batches(), st.integers(0, C - 1))
def test_prediction_under_ignored_pixels_does_not_count(batch, fill):
    pred, target = batch
    other = torch.where(target == IGNORE, torch.full_like(pred, fill), pred)
    a, b = SegmentationMetrics(C, boundary=True), SegmentationMetrics(C, boundary=True)
    a.update(pred, target)
    b.update(other, target)
    assert a.compute() == b.compute()


@SETTINGS
@given(batches())
def test_ranges_and_orderings(batch):
    pred, target = batch
    cm = ConfusionMatrix(C)
    cm.update(pred, target)
    out = cm.compute()
    assert int(cm.matrix.sum()) == int((target != IGNORE).sum())
    for iou, dice in zip(out["iou_per_class"], out["dice_per_class"]):
        assert (iou is None) == (dice is None)
        if iou is not None:
            assert 0.0 <= iou <= dice <= 1.0 + 1e-12
    if out["miou"] is not None:
        assert 0.0 <= out["miou"] <= out["mean_dice"] + 1e-12
        assert abs(sum(out["pixel_share"]) - 1.0) < 1e-9
