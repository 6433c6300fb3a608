"""Per-image reduction: scores computed on each image, then averaged over images.

Only running sums are kept (sum of each score over the images where it is defined, and how
many such images), so the state is small, mergeable and summed across processes.

- scalar scores (pixel_accuracy, miou, mean_dice, mean_class_accuracy, fwiou): mean over
  images of the image's own score; an image whose pixels are all ignored is skipped.
- per-class scores: for each class, mean over the images where that score is defined
  (IoU / Dice: the class is in the image's truth or prediction; recall: in the truth;
  precision: in the prediction).
"""
from __future__ import annotations

import torch

from .confusion import batch_confusion
from .distributed import all_reduce_sum
from .scores import PER_CLASS_KEYS, SCALAR_KEYS, counts_from_matrix, scores_from_counts, to_python

KEYS = SCALAR_KEYS + PER_CLASS_KEYS


class PerImageMetrics:
    """Streaming per-image reduction; ``compute()`` has the same keys as ConfusionMatrix's."""

    def __init__(self, num_classes: int, ignore_index: int | None = 255, device="cpu"):
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.device = device
        self.reset()

    def reset(self) -> None:
        self.sums = {k: torch.zeros(self._size(k), dtype=torch.float64, device=self.device) for k in KEYS}
        self.counts = {k: torch.zeros(self._size(k), dtype=torch.int64, device=self.device) for k in KEYS}
        self.num_images = torch.zeros((), dtype=torch.int64, device=self.device)

    def _size(self, key: str):
        return (self.num_classes,) if key in PER_CLASS_KEYS else ()

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        """Add a batch of integer labels ``[N,H,W]`` or ``[H,W]``."""
        self.update_from_matrices(batch_confusion(pred, target, self.num_classes, self.ignore_index))

    def update_from_matrices(self, matrices: torch.Tensor) -> None:
        """Add per-image confusion matrices ``[N,C,C]``."""
        matrices = matrices.to(self.device)
        scores = scores_from_counts(*counts_from_matrix(matrices))
        self.num_images += int((matrices.sum(dim=(1, 2)) > 0).sum())
        for k in KEYS:
            ok = ~torch.isnan(scores[k])
            self.sums[k] += torch.where(ok, scores[k], torch.zeros_like(scores[k])).sum(dim=0)
            self.counts[k] += ok.sum(dim=0)

    def merge(self, other: "PerImageMetrics") -> "PerImageMetrics":
        if other.num_classes != self.num_classes or other.ignore_index != self.ignore_index:
            raise ValueError("can only merge PerImageMetrics with the same num_classes and ignore_index")
        for k in KEYS:
            self.sums[k] += other.sums[k].to(self.device)
            self.counts[k] += other.counts[k].to(self.device)
        self.num_images += other.num_images.to(self.device)
        return self

    def all_reduce(self) -> None:
        """Sum the state over all processes when torch.distributed is initialised; no-op otherwise."""
        for k in KEYS:
            self.sums[k] = all_reduce_sum(self.sums[k])
            self.counts[k] = all_reduce_sum(self.counts[k])
        self.num_images = all_reduce_sum(self.num_images)

    def compute(self) -> dict:
        """Per-image averages as JSON-ready values (undefined -> None), plus num_images and reduction."""
        out = {}
        for k in KEYS:
            n = self.counts[k]
            mean = torch.where(n > 0, self.sums[k] / n.clamp_min(1), torch.full_like(self.sums[k], float("nan")))
            out[k] = to_python(mean.cpu())
        out["num_images"] = int(self.num_images)
        out["reduction"] = "per_image"
        return out
