"""Scores from per-class counts (tp, fp, fn), for one matrix or a batch of them.

Rule used everywhere: a ratio whose denominator is 0 is undefined (NaN here, ``None`` in
the JSON-ready dicts) and is left out of every mean. So a class absent from both the
prediction and the truth has no IoU or Dice; a class absent from the truth has no recall;
a class never predicted has no precision.
"""
from __future__ import annotations

import math

import torch

PER_CLASS_KEYS = ("iou_per_class", "dice_per_class", "precision_per_class", "recall_per_class", "pixel_share")
SCALAR_KEYS = ("pixel_accuracy", "mean_class_accuracy", "miou", "mean_dice", "fwiou")


def counts_from_matrix(matrix: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``matrix [..., C, C]`` (rows truth, cols prediction) -> tp, fp, fn each ``[..., C]``."""
    tp = matrix.diagonal(dim1=-2, dim2=-1)
    fp = matrix.sum(dim=-2) - tp
    fn = matrix.sum(dim=-1) - tp
    return tp, fp, fn


def _ratio(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    num, den = num.double(), den.double()
    return torch.where(den > 0, num / den.clamp_min(1), torch.full_like(num, math.nan))


def _nanmean(x: torch.Tensor) -> torch.Tensor:
    """Mean over the last dim ignoring NaN; NaN when all are NaN."""
    ok = ~torch.isnan(x)
    n = ok.sum(dim=-1)
    s = torch.where(ok, x, torch.zeros_like(x)).sum(dim=-1)
    return torch.where(n > 0, s / n.clamp_min(1), torch.full_like(s, math.nan))


def scores_from_counts(tp: torch.Tensor, fp: torch.Tensor, fn: torch.Tensor) -> dict[str, torch.Tensor]:
    """All scores from counts ``[..., C]``; per-class entries ``[..., C]``, scalars ``[...]`` (float64, NaN = undefined)."""
    truth = tp + fn
    total = truth.sum(dim=-1)
    iou = _ratio(tp, tp + fp + fn)
    dice = _ratio(2 * tp, 2 * tp + fp + fn)
    precision = _ratio(tp, tp + fp)
    recall = _ratio(tp, truth)
    share = _ratio(truth, total.unsqueeze(-1).expand_as(truth))
    fw = torch.where(truth > 0, share * torch.nan_to_num(iou), torch.zeros_like(iou)).sum(dim=-1)
    fwiou = torch.where(total > 0, fw, torch.full_like(fw, math.nan))
    return {
        "pixel_accuracy": _ratio(tp.sum(dim=-1), total),
        "mean_class_accuracy": _nanmean(recall),
        "miou": _nanmean(iou),
        "mean_dice": _nanmean(dice),
        "fwiou": fwiou,
        "iou_per_class": iou,
        "dice_per_class": dice,
        "precision_per_class": precision,
        "recall_per_class": recall,
        "pixel_share": share,
    }


def to_python(value):
    """Tensor / float -> JSON-ready python: floats, lists; NaN -> None."""
    if isinstance(value, torch.Tensor):
        value = value.tolist()
    if isinstance(value, list):
        return [to_python(v) for v in value]
    if isinstance(value, float) and math.isnan(value):
        return None
    return value
