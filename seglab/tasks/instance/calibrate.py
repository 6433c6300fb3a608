"""Calibrating `min_score` on training images: the score an instance must reach to be drawn and matched.

Matching accuracy at IoU 0.5 (TP / (TP + FP + FN), seglab/metrics/instance.py) depends strongly on which
detections are kept; choosing that threshold on val would score val optimistically. So after best.pt is
chosen, training (and `seglab val calibrate=true`, for an existing checkpoint) runs a seeded subset of at
most `MAX_IMAGES` TRAINING images once each through `InstancePredictor.predict` (the path val / predict run,
at each image's own size), keeps every detection with its score, and for each threshold of `GRID` scores
the prefix with score >= t (the instances `seglab predict` would draw at min_score=t; painted best first, so
dropping the tail changes no other instance's pixels) with the metrics' matcher (`matching_counts`). The
threshold with the highest dataset-level accuracy wins (ties: the lower one) and is recorded as
ckpt["calibration"] = {min_score, split, images, image_names, matching_accuracy_50 {"0.05": acc, ...}, ...},
written atomically (read, then `atomic_save`). `seglab val` / `seglab predict` use it unless min_score= is given.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pycocotools.mask as mask_utils

from seglab.data.instance.spec import InstanceItem, InstanceSplit
from seglab.engine.checkpoint import atomic_save, load_checkpoint
from seglab.inference.instance import InstancePrediction, InstancePredictor
from seglab.metrics.instance import encode_masks, matching_counts, matching_scores

GRID = tuple(round(0.05 * k, 2) for k in range(1, 20))  # 0.05 .. 0.95
MAX_IMAGES = 64
IOU = 0.5
CHUNK = 32  # instances turned into masks at a time (a tiled image can hold thousands)


def calibration_items(split: InstanceSplit, seed: int, max_images: int = MAX_IMAGES) -> list[InstanceItem]:
    """At most `max_images` items of `split`, a seeded random choice kept in the split's order."""
    count = min(max_images, len(split.items))
    chosen = np.random.default_rng(seed).choice(len(split.items), size=count, replace=False)
    return [split.items[i] for i in sorted(chosen.tolist())]


def prediction_rles(prediction: InstancePrediction) -> list[dict]:
    """COCO RLEs of the prediction's instances, best score first (as InstanceEvaluator encodes them)."""
    rles = []
    for first in range(0, len(prediction), CHUNK):
        ids = np.arange(first + 1, min(first + CHUNK, len(prediction)) + 1, dtype=prediction.ids.dtype)
        rles += encode_masks(prediction.ids[None] == ids[:, None, None])
    return rles


def iou_matrix(item: InstanceItem, prediction: InstancePrediction) -> np.ndarray:
    """IoU [true objects, predictions] as InstanceEvaluator computes it: empty and crowd truths are not objects."""
    truth = item.load()
    height, width = truth.masks.shape[1:]
    objects = truth.masks[truth.masks.reshape(len(truth.masks), height * width).any(1) & ~truth.iscrowd]
    truths, found = encode_masks(objects), prediction_rles(prediction)
    if not truths or not found:
        return np.zeros((len(truths), len(found)))
    return np.asarray(mask_utils.iou(found, truths, [0] * len(truths))).T.reshape(len(truths), len(found))


def sweep(predictor: InstancePredictor, items: list[InstanceItem], grid: tuple[float, ...] = GRID) -> dict:
    """Matching counts summed over `items` for every threshold of `grid`, from one prediction per image."""
    total = {k: np.zeros(len(grid), dtype) for k, dtype in (("tp", np.int64), ("fp", np.int64), ("fn", np.int64),
                                                            ("iou_sum", np.float64))}
    for item in items:
        prediction = predictor.predict(item.image)
        iou = iou_matrix(item, prediction)
        for index, threshold in enumerate(grid):
            kept = int((prediction.scores >= threshold).sum())  # a prefix: scores descend
            counts = matching_counts(iou[:, :kept], (IOU,))
            for key, summed in total.items():
                summed[index] += counts[key][0]
    return matching_scores(total, grid)


