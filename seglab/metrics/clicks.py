"""Interactive (click-based) segmentation: RITM's automatic clicker, the click loop, NoC / NoF / mIoU@k.

Clicker (Sofiiuk et al., "Reviving Iterative Training with Mask Guidance", RITM, ``isegm/inference/clicker.py``):
the errors are the false negatives (object pixels not predicted) and the false positives (predicted
pixels off the object), ignored pixels excluded. Each error region's Euclidean distance transform
is taken with the image border counting as boundary (the maps are padded by one background pixel);
pixels already clicked are excluded. The next click goes to the error pixel farthest from its
region's boundary: positive if the farthest false negative is strictly farther than the farthest
false positive, else negative; ties between pixels go to the first in row-major order. On an
empty prediction the first click is thus the object's centre-most pixel.

NoC@t (number of clicks): the first click count after which IoU >= t, or ``max_clicks`` when it is
never reached; NoF@t (number of failures): objects that never reach t within ``max_clicks``
(RITM's code counts NoC == max_clicks, which also counts an object reaching t exactly at the last
click). mIoU@k: mean IoU after k clicks.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
from scipy import ndimage

from .evaluator import require

NOC_THRESHOLDS = (0.85, 0.90)
MIOU_CLICKS = (1, 3, 5)


@dataclass(frozen=True)
class Click:
    y: int
    x: int
    is_positive: bool


def _as_bool(x: Any, name: str) -> np.ndarray:
    arr = np.asarray(x.cpu()) if isinstance(x, torch.Tensor) else np.asarray(x)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a [H,W] mask, got shape {arr.shape}")
    if arr.dtype != bool and not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must be a bool or integer mask, got {arr.dtype} (threshold probabilities first)")
    return arr != 0


def mask_iou(gt: np.ndarray, pred: np.ndarray, ignore: np.ndarray | None = None) -> float:
    """IoU of two bool masks over the non-ignored pixels (1.0 when both are empty)."""
    keep = np.ones(gt.shape, bool) if ignore is None else ~ignore
    union = int(((gt | pred) & keep).sum())
    return 1.0 if union == 0 else int((gt & pred & keep).sum()) / union


def _inner_distance(region: np.ndarray) -> np.ndarray:
    """Distance of each region pixel to the nearest non-region pixel, the outside of the image included."""
    return ndimage.distance_transform_edt(np.pad(region, 1))[1:-1, 1:-1]


def next_click(gt: Any, pred: Any, ignore: Any = None, clicked: Sequence[Click] = ()) -> Click | None:
    """The click RITM's clicker makes for this prediction, or None when no error pixel is left to click."""
    gt, pred = _as_bool(gt, "gt mask"), _as_bool(pred, "prediction mask")
    if gt.shape != pred.shape:
        raise ValueError(f"prediction mask is {pred.shape} but gt mask is {gt.shape}")
    keep = np.ones(gt.shape, bool) if ignore is None else ~_as_bool(ignore, "ignore mask")
    fn = _inner_distance(gt & ~pred & keep)
    fp = _inner_distance(~gt & pred & keep)
    for c in clicked:
        fn[c.y, c.x] = fp[c.y, c.x] = 0.0
    best_fn, best_fp = fn.max(), fp.max()
    if best_fn == 0 and best_fp == 0:
        return None
    positive = bool(best_fn > best_fp)
    dist = fn if positive else fp
    y, x = np.unravel_index(np.argmax(dist), dist.shape)   # argmax: first maximum in row-major order
    return Click(int(y), int(x), positive)


PredictFn = Callable[[list, Any], tuple[Any, Any]]


