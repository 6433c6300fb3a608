"""The streaming confusion matrix that every seglab metric derives from.

``matrix[t, p]`` counts the valid pixels whose truth is ``t`` and prediction is ``p``
(rows = truth, cols = prediction). Pixels whose truth equals ``ignore_index`` are skipped.
"""
from __future__ import annotations

import torch

from .scores import counts_from_matrix, scores_from_counts, to_python
from .distributed import all_reduce_sum


def _as_batch(pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if pred.shape != target.shape:
        raise ValueError(f"pred and target must have the same shape, got {tuple(pred.shape)} and {tuple(target.shape)}")
    for name, t in (("pred", pred), ("target", target)):
        if t.is_floating_point() or t.is_complex():
            raise TypeError(f"{name} must be an integer label tensor, got {t.dtype} (turn logits into labels with logits_to_labels)")
    if pred.dim() == 2:
        pred, target = pred.unsqueeze(0), target.unsqueeze(0)
    if pred.dim() != 3:
        raise ValueError(f"expected [N,H,W] or [H,W] labels, got shape {tuple(pred.shape)}")
    return pred, target


def batch_confusion(pred: torch.Tensor, target: torch.Tensor, num_classes: int,
                    ignore_index: int | None = 255) -> torch.Tensor:
    """Per-image confusion matrices ``[N, C, C]`` (int64) from labels ``[N,H,W]`` (or ``[H,W]``).

    One ``bincount`` on int64 over the valid pixels. Labels outside ``[0, C)`` on valid
    pixels raise ValueError (the prediction at ignored pixels is not looked at).
    """
    pred, target = _as_batch(pred, target)
    n, c = pred.shape[0], num_classes
    p = pred.reshape(n, -1).long()
    t = target.reshape(n, -1).long()
    valid = None if ignore_index is None else t != ignore_index
    if t.numel():
        for name, x in (("target", t), ("pred", p)):
            lo, hi = torch.aminmax(x if valid is None else x.masked_fill(~valid, 0))
            if int(lo) < 0 or int(hi) >= c:
                raise ValueError(f"{name} has label {int(lo) if int(lo) < 0 else int(hi)} outside [0, {c}) "
                                 f"(ignore_index={ignore_index})")
    index = t * c + p + torch.arange(n, device=t.device).unsqueeze(1) * (c * c)
    if valid is not None:  # ignored pixels go to one extra bin, dropped below (cheaper than masking)
        index = index.masked_fill_(~valid, n * c * c)
    counts = torch.bincount(index.reshape(-1), minlength=n * c * c + 1)[: n * c * c]
    return counts.reshape(n, c, c)


class ConfusionMatrix:
    """Streaming ``[C, C]`` int64 confusion matrix: update per batch, merge, all-reduce, compute.

    ``compute()`` gives the *dataset* reduction: counts are summed over every valid pixel of
    every image first, then turned into scores (see ``seglab.metrics.scores``).
    """

    def __init__(self, num_classes: int, ignore_index: int | None = 255, device="cpu"):
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.matrix = torch.zeros(num_classes, num_classes, dtype=torch.int64, device=device)

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        """Add a batch of integer labels ``[N,H,W]`` or ``[H,W]``."""
        self.update_from_matrices(batch_confusion(pred, target, self.num_classes, self.ignore_index))

    def update_from_matrices(self, matrices: torch.Tensor) -> None:
        """Add per-image matrices ``[N,C,C]`` (or one ``[C,C]``) already counted."""
        if matrices.dim() == 3:
            matrices = matrices.sum(dim=0)
        self.matrix += matrices.to(self.matrix.device, torch.int64)

    def reset(self) -> None:
        self.matrix.zero_()

    def merge(self, other: "ConfusionMatrix") -> "ConfusionMatrix":
        """Add another matrix counted with the same classes and ignore index; returns self."""
        if other.num_classes != self.num_classes or other.ignore_index != self.ignore_index:
            raise ValueError("can only merge confusion matrices with the same num_classes and ignore_index")
        self.matrix += other.matrix.to(self.matrix.device)
        return self

    def all_reduce(self) -> None:
        """Sum the matrix over all processes when torch.distributed is initialised; no-op otherwise."""
        self.matrix = all_reduce_sum(self.matrix)

    def compute(self) -> dict:
        """Dataset-level scores as JSON-ready python values (undefined -> None).

        Keys: pixel_accuracy, mean_class_accuracy, miou, mean_dice, fwiou, iou_per_class,
        dice_per_class, precision_per_class, recall_per_class, pixel_share, num_pixels, reduction.
        """
        scores = scores_from_counts(*counts_from_matrix(self.matrix.cpu()))
        out = {k: to_python(v) for k, v in scores.items()}
        out["num_pixels"] = int(self.matrix.sum())
        out["reduction"] = "dataset"
        return out
