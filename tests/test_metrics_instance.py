"""Instance metrics: hand-computed COCO AP and matching accuracy, torchmetrics cross-check, brute-force matching."""
import itertools
import json

import numpy as np
import pytest
import torch

from seglab.metrics.evaluator import Evaluator
from seglab.metrics.instance import InstanceEvaluator, coco_results, match_instances, matching_counts

H = W = 64


def box_mask(y0, x0, y1, x1, h=H, w=W):
    m = np.zeros((h, w), bool)
    m[y0:y1, x0:x1] = True
    return m


def stack(*masks, h=H, w=W):
    return np.stack(masks) if masks else np.zeros((0, h, w), bool)


def run(items, num_classes=1, **kw):
    ev = InstanceEvaluator(num_classes, **kw)
    assert isinstance(ev, Evaluator)
    for target, prediction in items:
        ev.process(target, prediction)
    return ev.evaluate()


def gt(*masks, labels=None, iscrowd=None):
    out = {"masks": stack(*masks), "labels": labels if labels is not None else [0] * len(masks)}
    if iscrowd is not None:
        out["iscrowd"] = iscrowd
    return out


def pred(*masks, scores=None, labels=None):
    n = len(masks)
    return {"masks": stack(*masks), "scores": scores if scores is not None else [0.9] * n,
            "labels": labels if labels is not None else [0] * n}


A, B = box_mask(2, 2, 12, 12), box_mask(30, 30, 50, 50)


def test_perfect_prediction_scores_one():
    out = run([(gt(A, B, labels=[0, 1]), pred(A, B, labels=[0, 1]))], num_classes=2)
    for key in ("mask_ap", "mask_ap50", "mask_ap75", "box_ap", "mask_ar"):
        assert out[key] == pytest.approx(1.0), key
    assert out["mask_ap_per_class"] == pytest.approx([1.0, 1.0])
    assert out["matching"]["accuracy"] == pytest.approx([1.0] * 5)
    assert out["matching"]["mean_matched_iou"] == pytest.approx([1.0] * 5)
    json.dumps(out)  # JSON-ready


def test_one_missed_object():
    out = run([(gt(A, B), pred(A))])
    # recall 1/2 at precision 1: 51 of COCO's 101 recall points have precision 1
    assert out["mask_ap"] == pytest.approx(51 / 101)
    assert out["mask_ar"] == pytest.approx(0.5)
    m = out["matching"]
    assert m["tp"] == [1] * 5 and m["fn"] == [1] * 5 and m["fp"] == [0] * 5
    assert m["accuracy"] == pytest.approx([0.5] * 5) and m["precision"] == pytest.approx([1.0] * 5)
    assert m["recall"] == pytest.approx([0.5] * 5) and m["f1"] == pytest.approx([2 / 3] * 5)


def test_shifted_mask_iou_two_thirds():
    shifted = box_mask(2, 4, 12, 14)            # 10x10 square moved 2 px: IoU = 80 / 120
    out = run([(gt(A), pred(shifted))])
    assert out["mask_ap50"] == pytest.approx(1.0) and out["mask_ap75"] == pytest.approx(0.0)
    assert out["mask_ap"] == pytest.approx(0.4)  # matched at IoU 0.50, 0.55, 0.60, 0.65 of the ten
    m = out["matching"]
    assert m["tp"] == [1, 1, 0, 0, 0] and m["fp"] == [0, 0, 1, 1, 1] and m["fn"] == [0, 0, 1, 1, 1]
    assert m["accuracy"] == pytest.approx([1, 1, 0, 0, 0])
    assert m["mean_matched_iou"][:2] == pytest.approx([2 / 3, 2 / 3]) and m["mean_matched_iou"][2:] == [None] * 3
    assert out["match_accuracy_50"] == 1.0 and out["match_accuracy_mean"] == pytest.approx(0.4)


def test_iou_exactly_at_a_threshold_matches():
    wide = box_mask(2, 2, 12, 14)                 # 10x12
    out = run([(gt(wide), pred(box_mask(2, 5, 12, 17)))])   # shifted 3 px: IoU = 90 / 150 = 0.6 exactly
    assert out["mask_ap"] == pytest.approx(0.3)   # matched at 0.50, 0.55 and 0.60 (COCO: IoU >= t)
    assert out["matching"]["tp"] == [1, 1, 0, 0, 0]


def test_false_positive_on_an_image_without_objects_counts():
    # image 1: one object found (score 0.5); image 2: no object, one confident false positive
    out = run([(gt(A), pred(A, scores=[0.5])), (gt(), pred(B, scores=[0.9]))], score_threshold=0.0)
    assert out["mask_ap"] == pytest.approx(0.5)   # precision 1/2 at every recall level
    assert out["matching"]["fp"][0] == 1 and out["matching"]["accuracy"][0] == pytest.approx(0.5)
    assert [p["fp"][0] for p in out["per_image"]] == [0, 1]
    assert out["per_image"][1]["accuracy"] == [0.0] * 5


