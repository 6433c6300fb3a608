"""Panoptic quality (Kirillov et al., CVPR 2019) with panopticapi's matching rules, streamed per image.

Canonical form of one panoptic image (COCO panoptic's): ``segment_ids`` int ``[H,W]`` (0 = void /
unlabelled) and ``segments``, a list of ``{"id", "category_id", "iscrowd"}`` (``iscrowd`` optional,
default 0; ``category_id`` a 0-based class index). Converters: ``from_semantic_instance`` /
``to_semantic_instance`` (category map + instance map), ``rgb_to_id`` / ``id_to_rgb`` (COCO
panoptic PNGs, id = R + 256 G + 256^2 B) and ``segments_info`` (area, bbox xywh, iscrowd).

Rules, per image (panopticapi ``pq_compute``):
- a truth segment and a predicted segment match when they have the same category and
  IoU > 0.5, where pixels that are void in the truth leave the union
  (union = |pred| + |truth| - |both| - |pred on truth void|); IoU > 0.5 makes matches unique;
- crowd truth segments are never matched and never false negatives;
- an unmatched predicted segment is a false positive unless more than half of it lies on truth
  void plus the crowd regions of its own category;
- every unmatched non-crowd truth segment is a false negative.
Per class: PQ = sum IoU / (TP + FP/2 + FN/2), SQ = sum IoU / TP (0 if TP = 0), RQ = TP / (TP + FP/2 + FN/2).
Averages (overall, things, stuff) are over the classes with TP + FP + FN > 0.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import torch

from .distributed import all_reduce_sum
from .evaluator import require

VOID = 0


def rgb_to_id(rgb: np.ndarray) -> np.ndarray:
    """COCO panoptic PNG ``[H,W,3]`` uint8 -> segment ids ``[H,W]`` int64 (R + 256 G + 256^2 B)."""
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"a panoptic PNG must be [H,W,3] RGB, got shape {rgb.shape}")
    rgb = rgb.astype(np.int64)
    return rgb[..., 0] + 256 * rgb[..., 1] + 256 * 256 * rgb[..., 2]


def id_to_rgb(ids: np.ndarray) -> np.ndarray:
    """Segment ids ``[H,W]`` (0 <= id < 256^3) -> RGB ``[H,W,3]`` uint8 for a COCO panoptic PNG."""
    ids = np.asarray(ids).astype(np.int64)
    if ids.size and (ids.min() < 0 or ids.max() >= 256 ** 3):
        raise ValueError(f"segment ids must be in [0, 256^3) to fit in RGB, got {ids.min()}..{ids.max()}")
    return np.stack([ids % 256, ids // 256 % 256, ids // 65536], axis=-1).astype(np.uint8)


def segments_info(segment_ids: np.ndarray, categories: Mapping[int, int],
                  iscrowd: Mapping[int, int] | None = None) -> list[dict]:
    """COCO ``segments_info`` for each non-void id in the map: id, category_id, area, bbox (xywh), iscrowd."""
    segment_ids = np.asarray(segment_ids)
    out = []
    for sid in np.unique(segment_ids):
        if sid == VOID:
            continue
        if int(sid) not in categories:
            raise KeyError(f"segment id {int(sid)} is in the map but has no category")
        ys, xs = np.nonzero(segment_ids == sid)
        out.append({"id": int(sid), "category_id": int(categories[int(sid)]), "area": int(len(ys)),
                    "bbox": [int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)],
                    "iscrowd": int((iscrowd or {}).get(int(sid), 0))})
    return out


def from_semantic_instance(category_map: np.ndarray, instance_map: np.ndarray, is_thing: Sequence[bool],
                           void_label: int = 255) -> tuple[np.ndarray, list[dict]]:
    """Category map + instance map ``[H,W]`` -> (segment ids, segments).

    A thing class gives one segment per (category, instance id) pair; a stuff class one segment
    per category whatever its instance ids; ``void_label`` pixels become void (id 0).
    """
    cat, inst = np.asarray(category_map).astype(np.int64), np.asarray(instance_map).astype(np.int64)
    if cat.shape != inst.shape or cat.ndim != 2:
        raise ValueError(f"category and instance maps must be the same [H,W], got {cat.shape} and {inst.shape}")
    valid = cat != void_label
    if valid.any() and (cat[valid].min() < 0 or cat[valid].max() >= len(is_thing)):
        raise ValueError(f"category map has values outside [0, {len(is_thing)}) besides void {void_label}")
    thing = np.asarray(is_thing, bool)[np.where(valid, cat, 0)] & valid
    lo = int(inst.min(initial=0))
    span = int(inst.max(initial=0)) - lo + 1
    key = np.where(valid, cat, -1) * span + np.where(thing, inst - lo, 0)   # void: the one negative key
    keys, first, inverse = np.unique(key.ravel(), return_index=True, return_inverse=True)
    segment_ids = inverse.reshape(cat.shape) + 1
    segments = []
    for i, k in enumerate(keys):
        if k < 0:
            segment_ids[segment_ids == i + 1] = VOID
            continue
        segments.append({"id": i + 1, "category_id": int(cat.ravel()[first[i]]), "iscrowd": 0})
    return segment_ids, segments


def to_semantic_instance(segment_ids: np.ndarray, segments: Sequence[Mapping], void_label: int = 255,
                         is_thing: Sequence[bool] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(segment ids, segments) -> category map (void -> ``void_label``) and instance map (the segment id; 0 for stuff)."""
    segment_ids = np.asarray(segment_ids).astype(np.int64)
    cat = np.full(segment_ids.shape, void_label, np.int64)
    inst = np.zeros(segment_ids.shape, np.int64)
    for seg in segments:
        where = segment_ids == seg["id"]
        cat[where] = seg["category_id"]
        if is_thing is None or is_thing[seg["category_id"]]:
            inst[where] = seg["id"]
    return cat, inst


