"""Test-time augmentation of instance detections: the model sees the mirror images it was trained on, and
the detections of every view are merged into one set (`tta=true` for instance checkpoints).

1. Views: the image and its mirror images: both flips when the checkpoint's training augmentation flipped
   vertically (`VERTICAL_FLIP_PRESETS` of the augmentation registry: flips, microscopy), else the horizontal
   one only (as semantic tta), so a model trained with "up" in its images is never shown them upside down.
2. Each view's detections (boxes, scores, labels, mask probabilities at the view's size) are mirrored
   back onto the image.
3. Merge, best score first: a detection gathers, from each other view, the unclaimed detection of its
   class whose box overlaps it most, when that box IoU is at least `MERGE_IOU`. The group becomes one
   detection: its mask probabilities are the mean over its members, its score the sum of their scores over
   the number of views (a detection one view alone finds keeps 1/V of its score: agreement is confidence),
   its box the mean box. Groups are ordered by that score; the caller applies score_threshold and
   max_detections as without TTA.
The merged set then goes through the same painting and scoring as a single view (seglab/inference/instance.py),
so val still scores exactly what predict writes.
"""

from __future__ import annotations

import numpy as np
import torch
from torchvision.ops import box_iou

from seglab.data.instance.augment import VERTICAL_FLIP_PRESETS

MERGE_IOU = 0.55  # box IoU at which two views' detections are the same object
FLIPS = {"identity": (), "horizontal": (-1,), "vertical": (-2,), "both": (-2, -1)}  # flip name -> tensor dims


def tta_views(config: dict | None) -> tuple[str, ...]:
    """The views for a checkpoint trained with `config` (its saved training config; None: horizontal only)."""
    config = config or {}
    upside_down = config.get("augment", True) and config.get("augment_preset", "") in VERTICAL_FLIP_PRESETS
    return tuple(FLIPS) if upside_down else ("identity", "horizontal")


def unflip(found: dict, dims: tuple[int, ...], height: int, width: int) -> dict:
    """A view's detections {boxes [N, 4] xyxy, scores, labels, probs [N, h, w]} mirrored back by `dims`."""
    boxes = found["boxes"].copy()
    if -1 in dims:
        boxes[:, [0, 2]] = width - found["boxes"][:, [2, 0]]
    if -2 in dims:
        boxes[:, [1, 3]] = height - found["boxes"][:, [3, 1]]
    axes = tuple(d + 3 for d in dims)  # probs are [N, h, w]: -1 -> 2, -2 -> 1
    probs = np.flip(found["probs"], axes) if axes else found["probs"]
    return {**found, "boxes": boxes, "probs": np.ascontiguousarray(probs)}


def merge(views: list[dict]) -> dict:
    """The detections of V views (each unflipped, at the same size) -> one set, by score descending."""
    count = len(views)
    scores = np.concatenate([v["scores"] for v in views]).astype(np.float64)
    labels = np.concatenate([v["labels"] for v in views])
    boxes = np.concatenate([v["boxes"] for v in views]).astype(np.float32)
    view_of = np.concatenate([np.full(len(v["scores"]), i) for i, v in enumerate(views)])
    probs = [p for v in views for p in v["probs"]]
    shape = views[0]["probs"].shape[1:]
    if not len(scores):
        return {"scores": np.zeros(0, np.float32), "labels": labels, "boxes": boxes.reshape(0, 4),
                "probs": np.zeros((0, *shape), np.float32)}
    iou = np.nan_to_num(box_iou(torch.from_numpy(boxes), torch.from_numpy(boxes)).numpy())  # empty masks: 0 boxes
    iou[labels[:, None] != labels[None, :]] = 0.0
    claimed = np.zeros(len(scores), bool)
    groups = []
    for i in np.argsort(-scores, kind="stable"):
        if claimed[i]:
            continue
        members = [i]
        claimed[i] = True
        for other in range(count):
            if other == view_of[i]:
                continue
            candidates = np.flatnonzero((view_of == other) & ~claimed & (iou[i] >= MERGE_IOU))
            if len(candidates):
                best = candidates[np.argmax(iou[i, candidates])]
                members.append(best)
                claimed[best] = True
        groups.append(members)
    merged_scores = np.array([scores[g].sum() / count for g in groups], np.float32)
    order = np.argsort(-merged_scores, kind="stable")
    groups = [groups[k] for k in order]
    return {"scores": merged_scores[order], "labels": np.array([labels[g[0]] for g in groups]),
            "boxes": np.stack([boxes[g].mean(0) for g in groups]),
            "probs": np.stack([np.mean([probs[m] for m in g], axis=0) for g in groups]).astype(np.float32)}