def test_score_threshold_filters_matching_but_not_ap():
    out = run([(gt(A), pred(A, B, scores=[0.9, 0.1]))], score_threshold=0.5)
    assert out["matching"]["fp"][0] == 0 and out["mask_ap"] == pytest.approx(1.0)
    out = run([(gt(A), pred(A, B, scores=[0.9, 0.1]))], score_threshold=0.0)
    assert out["matching"]["fp"][0] == 1


def test_prediction_on_crowd_region_is_not_a_false_positive():
    crowd = box_mask(30, 30, 60, 60)
    inside = box_mask(35, 35, 45, 45)
    target = gt(A, crowd, iscrowd=[0, 1])
    out = run([(target, pred(A, inside, scores=[0.8, 0.9]))])
    assert out["mask_ap"] == pytest.approx(1.0)
    out = run([(gt(A, crowd, iscrowd=[0, 0]), pred(A, inside, scores=[0.8, 0.9]))])
    assert out["mask_ap"] < 0.6                  # without the crowd flag it is a top-ranked false positive
    out = run([(target, pred(A))])
    assert out["matching"]["fn"][0] == 0         # crowd regions are not objects to find


def test_area_ranges():
    small, large = box_mask(0, 0, 10, 10, 128, 128), box_mask(20, 20, 120, 120, 128, 128)
    target = {"masks": np.stack([small, large]), "labels": [0, 0]}
    out = run([(target, {"masks": small[None], "scores": [0.9], "labels": [0]})])
    assert out["mask_ap_small"] == pytest.approx(1.0) and out["mask_ap_large"] == pytest.approx(0.0)
    assert out["mask_ap_medium"] is None         # no medium object: undefined, not 0


def test_box_ap_differs_from_mask_ap_and_uses_given_boxes():
    ring = A.copy()
    ring[3:11, 3:11] = False                     # same bounding box as A, mask IoU 36/100
    out = run([(gt(A), pred(ring))])
    assert out["mask_ap50"] == pytest.approx(0.0) and out["box_ap"] == pytest.approx(1.0)
    p = pred(ring)
    p["boxes"] = [[30, 30, 50, 50]]              # xyxy far from the object
    assert run([(gt(A), p)])["box_ap"] == pytest.approx(0.0)


def test_empty_truth_masks_are_dropped():
    out = run([(gt(A, np.zeros((H, W), bool)), pred(A))])
    assert out["num_gt"] == 1 and out["mask_ap"] == pytest.approx(1.0) and out["matching"]["fn"][0] == 0


def test_coco_results_entries():
    entries = coco_results(7, stack(A, B), [0.3, 0.6], [1, 0], category_ids=[3, 9])
    assert [e["category_id"] for e in entries] == [9, 3] and entries[0]["image_id"] == 7
    assert entries[0]["bbox"] == [2.0, 2.0, 10.0, 10.0] and isinstance(entries[0]["segmentation"]["counts"], str)
    import pycocotools.mask as mu
    assert np.array_equal(mu.decode(entries[1]["segmentation"]).astype(bool), B)
    json.dumps(entries)
    with pytest.raises(ValueError, match="category id"):
        coco_results(0, stack(A), [0.5], [2], category_ids=[3, 9])


def test_bad_input_messages():
    ev = InstanceEvaluator(2)
    with pytest.raises(KeyError, match="scores"):
        ev.process(gt(A), {"masks": stack(A), "labels": [0]})
    with pytest.raises(TypeError, match="bool or uint8"):
        ev.process(gt(A), {"masks": stack(A).astype(np.float32), "scores": [1.0], "labels": [0]})
    with pytest.raises(ValueError, match="labels must be in"):
        ev.process(gt(A, labels=[2]), pred(A))
    with pytest.raises(ValueError, match=r"shape \[1\]"):
        ev.process(gt(A), pred(A, scores=[0.1, 0.2]))


def test_greedy_would_miss_the_optimal_matching():
    iou = np.array([[0.9, 0.6], [0.7, 0.0]])
    rows, cols = match_instances(iou, 0.5)
    assert sorted(zip(rows.tolist(), cols.tolist())) == [(0, 1), (1, 0)]   # greedy (0,0) would give one match
    rows, cols = match_instances(iou, 0.65)
    assert sorted(zip(rows.tolist(), cols.tolist())) == [(0, 0)]           # 0.9 beats 0.7 when one match is possible


def brute_force(iou, t):
    """Best (matches, summed matched IoU) over every one-to-one assignment."""
    n, m = iou.shape
    k = max(n, m)
    padded = np.zeros((k, k))
    padded[:n, :m] = iou
    best = (0, 0.0)
    for perm in itertools.permutations(range(k)):
        vals = padded[np.arange(k), perm]
        ok = vals >= t
        cand = (int(ok.sum()), float(vals[ok].sum()))
        if cand[0] > best[0] or (cand[0] == best[0] and cand[1] > best[1] + 1e-12):
            best = cand
    return best