def _as_id_map(x: Any, name: str) -> np.ndarray:
    arr = np.asarray(x.cpu()) if isinstance(x, torch.Tensor) else np.asarray(x)
    if arr.ndim != 2 or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name} must be an integer [H,W] map, got {arr.dtype} {arr.shape}")
    return arr.astype(np.int64)


def _segment_table(ids: np.ndarray, segments: Sequence[Mapping], num_classes: int, name: str):
    """Category and crowd flag per unique id of the map (index 0 of ``np.unique`` order); checks consistency."""
    by_id = {}
    for seg in segments:
        sid = int(require(seg, "id", f"{name} segment"))
        cat = int(require(seg, "category_id", f"{name} segment {sid}"))
        if sid == VOID:
            raise ValueError(f"{name}: segment id 0 is reserved for void")
        if sid in by_id:
            raise ValueError(f"{name}: segment id {sid} is listed twice")
        if not 0 <= cat < num_classes:
            raise ValueError(f"{name}: segment {sid} has category_id {cat} outside [0, {num_classes})")
        by_id[sid] = (cat, int(seg.get("iscrowd", 0)))
    present = set(int(v) for v in ids) - {VOID}
    if present - set(by_id):
        raise ValueError(f"{name}: segment ids {sorted(present - set(by_id))} are in the map but not in segments")
    if set(by_id) - present:
        raise ValueError(f"{name}: segment ids {sorted(set(by_id) - present)} are in segments but have no pixel")
    cats = np.array([by_id[int(v)][0] if v != VOID else -1 for v in ids], np.int64)
    crowd = np.array([bool(by_id[int(v)][1]) if v != VOID else False for v in ids])
    return cats, crowd


def image_pq_counts(target: Mapping[str, Any], prediction: Mapping[str, Any], num_classes: int) -> dict[str, np.ndarray]:
    """Per-class ``tp``, ``fp``, ``fn`` (int64) and ``iou_sum`` (float64) of one image."""
    gt = _as_id_map(require(target, "segment_ids", "PanopticEvaluator target"), "target segment_ids")
    pr = _as_id_map(require(prediction, "segment_ids", "PanopticEvaluator prediction"), "prediction segment_ids")
    if gt.shape != pr.shape:
        raise ValueError(f"prediction segment_ids are {pr.shape} but target segment_ids are {gt.shape}")
    g_ids, g_inv = np.unique(gt, return_inverse=True)
    p_ids, p_inv = np.unique(pr, return_inverse=True)
    g_cat, g_crowd = _segment_table(g_ids, require(target, "segments", "PanopticEvaluator target"), num_classes, "target")
    p_cat, _ = _segment_table(p_ids, require(prediction, "segments", "PanopticEvaluator prediction"), num_classes, "prediction")
    inter = np.bincount(g_inv.ravel() * len(p_ids) + p_inv.ravel(), minlength=len(g_ids) * len(p_ids))
    inter = inter.reshape(len(g_ids), len(p_ids))
    g_area, p_area = inter.sum(axis=1), inter.sum(axis=0)
    g_void, p_void = g_ids == VOID, p_ids == VOID
    on_void = inter[g_void].sum(axis=0)                       # each predicted segment's pixels on truth void
    union = p_area[None, :] + g_area[:, None] - inter - on_void[None, :]
    iou = inter / np.maximum(union, 1)
    candidate = (g_cat[:, None] == p_cat[None, :]) & ~g_void[:, None] & ~g_crowd[:, None] & ~p_void[None, :]
    matched = candidate & (iou > 0.5)
    gi, pi = np.nonzero(matched)
    counts = {k: np.zeros(num_classes, np.int64) for k in ("tp", "fp", "fn")}
    counts["iou_sum"] = np.zeros(num_classes, np.float64)
    np.add.at(counts["tp"], g_cat[gi], 1)
    np.add.at(counts["iou_sum"], g_cat[gi], iou[gi, pi])
    missed = ~matched.any(axis=1) & ~g_void & ~g_crowd
    np.add.at(counts["fn"], g_cat[missed], 1)
    crowd_same_class = (((g_cat[:, None] == p_cat[None, :]) & g_crowd[:, None]) * inter).sum(axis=0)
    ignored = (on_void + crowd_same_class) / np.maximum(p_area, 1) > 0.5
    false_pos = ~matched.any(axis=0) & ~p_void & ~ignored
    np.add.at(counts["fp"], p_cat[false_pos], 1)
    return counts


