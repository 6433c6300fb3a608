"""What every seglab loss shares: argument checks, float32 maths, ignore mask, one forward.

A loss is called as ``loss(logits, target)``:
- multiclass: ``logits [N,C,H,W]``, ``target [N,H,W]`` long in ``[0, C)`` or ``ignore_index``;
- binary: ``logits [N,1,H,W]`` or ``[N,H,W]``, ``target [N,H,W]`` in ``{0, 1}`` or ``ignore_index``.

The maths always runs in float32 with autocast switched off (so bf16 autocast and
channels_last logits are fine). A batch whose pixels are all ignored gives a loss of 0
that still backpropagates (zero gradients).
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from seglab.metrics.modes import BINARY, check_mode, infer_mode


class SegLoss(nn.Module):
    """Base class: subclasses implement ``compute(logits, target, valid)``.

    ``compute`` receives float32 ``logits [N,K,H,W]`` (K = 1 in binary mode), ``target``
    with ignored pixels replaced by 0, and the boolean ``valid`` mask ``[N,H,W]`` (at
    least one pixel is valid).
    """

    def __init__(self, num_classes: int, mode: str | None = None, ignore_index: int | None = 255,
                 class_weights: Sequence[float] | None = None):
        super().__init__()
        self.mode = infer_mode(num_classes) if mode is None else check_mode(mode)
        self.channels = 1 if self.mode == BINARY else num_classes
        if self.mode != BINARY and num_classes < 2:
            raise ValueError(f"multiclass mode needs num_classes >= 2, got {num_classes}")
        self.num_labels = 2 if self.mode == BINARY else num_classes
        self.ignore_index = ignore_index
        weights = None
        if class_weights is not None:
            weights = torch.as_tensor(list(class_weights), dtype=torch.float32)
            if weights.shape != (self.num_labels,):
                raise ValueError(f"class_weights needs {self.num_labels} values (one per label), got {weights.numel()}")
            if (weights < 0).any():
                raise ValueError("class_weights must be >= 0")
        self.register_buffer("class_weights", weights, persistent=False)

    @property
    def binary(self) -> bool:
        return self.mode == BINARY

    def _prepare(self, logits: torch.Tensor, target: torch.Tensor):
        if self.binary and logits.dim() == 3:
            logits = logits.unsqueeze(1)
        if logits.dim() != 4 or logits.shape[1] != self.channels:
            raise ValueError(f"{self.mode} logits must be [N,{self.channels},H,W], got {tuple(logits.shape)}")
        if target.shape != logits.shape[:1] + logits.shape[2:]:
            raise ValueError(f"target must be [N,H,W] = {tuple(logits.shape[:1] + logits.shape[2:])}, "
                             f"got {tuple(target.shape)}")
        if target.is_floating_point():
            raise TypeError(f"target must hold integer labels, got {target.dtype}")
        target = target.long()
        if self.ignore_index is None:
            valid = torch.ones_like(target, dtype=torch.bool)
        else:
            valid = target != self.ignore_index
            target = target.masked_fill(~valid, 0)
        if target.numel() and (int(target.min()) < 0 or int(target.max()) >= self.num_labels):
            raise ValueError(f"target labels must be in [0, {self.num_labels}) or ignore_index={self.ignore_index}")
        return logits.float(), target, valid

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type=logits.device.type, enabled=False):
            logits, target, valid = self._prepare(logits, target)
            if not bool(valid.any()):
                return logits.sum() * 0.0
            return self.compute(logits, target, valid)

    def compute(self, logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    # helpers shared by the losses ---------------------------------------------------------
    def probs_and_truth(self, logits, target, valid):
        """Probabilities and one-hot truth ``[N,K,H,W]`` (both 0 on ignored pixels).

        binary: K = 1, the foreground (sigmoid); multiclass: K = C (softmax).
        """
        v = valid.unsqueeze(1).float()
        if self.binary:
            return torch.sigmoid(logits) * v, (target == 1).unsqueeze(1).float() * v
        truth = torch.zeros_like(logits).scatter_(1, target.unsqueeze(1), 1.0) * v
        return logits.softmax(dim=1) * v, truth

    def pixel_weights(self, target: torch.Tensor) -> torch.Tensor | None:
        """``class_weights[target]`` or None."""
        return None if self.class_weights is None else self.class_weights[target]

    def class_mean(self, per_class: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        """Mean of ``per_class [K]`` over present classes, weighted by class_weights (multiclass)."""
        w = present.float()
        if self.class_weights is not None and not self.binary:
            w = w * self.class_weights
        den = w.sum()
        if float(den) <= 0:
            return per_class.sum() * 0.0
        return (per_class * w).sum() / den
