"""Focal loss (Lin et al. 2017): ``-alpha_t (1 - p_t) ** gamma log p_t``, mean over valid pixels."""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from .base import SegLoss


class FocalLoss(SegLoss):
    """Focal loss.

    multiclass: ``p_t`` is the softmax probability of the true class; ``alpha`` is a list
    of per-class weights (or a float scale); without alpha, class_weights are used.
    binary: ``p_t`` from the sigmoid; a float ``alpha`` weighs foreground pixels by alpha
    and background ones by ``1 - alpha`` (as in Lin et al.).
    gamma = 0 and no alpha gives plain cross-entropy.
    """

    def __init__(self, num_classes, mode=None, ignore_index=255, class_weights=None,
                 alpha: float | Sequence[float] | None = None, gamma: float = 2.0):
        super().__init__(num_classes, mode, ignore_index, class_weights)
        if gamma < 0:
            raise ValueError(f"gamma must be >= 0, got {gamma}")
        self.gamma = gamma
        if alpha is not None and not isinstance(alpha, (int, float)):
            alpha = torch.as_tensor(list(alpha), dtype=torch.float32)
            if alpha.shape != (self.num_labels,):
                raise ValueError(f"alpha needs {self.num_labels} values, got {alpha.numel()}")
        self.alpha = alpha

    def _alpha_t(self, target):
        if self.alpha is None:
            return self.pixel_weights(target)
        if isinstance(self.alpha, torch.Tensor):
            return self.alpha.to(target.device)[target]
        if self.binary:
            return torch.where(target == 1, self.alpha, 1.0 - self.alpha)
        return torch.full(target.shape, float(self.alpha), device=target.device)

    def compute(self, logits, target, valid):
        if self.binary:
            logpt = -F.binary_cross_entropy_with_logits(logits[:, 0], target.float(), reduction="none")
        else:
            logpt = logits.log_softmax(dim=1).gather(1, target.unsqueeze(1))[:, 0]
        loss = -logpt
        if self.gamma != 0:
            loss = (1.0 - logpt.exp()).clamp_min(0).pow(self.gamma) * loss
        a = self._alpha_t(target)
        if a is not None:
            loss = loss * a
        v = valid.float()
        return (loss * v).sum() / v.sum()