@pytest.mark.parametrize("seed", range(40))
def test_matching_equals_brute_force(seed):
    rng = np.random.default_rng(seed)
    n, m = rng.integers(0, 5, size=2)
    iou = rng.choice([0.0, 0.45, 0.5, 0.55, 0.6, 0.75, 0.8, 0.95], size=(n, m)) * rng.uniform(0.98, 1.0, size=(n, m))
    thresholds = (0.5, 0.6, 0.7, 0.8, 0.9)
    counts = matching_counts(iou, thresholds)
    for i, t in enumerate(thresholds):
        tp, s = brute_force(iou, t)
        assert counts["tp"][i] == tp and counts["iou_sum"][i] == pytest.approx(s)
        assert counts["fp"][i] == m - tp and counts["fn"][i] == n - tp


def random_scene(rng, num_classes, h=96, w=96):
    """Random rectangles as truth; predictions are jittered copies (some dropped, some extra, random labels)."""
    n = int(rng.integers(1, 6))
    masks, labels = [], []
    for _ in range(n):
        size = rng.integers(4, 60, size=2)
        y, x = rng.integers(0, h - size[0]), rng.integers(0, w - size[1])
        masks.append(box_mask(y, x, y + size[0], x + size[1], h, w))
        labels.append(int(rng.integers(num_classes)))
    pmasks, plabels = [], []
    for m, lab in zip(masks, labels):
        if rng.random() < 0.2:
            continue
        pmasks.append(np.roll(m, tuple(rng.integers(-4, 5, size=2)), axis=(0, 1)))
        plabels.append(lab if rng.random() < 0.85 else int(rng.integers(num_classes)))
    for _ in range(int(rng.integers(0, 3))):
        y, x = rng.integers(0, h - 20, size=2)
        pmasks.append(box_mask(y, x, y + 20, x + 20, h, w))
        plabels.append(int(rng.integers(num_classes)))
    target = {"masks": np.stack(masks), "labels": labels}
    prediction = {"masks": np.stack(pmasks) if pmasks else np.zeros((0, h, w), bool),
                  "scores": rng.uniform(0.05, 1.0, size=len(pmasks)).tolist(), "labels": plabels}
    return target, prediction


def test_against_torchmetrics_mean_average_precision():
    from torchmetrics.detection import MeanAveragePrecision
    import pycocotools.mask as mu
    rng = np.random.default_rng(0)
    c = 3
    scenes = [random_scene(rng, c) for _ in range(12)]
    ours = run(scenes, num_classes=c)
    # torchmetrics' default thresholds come from float32 torch.linspace (0.6 -> 0.6000000238), which
    # rejects IoUs of exactly 0.6 that pycocotools' float64 thresholds accept: give it pycocotools' ones.
    coco_thresholds = {"iou_thresholds": np.linspace(0.5, 0.95, 10).tolist(),
                       "rec_thresholds": np.linspace(0.0, 1.0, 101).tolist()}
    tm = {t: MeanAveragePrecision(iou_type=t, class_metrics=True, box_format="xywh", backend="pycocotools",
                                  **coco_thresholds) for t in ("segm", "bbox")}
    for target, prediction in scenes:
        def entry(d, with_scores):
            masks = torch.from_numpy(d["masks"])
            rles = mu.encode(np.asfortranarray(d["masks"].transpose(1, 2, 0).astype(np.uint8))) if len(masks) else []
            e = {"masks": masks, "labels": torch.tensor(d["labels"], dtype=torch.long),
                 "boxes": torch.tensor(mu.toBbox(rles) if rles else np.zeros((0, 4)), dtype=torch.float)}
            if with_scores:
                e["scores"] = torch.tensor(d["scores"], dtype=torch.float)
            return e
        tm["segm"].update([entry(prediction, True)], [entry(target, False)])
        tm["bbox"].update([entry(prediction, True)], [entry(target, False)])
    for prefix, t in (("mask", "segm"), ("box", "bbox")):
        ref = tm[t].compute()
        for ours_key, ref_key in (("ap", "map"), ("ap50", "map_50"), ("ap75", "map_75"), ("ap_small", "map_small"),
                                  ("ap_medium", "map_medium"), ("ap_large", "map_large"), ("ar", "mar_100")):
            expected = float(ref[ref_key])
            got = ours[f"{prefix}_{ours_key}"]
            assert (got is None) == (expected == -1), (prefix, ours_key)
            if got is not None:
                assert got == pytest.approx(expected, abs=1e-6), (prefix, ours_key)   # torchmetrics: float32
        per_class = dict(zip(ref["classes"].tolist(), ref["map_per_class"].tolist()))
        for k in range(c):
            if ours[f"{prefix}_ap_per_class"][k] is not None:
                assert ours[f"{prefix}_ap_per_class"][k] == pytest.approx(per_class[k], abs=1e-6)
    assert 0.05 < ours["mask_ap"] < 0.95   # the cases are neither trivial nor hopeless
