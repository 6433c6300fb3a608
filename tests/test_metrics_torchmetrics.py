"""Every metric checked against torchmetrics, on random inputs and on hard cases.

Alignment of absent-class semantics: torchmetrics returns 0 (zero_division=0) for a ratio
whose denominator is 0; seglab returns None and leaves it out of means. So per-class values
are compared where seglab's value is defined (and torchmetrics must give 0 elsewhere), and
seglab's means are compared with the mean of torchmetrics' per-class values over the same
defined classes. Frequency-weighted IoU has no torchmetrics class: it is rebuilt from
torchmetrics' per-class IoU and the truth class frequencies.
"""
import math

import pytest
import torch
from torchmetrics.classification import (MulticlassAccuracy, MulticlassConfusionMatrix, MulticlassF1Score,
                                         MulticlassJaccardIndex, MulticlassPrecision, MulticlassRecall)

from seglab.metrics import ConfusionMatrix, PerImageMetrics, SegmentationMetrics

IGNORE = 255


def _tm(cls, pred, target, c, **kw):
    m = cls(num_classes=c, ignore_index=IGNORE, **kw)
    m.update(pred.reshape(1, -1), target.reshape(1, -1))
    return m.compute().double()


def reference(pred, target, c):
    """Dataset-level scores from torchmetrics, aligned to seglab's None rule."""
    valid = target != IGNORE
    truth = torch.bincount(target[valid], minlength=c)
    predicted = torch.bincount(pred[valid], minlength=c)
    defined = {
        "iou_per_class": (truth + predicted) > 0, "dice_per_class": (truth + predicted) > 0,
        "recall_per_class": truth > 0, "precision_per_class": predicted > 0,
    }
    per_class = {
        "iou_per_class": _tm(MulticlassJaccardIndex, pred, target, c, average="none"),
        "dice_per_class": _tm(MulticlassF1Score, pred, target, c, average="none"),
        "recall_per_class": _tm(MulticlassRecall, pred, target, c, average="none"),
        "precision_per_class": _tm(MulticlassPrecision, pred, target, c, average="none"),
    }
    assert torch.allclose(per_class["recall_per_class"], _tm(MulticlassAccuracy, pred, target, c, average="none"))
    out = {}
    for key, values in per_class.items():
        assert torch.all(values[~defined[key]] == 0)  # torchmetrics' zero_division
        out[key] = [float(v) if ok else None for v, ok in zip(values, defined[key])]
    n = int(valid.sum())
    if n == 0:
        return out, None
    share = truth.double() / n
    iou = per_class["iou_per_class"]
    out.update({
        "pixel_accuracy": float(_tm(MulticlassAccuracy, pred, target, c, average="micro")),
        "miou": float(iou[defined["iou_per_class"]].mean()),
        "mean_dice": float(per_class["dice_per_class"][defined["dice_per_class"]].mean()),
        "mean_class_accuracy": float(per_class["recall_per_class"][defined["recall_per_class"]].mean()),
        "fwiou": float((share * iou).sum()),
        "pixel_share": share.tolist(),
    })
    # torchmetrics' own macro Jaccard also leaves out classes absent from both: same number
    assert out["miou"] == pytest.approx(float(_tm(MulticlassJaccardIndex, pred, target, c, average="macro")))
    return out, n


def assert_matches(ours, ref):
    for key, value in ref.items():
        if isinstance(value, list):
            assert len(ours[key]) == len(value), key
            for a, b in zip(ours[key], value):
                assert (a is None) == (b is None), key
                if b is not None:
                    assert a == pytest.approx(b, abs=1e-6), key
        else:
            assert ours[key] == pytest.approx(value, abs=1e-6), key


