"""The loss registry and ``build_loss``: one loss or a weighted sum chosen from the config.

Spec forms::

    "ce"                              one loss, weight 1
    "ce+dice"  /  "0.5*ce+0.5*dice"   weighted sum
    {"ce": 0.5, "dice": 0.5}          weighted sum
    {"ce": {"weight": 1, "label_smoothing": 0.1}, "focal": {"gamma": 3}}   with options
    "{ce: 0.5, dice: 0.5}"            the same written as a YAML mapping (from key=value)
"""
from __future__ import annotations

from typing import Mapping, Sequence

import torch
import yaml
from torch import nn

from .cross_entropy import CrossEntropyLoss
from .focal import FocalLoss
from .lovasz import LovaszLoss
from .overlap import DiceLoss, TverskyLoss

LOSSES: dict[str, type[nn.Module]] = {
    "ce": CrossEntropyLoss,
    "dice": DiceLoss,
    "focal": FocalLoss,
    "tversky": TverskyLoss,
    "lovasz": LovaszLoss,
}


class WeightedSumLoss(nn.Module):
    """``sum(weight_i * loss_i)``; ``last_terms`` keeps the latest unweighted values (detached tensors,
    so the training step does not wait on the device once per term) for logging."""

    def __init__(self, terms: Mapping[str, nn.Module], weights: Mapping[str, float]):
        super().__init__()
        self.terms = nn.ModuleDict(terms)
        self.weights = dict(weights)
        self.last_terms: dict[str, torch.Tensor] = {}

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        total = None
        for name, loss_fn in self.terms.items():
            value = loss_fn(logits, target)
            self.last_terms[name] = value.detach()
            total = self.weights[name] * value if total is None else total + self.weights[name] * value
        return total


def parse_loss_spec(spec) -> dict[str, dict]:
    """Spec -> ``{name: {"weight": w, **options}}``, checking names against LOSSES."""
    if isinstance(spec, str) and spec.strip().startswith("{"):
        spec = yaml.safe_load(spec)
    if isinstance(spec, str):
        parsed = {}
        for term in spec.replace(" ", "").split("+"):
            weight, _, name = term.rpartition("*")
            if name in parsed:
                raise ValueError(f"loss {name!r} appears twice in {spec!r}")
            parsed[name] = {"weight": float(weight) if weight else 1.0}
        spec = parsed
    if not isinstance(spec, Mapping) or not spec:
        raise ValueError(f"loss spec must be a non-empty string or mapping, got {spec!r}")
    out = {}
    for name, value in spec.items():
        if name not in LOSSES:
            raise KeyError(f"unknown loss {name!r}; valid losses: {', '.join(LOSSES)}")
        options = dict(value) if isinstance(value, Mapping) else {"weight": value}
        options["weight"] = float(options.get("weight", 1.0))
        if options["weight"] < 0:
            raise ValueError(f"loss weight must be >= 0, got {options['weight']} for {name!r}")
        out[name] = options
    return out


def build_loss(spec, num_classes: int, ignore_index: int | None = 255,
               class_weights: Sequence[float] | None = None, mode: str | None = None) -> nn.Module:
    """Build the loss module for ``spec`` (see the module doc).

    ``num_classes`` is the number of logit channels: 1 means binary mode unless ``mode`` is
    given. ``class_weights`` go to every loss that uses them (ce, focal, and the class mean
    of dice / tversky / lovasz). A single loss with weight 1 is returned as itself.
    """
    parsed = parse_loss_spec(spec)
    terms, weights = {}, {}
    for name, options in parsed.items():
        weights[name] = options.pop("weight")
        terms[name] = LOSSES[name](num_classes, mode=mode, ignore_index=ignore_index,
                                   class_weights=class_weights, **options)
    if len(terms) == 1 and next(iter(weights.values())) == 1.0:
        return next(iter(terms.values()))
    return WeightedSumLoss(terms, weights)
