"""Soft overlap losses: Dice and Tversky, from soft tp / fp / fn counts.

Counts are summed over the batch and the pixels (ignored pixels excluded), per class.
A class is *present* when it occurs in the (valid) target of the batch; the per-class loss
is averaged over present classes only (weighted by class_weights if given); a batch with
no present class (e.g. binary with no foreground) gives 0. segmentation-models-pytorch
instead zeroes absent classes and divides by all C, which differs by the factor
C / #present.
"""
from __future__ import annotations

import torch

from .base import SegLoss


def soft_counts(probs: torch.Tensor, truth: torch.Tensor):
    """tp, fp, fn ``[K]`` from ``[N,K,H,W]`` probabilities and one-hot truth (0 where ignored)."""
    dims = (0, 2, 3)
    tp = (probs * truth).sum(dims)
    return tp, probs.sum(dims) - tp, truth.sum(dims) - tp


class DiceLoss(SegLoss):
    """Soft Dice loss ``1 - (2 tp + smooth) / (2 tp + fp + fn + smooth)``.

    ``per_class=True``: one Dice per class, averaged over present classes.
    ``per_class=False`` (global): counts summed over all classes first (micro Dice).
    binary: the foreground class only.
    """

    def __init__(self, num_classes, mode=None, ignore_index=255, class_weights=None,
                 smooth: float = 1.0, per_class: bool = True, eps: float = 1e-7):
        super().__init__(num_classes, mode, ignore_index, class_weights)
        self.smooth, self.per_class, self.eps = smooth, per_class, eps

    def score(self, tp, fp, fn):
        return (2 * tp + self.smooth) / (2 * tp + fp + fn + self.smooth).clamp_min(self.eps)

    def compute(self, logits, target, valid):
        probs, truth = self.probs_and_truth(logits, target, valid)
        tp, fp, fn = soft_counts(probs, truth)
        present = truth.sum((0, 2, 3)) > 0
        if not bool(present.any()):
            return logits.sum() * 0.0
        if not self.per_class:
            return 1.0 - self.score(tp.sum(), fp.sum(), fn.sum())
        return self.class_mean(1.0 - self.score(tp, fp, fn), present)


class TverskyLoss(DiceLoss):
    """Tversky loss ``1 - (tp + smooth) / (tp + alpha fp + beta fn + smooth)``, then ``** gamma``.

    alpha weighs false positives, beta false negatives (alpha = beta = 0.5 is Dice without
    smoothing); gamma != 1 gives the focal Tversky loss (applied to the class mean).
    """

    def __init__(self, num_classes, mode=None, ignore_index=255, class_weights=None,
                 alpha: float = 0.5, beta: float = 0.5, gamma: float = 1.0, smooth: float = 1.0,
                 per_class: bool = True, eps: float = 1e-7):
        super().__init__(num_classes, mode, ignore_index, class_weights, smooth, per_class, eps)
        self.alpha, self.beta, self.gamma = alpha, beta, gamma

    def score(self, tp, fp, fn):
        den = tp + self.alpha * fp + self.beta * fn + self.smooth
        return (tp + self.smooth) / den.clamp_min(self.eps)

    def compute(self, logits, target, valid):
        loss = super().compute(logits, target, valid)
        return loss if self.gamma == 1.0 else loss.clamp_min(0) ** self.gamma
