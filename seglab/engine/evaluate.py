"""Scoring at the training size: a forward callable over a dataset's resized samples, and the metric summary.

This is the fast path of training-time validation for stretch models (the cached, resized samples
against the resized masks). Scoring at each image's own resolution needs inference (stretch, tiling,
resizing back) and lives above, in the inference package (inference/evaluate.py), so that `seglab val` scores exactly
what `seglab predict` writes; nothing in engine/ imports the inference package.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch.utils.data import DataLoader, Subset

from seglab.data.dataset import SegmentationDataset
from seglab.engine.distributed import Group, all_reduce_sum
from seglab.metrics import SegmentationMetrics

RESOLUTIONS = ("original", "train")


def new_metrics(dataset: SegmentationDataset, boundary: bool = False) -> SegmentationMetrics:
    classes = dataset.spec.classes
    return SegmentationMetrics(classes.num_classes, classes.ignore_index, boundary=boundary)


def finish(metrics: SegmentationMetrics, resolution: str, loss_sum: float = 0.0, count: int = 0, loss_fn=None,
           group: Group | None = None, device="cpu") -> dict:
    """The result dict: metric sections, "confusion_matrix" (dataset level, rows = truth), "resolution"
    [, "loss"]; with an active `group`, counts and losses are summed over the processes first."""
    if group is not None and group.active:
        metrics.all_reduce()
        loss_sum, count = all_reduce_sum([loss_sum, count], group, device)
    out = metrics.compute()
    out["confusion_matrix"] = metrics.dataset.matrix.cpu().tolist()
    out["resolution"] = resolution
    if loss_fn is not None:
        out["loss"] = loss_sum / max(count, 1)
    return out


@torch.no_grad()
def score_resized(logits_of: Callable[[torch.Tensor], torch.Tensor], dataset: SegmentationDataset, batch: int = 8,
                  loss_fn=None, boundary: bool = False, indices=None, group: Group | None = None,
                  device="cpu") -> dict:
    """Metrics of `logits_of` (uint8 images [N, 3, h, w] -> logits [N, C, h, w]) on the dataset's
    samples as they are stored (resized to the training size) against their resized masks."""
    metrics = new_metrics(dataset, boundary)
    loss_sum, count = 0.0, 0
    subset = dataset if indices is None else Subset(dataset, list(indices))
    for images, masks, _ in DataLoader(subset, batch_size=batch, shuffle=False):
        logits = logits_of(images).float()
        if loss_fn is not None:
            loss_sum += float(loss_fn(logits, masks.to(logits.device))) * len(images)
            count += len(images)
        metrics.update(logits.argmax(1).cpu(), masks)
    return finish(metrics, "train", loss_sum, count, loss_fn, group, device)


def summary(result: dict, class_names: list[str]) -> dict:
    """The headline numbers of an evaluation flattened, per-class values keyed by class name."""
    data = result["dataset"]
    out = {k: data[k] for k in ("pixel_accuracy", "mean_class_accuracy", "miou", "mean_dice", "fwiou")}
    for key in ("iou_per_class", "dice_per_class", "precision_per_class", "recall_per_class", "pixel_share"):
        out[key] = dict(zip(class_names, data[key]))
    if "boundary" in result:
        out["boundary_f1"] = result["boundary"]["bf"]
        out["bf_per_class"] = dict(zip(class_names, result["boundary"]["bf_per_class"]))
    out["per_image"] = {k: result["per_image"].get(k) for k in ("pixel_accuracy", "miou", "mean_dice")}
    out["resolution"] = result["resolution"]
    if "confusion_matrix" in result:
        out["num_pixels"] = data.get("num_pixels")
        out["confusion_matrix"] = result["confusion_matrix"]  # rows = truth, columns = prediction
    if "loss" in result:
        out["loss"] = result["loss"]
    return out
