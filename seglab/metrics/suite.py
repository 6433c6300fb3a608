"""SegmentationMetrics: the dataset and per-image reductions (and optionally Boundary F1) together.

One ``bincount`` per batch feeds both reductions. ``compute()`` returns named sections::

    {"dataset": {...}, "per_image": {...}, "boundary": {...}}   # "boundary" only if enabled
"""
from __future__ import annotations

import torch

from .boundary import BoundaryF1
from .confusion import ConfusionMatrix, batch_confusion
from .modes import BINARY, MULTICLASS, check_mode, logits_to_labels
from .per_image import PerImageMetrics


class SegmentationMetrics:
    """All seglab metrics for one evaluation run.

    ``update(pred, target)`` takes integer labels, or float logits that are turned into labels
    by ``mode`` ("multiclass": argmax; "binary": sigmoid > threshold, counted as 2 classes).
    """

    def __init__(self, num_classes: int, ignore_index: int | None = 255, mode: str = MULTICLASS,
                 threshold: float = 0.5, boundary: bool = False, tolerance: float = 0.0075, device="cpu"):
        self.mode = check_mode(mode)
        if mode == BINARY and num_classes != 2:
            raise ValueError(f"binary mode counts 2 classes (background, foreground), got num_classes={num_classes}")
        self.num_classes, self.ignore_index, self.threshold = num_classes, ignore_index, threshold
        self.dataset = ConfusionMatrix(num_classes, ignore_index, device)
        self.per_image = PerImageMetrics(num_classes, ignore_index, device)
        self.boundary = BoundaryF1(num_classes, ignore_index, tolerance) if boundary else None

    def _parts(self):
        return [m for m in (self.dataset, self.per_image, self.boundary) if m is not None]

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        if pred.is_floating_point():
            pred = logits_to_labels(pred, self.mode, self.threshold)
        matrices = batch_confusion(pred, target, self.num_classes, self.ignore_index)
        self.dataset.update_from_matrices(matrices)
        self.per_image.update_from_matrices(matrices)
        if self.boundary is not None:
            self.boundary.update(pred, target)

    def reset(self) -> None:
        for m in self._parts():
            m.reset()

    def merge(self, other: "SegmentationMetrics") -> "SegmentationMetrics":
        if (other.boundary is None) != (self.boundary is None):
            raise ValueError("can only merge SegmentationMetrics that both have (or lack) boundary F1")
        for mine, theirs in zip(self._parts(), other._parts()):
            mine.merge(theirs)
        return self

    def all_reduce(self) -> None:
        for m in self._parts():
            m.all_reduce()

    def compute(self) -> dict:
        out = {"dataset": self.dataset.compute(), "per_image": self.per_image.compute()}
        if self.boundary is not None:
            out["boundary"] = self.boundary.compute()
        return out
