"""Cross-entropy with class weights, ignore index and label smoothing."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import SegLoss


class CrossEntropyLoss(SegLoss):
    """Mean cross-entropy over valid pixels.

    multiclass: same value as ``F.cross_entropy(logits, target, weight, ignore_index=...,
    label_smoothing=...)`` (weighted mean: divided by the sum of ``class_weights[target]``).
    binary: binary cross-entropy on the single logit; label smoothing moves the targets to
    ``y (1 - e) + e / 2``; class_weights are ``[background, foreground]``.
    """

    def __init__(self, num_classes, mode=None, ignore_index=255, class_weights=None,
                 label_smoothing: float = 0.0):
        super().__init__(num_classes, mode, ignore_index, class_weights)
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        self.label_smoothing = label_smoothing

    def compute(self, logits, target, valid):
        eps = self.label_smoothing
        if self.binary:
            y = target.float() * (1.0 - eps) + eps / 2.0
            per_pixel = F.binary_cross_entropy_with_logits(logits[:, 0], y, reduction="none")
            w = self.pixel_weights(target)
            if w is not None:
                per_pixel = per_pixel * w
        else:
            per_pixel = F.cross_entropy(logits, target, weight=self.class_weights, reduction="none",
                                        label_smoothing=eps)
            w = self.pixel_weights(target)
        v = valid.float()
        den = v.sum() if w is None else (w * v).sum()
        if float(den) <= 0:
            return logits.sum() * 0.0
        return (per_pixel * v).sum() / den