def run_click_session(predict_fn: PredictFn, gt_mask: Any, max_clicks: int = 20, ignore: Any = None,
                      stop_iou: float | None = None) -> dict:
    """Simulate a user on one object: click, predict, score, repeat.

    ``predict_fn(clicks, prev_logits) -> (mask, logits)`` gets every click so far (``Click`` list)
    and its own previous logits (None at the first click); any model plugs in. The session starts
    from an empty prediction, runs ``max_clicks`` clicks (or stops once IoU >= ``stop_iou``, or
    when no error pixel is left) and returns ``{"clicks", "ious"}`` (``ious[k]`` after k + 1 clicks).
    """
    gt = _as_bool(gt_mask, "gt mask")
    ignore_mask = None if ignore is None else _as_bool(ignore, "ignore mask")
    pred, logits = np.zeros_like(gt), None
    clicks: list[Click] = []
    ious: list[float] = []
    for _ in range(max_clicks):
        click = next_click(gt, pred, ignore_mask, clicks)
        if click is None:
            break
        clicks.append(click)
        mask, logits = predict_fn(list(clicks), logits)
        pred = _as_bool(mask, "predict_fn mask")
        if pred.shape != gt.shape:
            raise ValueError(f"predict_fn returned a {pred.shape} mask for a {gt.shape} object")
        ious.append(mask_iou(gt, pred, ignore_mask))
        if stop_iou is not None and ious[-1] >= stop_iou:
            break
    return {"clicks": clicks, "ious": ious}


def number_of_clicks(ious: Sequence[float], threshold: float, max_clicks: int) -> int:
    """Clicks until IoU >= threshold (1-based), ``max_clicks`` if never within ``max_clicks``."""
    for k, iou in enumerate(ious[:max_clicks], start=1):
        if iou >= threshold:
            return k
    return max_clicks


def _key(t: float) -> str:
    return f"{round(100 * t):d}"


class ClickEvaluator:
    """NoC@t, NoF@t and mIoU@k over objects; ``process`` takes one object's session.

    target: optional ``id`` (echoed per object); prediction: ``ious`` (IoU after each click, as
    ``run_click_session`` returns). A session that stopped early keeps its last IoU for mIoU@k
    (the user stopped because the mask was good enough); an empty session counts IoU 0.
    """

    def __init__(self, max_clicks: int = 20, thresholds: Sequence[float] = NOC_THRESHOLDS,
                 miou_clicks: Sequence[int] = MIOU_CLICKS):
        if max_clicks < 1:
            raise ValueError(f"max_clicks must be >= 1, got {max_clicks}")
        if any(not 0 < t <= 1 for t in thresholds):
            raise ValueError(f"IoU thresholds must be in (0, 1], got {thresholds}")
        if any(not 1 <= k <= max_clicks for k in miou_clicks):
            raise ValueError(f"mIoU click counts must be in [1, {max_clicks}], got {miou_clicks}")
        self.max_clicks, self.thresholds, self.miou_clicks = max_clicks, tuple(thresholds), tuple(miou_clicks)
        self.reset()

    def reset(self) -> None:
        self.sessions: list[tuple[Any, list[float]]] = []

    def process(self, target: Mapping[str, Any] | None, prediction: Mapping[str, Any]) -> None:
        ious = [float(v) for v in require(prediction, "ious", "ClickEvaluator prediction")]
        if any(not 0 <= v <= 1 for v in ious):
            raise ValueError(f"ClickEvaluator: IoU values must be in [0, 1], got {ious}")
        self.sessions.append(((target or {}).get("id", len(self.sessions)), ious[: self.max_clicks]))

    def _iou_after(self, ious: list[float], k: int) -> float:
        return ious[min(k, len(ious)) - 1] if ious else 0.0

    def evaluate(self) -> dict:
        """``noc_85``, ``noc_90``, ``nof_85``, ``nof_90``, ``miou_at_1/3/5``, ``miou_curve``, ``per_object``."""
        out: dict = {"num_objects": len(self.sessions), "max_clicks": self.max_clicks}
        per_object = [{"id": oid, "ious": ious} for oid, ious in self.sessions]
        for t in self.thresholds:
            nocs = [number_of_clicks(ious, t, self.max_clicks) for _, ious in self.sessions]
            reached = [any(v >= t for v in ious) for _, ious in self.sessions]
            out[f"noc_{_key(t)}"] = float(np.mean(nocs)) if nocs else None
            out[f"nof_{_key(t)}"] = int(sum(not r for r in reached))
            for row, n in zip(per_object, nocs):
                row[f"noc_{_key(t)}"] = n
        curve = [float(np.mean([self._iou_after(ious, k) for _, ious in self.sessions])) if self.sessions else None
                 for k in range(1, self.max_clicks + 1)]
        for k in self.miou_clicks:
            out[f"miou_at_{k}"] = curve[k - 1]
        out["miou_curve"] = curve
        out["per_object"] = per_object
        return out