def choose(grid: tuple[float, ...], accuracy: list) -> float | None:
    """The threshold with the highest accuracy (ties: the lower threshold); None when none is defined."""
    defined = [(a, -t) for t, a in zip(grid, accuracy) if a is not None]
    return -max(defined)[1] if defined else None


def calibrate(predictor: InstancePredictor, split: InstanceSplit, seed: int, max_images: int = MAX_IMAGES) -> dict:
    """The calibration record of `predictor` on a seeded subset of `split` (see the module docstring)."""
    threshold = predictor.options.score_threshold
    grid = tuple(t for t in GRID if t >= threshold)  # lower ones keep the same detections as score_threshold
    items = calibration_items(split, seed, max_images) if grid else []
    scores = sweep(predictor, items, grid)
    chosen = choose(grid, scores["accuracy"])
    note = ("" if chosen is not None else f"score_threshold={threshold} is above every candidate" if not grid
            else "no objects and no detections on these images")
    return {"min_score": chosen, "split": split.name, "images": len(items), "image_names": [i.name for i in items],
            "seed": seed, "iou": IOU, "score_threshold": threshold, "max_detections": predictor.options.max_detections,
            "matching_accuracy_50": {f"{t:.2f}": a for t, a in zip(grid, scores["accuracy"])},
            "tp": scores["tp"], "fp": scores["fp"], "fn": scores["fn"], **({"note": note} if note else {})}


def record(path: str | Path, calibration: dict) -> None:
    """Write `calibration` into the checkpoint at `path` (every other entry kept), atomically."""
    ckpt = load_checkpoint(path)
    ckpt["calibration"] = calibration
    atomic_save(ckpt, Path(path))


def calibrate_checkpoint(predictor: InstancePredictor, split: InstanceSplit, seed: int,
                         max_images: int = MAX_IMAGES) -> dict:
    """Calibrate the checkpoint `predictor` was loaded from on `split` and record it there (training's end and
    `seglab val calibrate=true` both run this)."""
    calibration = calibrate(predictor, split, seed, max_images)
    if calibration["min_score"] is not None:  # else (see its note) the checkpoint keeps what it had
        record(predictor.source, calibration)
        predictor.checkpoint["calibration"] = calibration
    return calibration


def use_recorded_min_score(predictor: InstancePredictor, given: frozenset) -> str:
    """The checkpoint's calibrated min_score as the predictor's unless min_score= is given (`given`: given_keys);
    returns a note saying so ("" when it is not used)."""
    calibration = predictor.checkpoint.get("calibration") or {}
    if calibration.get("min_score") is None or "min_score" in given:
        return ""
    # min_score is no model argument, so setting it after the model is built is exact
    predictor.options = replace(predictor.options, min_score=float(calibration["min_score"]))
    return (f"min_score {calibration['min_score']}: calibrated on {calibration['images']} {calibration['split']} "
            "images (min_score= overrides it)")


def format_calibration(calibration: dict) -> str:
    """min_score chosen, on what, and the matching accuracy at IoU 0.5 of every threshold tried."""
    def cell(value) -> str:
        return "-" if value is None else f"{value:.4f}"

    pairs = [f"{t} {cell(a)}" for t, a in calibration["matching_accuracy_50"].items()]
    rows = ["  " + "   ".join(pairs[i:i + 5]) for i in range(0, len(pairs), 5)]
    chosen = calibration["min_score"] if calibration["min_score"] is not None else f"none ({calibration['note']})"
    head = (f"min_score calibrated on {calibration['images']} {calibration['split']} images: {chosen} "
            f"(matching accuracy at IoU {calibration['iou']} per min_score):")
    return "\n".join([head, *rows])