def blobs(n, c, h, w, gen):
    low = torch.randint(0, c, (n, 1, max(h // 8, 1), max(w // 8, 1)), generator=gen).float()
    return torch.nn.functional.interpolate(low, size=(h, w), mode="nearest")[:, 0].long()


def case(name, gen):
    c = 5
    t = blobs(3, c, 24, 32, gen)
    p = torch.where(torch.rand(t.shape, generator=gen) < 0.3, torch.randint(0, c, t.shape, generator=gen), t)
    if name == "random":
        t[torch.rand(t.shape, generator=gen) < 0.1] = IGNORE
    elif name == "empty_class":       # class 4 in neither; class 3 only predicted; class 2 only in truth
        t[t == 4] = 0
        p[p == 4] = 1
        t[t == 3] = 1
        p[p == 2] = 0
    elif name == "all_ignored":
        t[:] = IGNORE
    elif name == "single_pixel":
        t[:] = IGNORE
        t[1, 5, 7] = 2
    elif name == "one_class":
        t[:] = 3
        p[:] = 3
    elif name == "unbalanced":        # class 1 is 3 pixels out of 2304
        t[:] = 0
        t[0, 0, :3] = 1
        p = torch.zeros_like(t)
        p[0, 0, 1:5] = 1
    return p, t, c


CASES = ["random", "empty_class", "all_ignored", "single_pixel", "one_class", "unbalanced"]


@pytest.mark.parametrize("name", CASES)
def test_dataset_reduction_matches_torchmetrics(name):
    gen = torch.Generator().manual_seed(CASES.index(name))
    p, t, c = case(name, gen)
    cm = ConfusionMatrix(c, ignore_index=IGNORE)
    for i in range(p.shape[0]):
        cm.update(p[i:i + 1], t[i:i + 1])
    tm_cm = MulticlassConfusionMatrix(num_classes=c, ignore_index=IGNORE)
    tm_cm.update(p.reshape(1, -1), t.reshape(1, -1))
    assert torch.equal(cm.matrix, tm_cm.compute().long())
    ref, n = reference(p, t, c)
    out = cm.compute()
    assert out["num_pixels"] == (n or 0)
    assert_matches(out, ref)
    if n is None:
        assert all(out[k] is None for k in ("pixel_accuracy", "miou", "mean_dice", "fwiou", "mean_class_accuracy"))


@pytest.mark.parametrize("name", CASES)
def test_per_image_reduction_matches_torchmetrics(name):
    gen = torch.Generator().manual_seed(100 + CASES.index(name))
    p, t, c = case(name, gen)
    pim = PerImageMetrics(c, ignore_index=IGNORE)
    pim.update(p, t)
    out = pim.compute()
    refs = [reference(p[i], t[i], c)[0] for i in range(p.shape[0]) if bool((t[i] != IGNORE).any())]
    assert out["num_images"] == len(refs)
    for key in ("pixel_accuracy", "miou", "mean_dice", "mean_class_accuracy", "fwiou"):
        values = [r[key] for r in refs]
        assert out[key] == (pytest.approx(sum(values) / len(values)) if values else None), key
    for key in ("iou_per_class", "dice_per_class", "precision_per_class", "recall_per_class"):
        for k in range(c):
            values = [r[key][k] for r in refs if r[key][k] is not None]
            assert out[key][k] == (pytest.approx(sum(values) / len(values)) if values else None), (key, k)


def test_suite_sections_and_binary_mode():
    gen = torch.Generator().manual_seed(7)
    logits = torch.randn(2, 1, 16, 16, generator=gen)
    target = (torch.rand(2, 16, 16, generator=gen) > 0.5).long()
    target[0, 0] = IGNORE
    suite = SegmentationMetrics(2, mode="binary", threshold=0.5, boundary=True)
    suite.update(logits, target)
    out = suite.compute()
    assert set(out) == {"dataset", "per_image", "boundary"}
    assert out["dataset"]["reduction"] == "dataset" and out["per_image"]["reduction"] == "per_image"
    ref, _ = reference((logits[:, 0] > 0).long(), target, 2)
    assert_matches(out["dataset"], ref)
    with pytest.raises(ValueError):
        SegmentationMetrics(3, mode="binary")
    with pytest.raises(KeyError, match="valid modes: binary, multiclass"):
        SegmentationMetrics(3, mode="multilabel")


def test_multiclass_logits_go_through_argmax():
    gen = torch.Generator().manual_seed(8)
    logits = torch.randn(2, 4, 8, 8, generator=gen)
    target = torch.randint(0, 4, (2, 8, 8), generator=gen)
    suite = SegmentationMetrics(4)
    suite.update(logits, target)
    cm = ConfusionMatrix(4)
    cm.update(logits.argmax(1), target)
    assert suite.compute()["dataset"] == cm.compute()
    assert not math.isnan(suite.compute()["per_image"]["miou"])
