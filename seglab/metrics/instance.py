"""Instance segmentation metrics: COCO mask / box AP (pycocotools) and one-to-one matching accuracy.

``InstanceEvaluator(num_classes)`` follows the evaluator protocol (``seglab.metrics.evaluator``):

- target: ``masks`` bool/uint8 ``[N,H,W]``, ``labels`` ``[N]`` (0-based class index), optional
  ``iscrowd`` ``[N]`` and ``image_id`` (any JSON value, echoed in the per-image list);
- prediction: ``masks`` ``[M,H,W]`` bool/uint8 (nonzero = object), ``scores`` ``[M]``, ``labels`` ``[M]``,
  optional ``boxes`` ``[M,4]`` xyxy pixels (else box AP uses each mask's bounding box).

Each image is run-length encoded once (``pycocotools.mask.encode``) and only the RLEs are kept;
``evaluate()`` builds COCO ground-truth and result objects in memory and runs ``COCOeval`` for
"segm" and "bbox". Empty ground-truth masks are not objects and are dropped.

Matching accuracy (StarDist's ``matching``; the nuclei literature's "accuracy" / DSB 2018 score):
per image, predictions with ``score >= score_threshold`` and non-crowd truths are matched
one-to-one, class-agnostic, maximising first the number of pairs with IoU >= t and then the sum
of those pairs' IoU (``scipy.optimize.linear_sum_assignment``). TP = matched pairs, FP = unmatched
predictions, FN = unmatched truths; accuracy = TP / (TP + FP + FN), precision, recall,
F1 = 2TP / (2TP + FP + FN), mean matched IoU = sum of matched IoU / TP, panoptic quality =
sum of matched IoU / (TP + FP/2 + FN/2). Dataset level sums TP, FP, FN and matched IoU over images.
"""
from __future__ import annotations

import contextlib
import io
from typing import Any, Mapping, Sequence

import numpy as np
import pycocotools.mask as mask_utils
import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from scipy.optimize import linear_sum_assignment

from .evaluator import require

MATCH_THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9)
AREA_NAMES = ("all", "small", "medium", "large")  # COCOeval's areaRngLbl order


def as_masks(masks: Any, name: str) -> np.ndarray:
    """``[N,H,W]`` bool/uint8 (tensor or array) -> bool numpy array; floats are refused."""
    arr = np.asarray(torch.as_tensor(masks).cpu()) if isinstance(masks, torch.Tensor) else np.asarray(masks)
    if arr.ndim != 3:
        raise ValueError(f"{name} must be [N,H,W] (use shape [0,H,W] for no objects), got shape {arr.shape}")
    if arr.dtype != bool and not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must be bool or uint8 masks, got {arr.dtype} (threshold probabilities first)")
    return arr != 0


def as_vector(values: Any, length: int, name: str, dtype) -> np.ndarray:
    arr = np.asarray(torch.as_tensor(values).cpu()) if isinstance(values, torch.Tensor) else np.asarray(values)
    arr = arr.reshape(-1) if arr.size == length else arr
    if arr.shape != (length,):
        raise ValueError(f"{name} must have shape [{length}] (one per mask), got {arr.shape}")
    return arr.astype(dtype)


def encode_masks(masks: np.ndarray) -> list[dict]:
    """COCO RLEs (``counts`` as str, JSON-ready) of bool masks ``[N,H,W]``."""
    if len(masks) == 0:
        return []
    rles = mask_utils.encode(np.asfortranarray(masks.transpose(1, 2, 0).astype(np.uint8)))
    for rle in rles:
        rle["counts"] = rle["counts"].decode("ascii")
    return rles


def xyxy_to_xywh(boxes: np.ndarray) -> np.ndarray:
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)


def coco_results(image_id: int, masks: Any, scores: Any, labels: Any, category_ids: Sequence[int] | None = None,
                 boxes: Any = None) -> list[dict]:
    """COCO results-JSON entries for one image's predictions (what ``predict`` writes).

    Each entry: ``image_id``, ``category_id`` (``category_ids[label]``, default ``label + 1``),
    ``segmentation`` (RLE with str counts), ``score``, ``bbox`` (xywh; the mask's box, or
    ``boxes`` given as xyxy pixels).
    """
    masks = as_masks(masks, "prediction masks")
    scores = as_vector(scores, len(masks), "prediction scores", np.float64)
    labels = as_vector(labels, len(masks), "prediction labels", np.int64)
    if category_ids is not None and len(labels) and (labels.min() < 0 or labels.max() >= len(category_ids)):
        raise ValueError(f"prediction label outside [0, {len(category_ids)}) has no category id")
    rles = encode_masks(masks)
    xywh = mask_utils.toBbox(rles) if boxes is None else xyxy_to_xywh(boxes)
    if len(xywh) != len(masks):
        raise ValueError(f"prediction boxes must be [{len(masks)},4], got {len(xywh)} boxes")
    return [{"image_id": int(image_id),
             "category_id": int(label + 1 if category_ids is None else category_ids[label]),
             "segmentation": rle, "score": float(score), "bbox": [float(v) for v in box]}
            for rle, score, label, box in zip(rles, scores, labels, np.reshape(xywh, (-1, 4)))]