def pq_from_counts(tp, fp, fn, iou_sum, is_thing: Sequence[bool]) -> dict:
    """PQ / SQ / RQ per class and averaged (all, things, stuff) from per-class counts."""
    tp, fp, fn, iou_sum = (np.asarray(x, np.float64) for x in (tp, fp, fn, iou_sum))
    den = tp + 0.5 * fp + 0.5 * fn
    present = (tp + fp + fn) > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        sq = np.where(tp > 0, iou_sum / np.maximum(tp, 1), 0.0)
        rq = np.where(den > 0, tp / np.maximum(den, 1e-12), 0.0)
    pq = sq * rq
    thing = np.asarray(is_thing, bool)
    out = {}
    for suffix, group in (("", np.ones_like(thing)), ("_things", thing), ("_stuff", ~thing)):
        use = present & group
        for name, values in (("pq", pq), ("sq", sq), ("rq", rq)):
            out[name + suffix] = float(values[use].mean()) if use.any() else None
        out["num_classes" + suffix] = int(use.sum())
    out["per_class"] = {name: [float(v) if ok else None for v, ok in zip(values, present)]
                        for name, values in (("pq", pq), ("sq", sq), ("rq", rq))}
    out["per_class"].update({"tp": tp.astype(int).tolist(), "fp": fp.astype(int).tolist(), "fn": fn.astype(int).tolist()})
    return out


class PanopticEvaluator:
    """Streaming PQ / SQ / RQ: per-class TP, FP, FN and summed IoU over every processed image.

    target / prediction keys: ``segment_ids`` int ``[H,W]`` and ``segments`` (see module docstring).
    """

    def __init__(self, is_thing: Sequence[bool], class_names: Sequence[str] | None = None):
        if len(is_thing) < 1:
            raise ValueError("is_thing needs one flag per class")
        if class_names is not None and len(class_names) != len(is_thing):
            raise ValueError(f"{len(class_names)} class names for {len(is_thing)} classes")
        self.is_thing = [bool(t) for t in is_thing]
        self.class_names = list(class_names) if class_names is not None else None
        self.num_classes = len(self.is_thing)
        self.reset()

    def reset(self) -> None:
        c = self.num_classes
        self.tp, self.fp, self.fn = (torch.zeros(c, dtype=torch.int64) for _ in range(3))
        self.iou_sum = torch.zeros(c, dtype=torch.float64)
        self.num_images = torch.zeros((), dtype=torch.int64)

    def process(self, target: Mapping[str, Any], prediction: Mapping[str, Any]) -> None:
        counts = image_pq_counts(target, prediction, self.num_classes)
        for name in ("tp", "fp", "fn", "iou_sum"):
            getattr(self, name).add_(torch.from_numpy(counts[name]))
        self.num_images += 1

    def merge(self, other: "PanopticEvaluator") -> "PanopticEvaluator":
        if other.is_thing != self.is_thing:
            raise ValueError("can only merge PanopticEvaluators with the same classes")
        for name in ("tp", "fp", "fn", "iou_sum", "num_images"):
            getattr(self, name).add_(getattr(other, name))
        return self

    def all_reduce(self) -> None:
        """Sum the counts over all processes when torch.distributed is initialised; no-op otherwise."""
        for name in ("tp", "fp", "fn", "iou_sum", "num_images"):
            setattr(self, name, all_reduce_sum(getattr(self, name)))

    def evaluate(self) -> dict:
        """``pq``, ``sq``, ``rq`` and their ``_things`` / ``_stuff`` versions, ``per_class``, ``num_images``."""
        out = pq_from_counts(self.tp.numpy(), self.fp.numpy(), self.fn.numpy(), self.iou_sum.numpy(), self.is_thing)
        out["num_images"] = int(self.num_images)
        if self.class_names is not None:
            out["per_class"]["name"] = self.class_names
        return out
