"""A torchvision classifier cut at declared tap modules, through torchvision's own FX feature extraction."""

from __future__ import annotations

import torch
from torch import nn

from seglab.encoders.base import Encoder


class TapEncoder(Encoder):
    """Features = outputs of the modules named in `taps` (module names of the torchvision model).

    The extracted graph lives in `self.body`, so state dict keys are torchvision's with "body." in front;
    `add_body_prefix` converts a torchvision state dict (its classifier keys are then left out).
    """

    def __init__(self, model: nn.Module, taps: list[str], out_channels: list[int], reductions: list[int]):
        super().__init__()
        from torchvision.models.feature_extraction import create_feature_extractor

        self.taps = list(taps)
        self.body = create_feature_extractor(model, {tap: str(i) for i, tap in enumerate(taps)})
        self.out_channels, self.reductions = list(out_channels), list(reductions)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = self.body(x)
        return [out[str(i)] for i in range(len(self.taps))]

    def tap_modules(self) -> list[str]:
        return ["body." + tap for tap in self.taps]


def add_body_prefix(state: dict) -> dict:
    return {k if k.startswith("body.") else "body." + k: v for k, v in state.items()}