def match_instances(iou: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """One-to-one matching on an IoU matrix ``[N_true, N_pred]``: (true index, pred index) of the matches.

    Maximises the number of pairs with IoU >= threshold, then the sum of their IoU: each pair
    with IoU >= t is worth 1 + IoU / (2 min(N, M)), so any extra match outweighs any IoU gain.
    """
    n = min(iou.shape)
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    ok = iou >= threshold
    rows, cols = linear_sum_assignment(np.where(ok, 1.0 + iou / (2 * n), 0.0), maximize=True)
    keep = ok[rows, cols]
    return rows[keep], cols[keep]


def matching_counts(iou: np.ndarray, thresholds: Sequence[float]) -> dict[str, np.ndarray]:
    """Per threshold: tp, fp, fn and the summed IoU of the matched pairs."""
    n_true, n_pred = iou.shape
    tp, iou_sum = [], []
    for t in thresholds:
        rows, cols = match_instances(iou, t)
        tp.append(len(rows))
        iou_sum.append(float(iou[rows, cols].sum()))
    tp = np.asarray(tp, np.int64)
    return {"tp": tp, "fp": n_pred - tp, "fn": n_true - tp, "iou_sum": np.asarray(iou_sum)}


def _ratio(num, den) -> list:
    return [float(a) / float(b) if b > 0 else None for a, b in zip(np.atleast_1d(num), np.atleast_1d(den))]


def matching_scores(counts: Mapping[str, np.ndarray], thresholds: Sequence[float]) -> dict:
    """Accuracy, precision, recall, F1, mean matched IoU and PQ from (summed) counts."""
    tp, fp, fn, s = (np.asarray(counts[k]) for k in ("tp", "fp", "fn", "iou_sum"))
    return {"thresholds": [float(t) for t in thresholds], "tp": tp.tolist(), "fp": fp.tolist(), "fn": fn.tolist(),
            "accuracy": _ratio(tp, tp + fp + fn), "precision": _ratio(tp, tp + fp), "recall": _ratio(tp, tp + fn),
            "f1": _ratio(2 * tp, 2 * tp + fp + fn), "mean_matched_iou": _ratio(s, tp),
            "panoptic_quality": _ratio(s, tp + 0.5 * fp + 0.5 * fn)}


def _quiet(fn, *args):
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
        return fn(*args)


def _mean_defined(values: np.ndarray) -> float | None:
    values = values[values > -1]  # COCOeval marks "no ground truth" with -1
    return float(values.mean()) if values.size else None


def coco_scores(coco_eval: COCOeval) -> dict:
    """AP, AP50, AP75, AP by size, AR and per-class AP from an accumulated COCOeval."""
    precision, recall = coco_eval.eval["precision"], coco_eval.eval["recall"]  # [T,R,K,A,M], [T,K,A,M]
    thrs = coco_eval.params.iouThrs
    out = {"ap": _mean_defined(precision[:, :, :, 0, -1])}
    for name, t in (("ap50", 0.5), ("ap75", 0.75)):
        out[name] = _mean_defined(precision[np.isclose(thrs, t), :, :, 0, -1])
    for a, area in enumerate(AREA_NAMES[1:], start=1):
        out[f"ap_{area}"] = _mean_defined(precision[:, :, :, a, -1])
    out["ar"] = _mean_defined(recall[:, :, 0, -1])
    out["ap_per_class"] = [_mean_defined(precision[:, :, k, 0, -1]) for k in range(precision.shape[2])]
    return out


class InstanceEvaluator:
    """COCO mask and box AP plus matching accuracy, streamed image by image (see the module docstring)."""

    def __init__(self, num_classes: int, thresholds: Sequence[float] = MATCH_THRESHOLDS,
                 score_threshold: float = 0.5, max_detections: int = 100):
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        if not thresholds or any(not 0 < t <= 1 for t in thresholds):
            raise ValueError(f"matching thresholds must be in (0, 1], got {thresholds}")
        self.num_classes, self.thresholds = num_classes, tuple(float(t) for t in thresholds)
        self.score_threshold, self.max_detections = score_threshold, max_detections
        self.reset()

    def reset(self) -> None:
        self.images: list[dict] = []        # COCO image entries
        self.truths: list[dict] = []        # COCO ground-truth annotations
        self.results: list[dict] = []       # COCO result entries
        self.per_image: list[dict] = []     # matching counts per image

    def process(self, target: Mapping[str, Any], prediction: Mapping[str, Any]) -> None:
        where = "InstanceEvaluator"
        gt = as_masks(require(target, "masks", f"{where} target"), "target masks")
        gt_labels = as_vector(require(target, "labels", f"{where} target"), len(gt), "target labels", np.int64)
        crowd = as_vector(target.get("iscrowd", np.zeros(len(gt))), len(gt), "target iscrowd", bool)
        pred = as_masks(require(prediction, "masks", f"{where} prediction"), "prediction masks")
        if pred.shape[1:] != gt.shape[1:]:
            raise ValueError(f"prediction masks are {pred.shape[1:]} but target masks are {gt.shape[1:]}")
        for name, labels in (("target", gt_labels), ("prediction", prediction.get("labels", []))):
            labels = np.asarray(labels)
            if labels.size and (labels.min() < 0 or labels.max() >= self.num_classes):
                raise ValueError(f"{name} labels must be in [0, {self.num_classes}), got {labels.min()}..{labels.max()}")
        image_id = len(self.images) + 1
        h, w = gt.shape[1:]
        results = coco_results(image_id, pred, require(prediction, "scores", f"{where} prediction"),
                               require(prediction, "labels", f"{where} prediction"), boxes=prediction.get("boxes"))
        self.images.append({"id": image_id, "height": int(h), "width": int(w)})
        self.results.extend(results)

        nonempty = gt.reshape(len(gt), h * w).any(axis=1)
        gt, gt_labels, crowd = gt[nonempty], gt_labels[nonempty], crowd[nonempty]
        gt_rles = encode_masks(gt)
        areas = [mask_utils.area(r) for r in gt_rles]  # one by one: pycocotools' area() of >255 RLEs overflows (NumPy 2)
        for rle, label, is_crowd, box, area in zip(gt_rles, gt_labels, crowd, mask_utils.toBbox(gt_rles) if gt_rles else [],
                                                    areas):
            self.truths.append({"id": len(self.truths) + 1, "image_id": image_id, "category_id": int(label) + 1,
                                "segmentation": rle, "area": float(area), "bbox": [float(v) for v in box],
                                "iscrowd": int(is_crowd)})
        confident = [r["segmentation"] for r in results if r["score"] >= self.score_threshold]
        objects = [rle for rle, is_crowd in zip(gt_rles, crowd) if not is_crowd]
        iou = (np.asarray(mask_utils.iou(confident, objects, [0] * len(objects))).T.reshape(len(objects), len(confident))
               if confident and objects else np.zeros((len(objects), len(confident))))
        counts = matching_counts(iou, self.thresholds)
        self.per_image.append({"image_id": target.get("image_id", len(self.images) - 1), "num_gt": len(objects),
                               "num_pred": len(confident), **counts})

    def _coco_eval(self, iou_type: str) -> dict:
        categories = [{"id": k + 1, "name": str(k)} for k in range(self.num_classes)]
        gt = COCO()
        gt.dataset = {"images": self.images, "categories": categories, "annotations": self.truths}
        _quiet(gt.createIndex)
        dt = COCO()
        anns = []
        for i, r in enumerate(self.results, start=1):  # ids start at 1: COCOeval reads id 0 as "unmatched"
            ann = {**r, "id": i, "iscrowd": 0}
            if iou_type == "segm":
                ann["area"] = float(mask_utils.area(r["segmentation"]))
                ann.pop("bbox")  # as COCO.loadRes: segm results carry their mask's area
            else:
                ann["area"] = r["bbox"][2] * r["bbox"][3]
                ann.pop("segmentation")
            anns.append(ann)
        dt.dataset = {"images": self.images, "categories": categories, "annotations": anns}
        _quiet(dt.createIndex)
        ev = COCOeval(gt, dt, iou_type)
        ev.params.maxDets = [1, 10, self.max_detections]
        _quiet(ev.evaluate)
        _quiet(ev.accumulate)
        return coco_scores(ev)

    def evaluate(self) -> dict:
        """``mask_ap``, ``mask_ap50``, ``mask_ap75``, ``mask_ap_small/medium/large``, ``mask_ar``,
        ``mask_ap_per_class``, the same with ``box_``, ``matching`` (dataset level, one value per
        threshold), ``match_accuracy_50`` / ``match_accuracy_mean`` and ``per_image``."""
        out: dict = {"num_images": len(self.images), "num_gt": len(self.truths), "num_pred": len(self.results)}
        for prefix, iou_type in (("mask", "segm"), ("box", "bbox")):
            scores = self._coco_eval(iou_type) if self.images else dict.fromkeys(
                ["ap", "ap50", "ap75", "ap_small", "ap_medium", "ap_large", "ar"], None) | {"ap_per_class": [None] * self.num_classes}
            out.update({f"{prefix}_{k}": v for k, v in scores.items()})
        total = {k: sum((p[k] for p in self.per_image), np.zeros(len(self.thresholds), dtype))
                 for k, dtype in (("tp", np.int64), ("fp", np.int64), ("fn", np.int64), ("iou_sum", np.float64))}
        out["matching"] = matching_scores(total, self.thresholds) | {"score_threshold": self.score_threshold}
        acc = out["matching"]["accuracy"]
        out["match_accuracy_50"] = acc[self.thresholds.index(0.5)] if 0.5 in self.thresholds else None
        out["match_accuracy_mean"] = float(np.mean(acc)) if all(a is not None for a in acc) else None
        out["per_image"] = [{"image_id": p["image_id"], "num_gt": p["num_gt"], "num_pred": p["num_pred"],
                             **{k: v for k, v in matching_scores(p, self.thresholds).items() if k != "thresholds"}}
                            for p in self.per_image]
        return out
