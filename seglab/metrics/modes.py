"""Prediction modes shared by losses and metrics, and logits -> labels.

- ``"binary"``: the model outputs one logit channel (``[N,1,H,W]`` or ``[N,H,W]``);
  a pixel is foreground when ``sigmoid(logit) > threshold``. Metrics then count
  two classes (0 = background, 1 = foreground).
- ``"multiclass"``: the model outputs ``C`` logit channels ``[N,C,H,W]``;
  the label is the argmax (softmax does not change it).
"""
from __future__ import annotations

import math

import torch

BINARY = "binary"
MULTICLASS = "multiclass"
MODES = (BINARY, MULTICLASS)


def check_mode(mode: str) -> str:
    """Return ``mode`` if it is a known mode, else raise KeyError listing the valid ones."""
    if mode not in MODES:
        raise KeyError(f"unknown mode {mode!r}; valid modes: {', '.join(MODES)}")
    return mode


def infer_mode(num_channels: int) -> str:
    """One logit channel means binary, more mean multiclass."""
    if num_channels < 1:
        raise ValueError(f"num_channels must be >= 1, got {num_channels}")
    return BINARY if num_channels == 1 else MULTICLASS


def logits_to_labels(logits: torch.Tensor, mode: str = MULTICLASS, threshold: float = 0.5) -> torch.Tensor:
    """Turn logits into integer labels ``[N,H,W]`` (int64).

    multiclass: ``logits [N,C,H,W]`` -> argmax over C.
    binary: ``logits [N,1,H,W]`` or ``[N,H,W]`` -> ``sigmoid(logits) > threshold``
    (computed as ``logits > logit(threshold)``, no sigmoid needed).
    """
    check_mode(mode)
    if mode == MULTICLASS:
        if logits.dim() != 4:
            raise ValueError(f"multiclass logits must be [N,C,H,W], got shape {tuple(logits.shape)}")
        return logits.max(dim=1).indices  # = argmax (first maximum on ties), much faster on CPU
    if logits.dim() == 4:
        if logits.shape[1] != 1:
            raise ValueError(f"binary logits must have one channel, got shape {tuple(logits.shape)}")
        logits = logits[:, 0]
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be in (0, 1), got {threshold}")
    cut = math.log(threshold / (1.0 - threshold))
    return (logits > cut).long()
