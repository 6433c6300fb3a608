"""Optimizers and learning-rate schedules, built from the config."""

from __future__ import annotations

import math

import torch
from torch import nn

DEFAULT_LR = {"adamw": 1e-3, "sgd": 1e-2}


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """No weight decay on norms and biases (1-d parameters)."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (no_decay if p.ndim <= 1 else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def build_optimizer(model: nn.Module, cfg) -> torch.optim.Optimizer:
    name = cfg.optimizer
    if name not in DEFAULT_LR:
        raise KeyError(f"unknown optimizer '{name}'. Valid optimizers: {', '.join(DEFAULT_LR)}")
    lr = cfg.lr or DEFAULT_LR[name]
    groups = param_groups(model, cfg.weight_decay)
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=cfg.momentum, nesterov=cfg.momentum > 0)
    return torch.optim.AdamW(groups, lr=lr)


def lr_factor(schedule: str, progress: float) -> float:
    """Multiplier of the base lr at `progress` in [0, 1] of training."""
    t = min(1.0, max(0.0, progress))
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * t))
    if schedule == "poly":
        return (1.0 - t) ** 0.9
    if schedule == "onecycle":  # cosine ramp from 1/25 to 1 over the first 30%, cosine anneal to 1e-4
        if t < 0.3:
            return 1 / 25 + (1 - 1 / 25) * 0.5 * (1 - math.cos(math.pi * t / 0.3))
        return 1e-4 + (1 - 1e-4) * 0.5 * (1 + math.cos(math.pi * (t - 0.3) / 0.7))
    if schedule == "constant":
        return 1.0
    raise KeyError(f"unknown schedule '{schedule}'. Valid schedules: cosine, poly, onecycle, constant")


class ProgressSchedule:
    """Sets each group's lr from the fraction of training done (by steps or by the time budget),
    times a warmup factor in (0, 1] that the caller ramps linearly over the first steps."""

    def __init__(self, optimizer: torch.optim.Optimizer, schedule: str):
        lr_factor(schedule, 0.5)  # fail early on an unknown name
        self.optimizer, self.schedule = optimizer, schedule
        self.base = [g["lr"] for g in optimizer.param_groups]

    def set_progress(self, progress: float, warmup: float = 1.0) -> float:
        factor = lr_factor(self.schedule, progress) * warmup
        for group, base in zip(self.optimizer.param_groups, self.base):
            group["lr"] = base * factor
        return factor
