"""Lovasz-softmax and Lovasz hinge losses (Berman et al., CVPR 2018).

Both minimise the Lovasz extension of the Jaccard loss: per class, pixel errors are sorted
in decreasing order and dotted with the increments of the Jaccard loss along that order.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import SegLoss


def jaccard_increments(truth_sorted: torch.Tensor) -> torch.Tensor:
    """Gradient of the Lovasz extension for truth ``[P, K]`` (0/1) sorted by decreasing error."""
    total = truth_sorted.sum(dim=0, keepdim=True)
    hits = truth_sorted.cumsum(dim=0)
    intersection = total - hits
    union = total + (1.0 - truth_sorted).cumsum(dim=0)
    jaccard = 1.0 - intersection / union
    return torch.cat([jaccard[:1], jaccard[1:] - jaccard[:-1]], dim=0)


def lovasz_from_errors(errors: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Per-column Lovasz loss ``[K]`` from errors and truth ``[P, K]``."""
    errors_sorted, order = errors.sort(dim=0, descending=True)
    truth_sorted = truth.gather(0, order)
    return (errors_sorted * jaccard_increments(truth_sorted)).sum(dim=0)


class LovaszLoss(SegLoss):
    """Lovasz loss over the valid pixels of the batch (or of each image, ``per_image=True``).

    multiclass (Lovasz-softmax): errors ``|onehot - softmax|`` per class, averaged over the
    classes present in the target (weighted by class_weights if given).
    binary (Lovasz hinge): errors ``relu(1 - logit * sign)`` with sign = +1 / -1 for
    foreground / background.
    """

    def __init__(self, num_classes, mode=None, ignore_index=255, class_weights=None,
                 per_image: bool = False):
        super().__init__(num_classes, mode, ignore_index, class_weights)
        self.per_image = per_image

    def _flat(self, logits, target, valid):
        mask = valid.reshape(-1)
        if self.binary:
            z = logits[:, 0].reshape(-1)[mask]
            y = target.reshape(-1)[mask].float()
            errors = F.relu(1.0 - z * (2.0 * y - 1.0))
            return lovasz_from_errors(errors.unsqueeze(1), y.unsqueeze(1))[0]
        k = logits.shape[1]
        probs = logits.softmax(dim=1).permute(0, 2, 3, 1).reshape(-1, k)[mask]
        truth = F.one_hot(target.reshape(-1)[mask], k).float()
        per_class = lovasz_from_errors((truth - probs).abs(), truth)
        return self.class_mean(per_class, truth.sum(dim=0) > 0)

    def compute(self, logits, target, valid):
        if not self.per_image:
            return self._flat(logits, target, valid)
        losses = [self._flat(logits[i:i + 1], target[i:i + 1], valid[i:i + 1])
                  for i in range(logits.shape[0]) if bool(valid[i].any())]
        return torch.stack(losses).mean()
