"""The network of the one-stage model after the encoder: a light PAN pyramid, per-level heads, prototypes.

- `pick_taps(reductions, strides)`: for each pyramid stride, the encoder feature whose declared
  reduction is nearest (in log scale; the deepest one on a tie); features whose reduction differs from the
  stride are resized to it, so an encoder without, say, a stride-4 feature still works.
- `Pyramid`: 1x1 laterals to one width, a top-down pass (nearest upsampling + add + 3x3) and a
  bottom-up pass (3x3 stride-2 + add + 3x3), as in PANet; 3x3 convs plain or depthwise-separable.
- `LevelHead`: decoupled per level: a classification branch (-> num_classes logits) and a regression
  branch (-> 4 box distances l, t, r, b and k mask coefficients).
- `Prototypes`: k prototype maps at `proto_stride` from the finest pyramid level (upsampled, plus
  the encoder's own feature at that stride when it declares one: fine detail for 5-px objects).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def conv_bn_act(cin: int, cout: int, kernel: int = 3, stride: int = 1, depthwise: bool = False) -> nn.Sequential:
    """kxk conv + BN + SiLU; depthwise=True makes a kxk conv a depthwise kxk + pointwise 1x1 pair."""
    pad = kernel // 2
    if depthwise and kernel > 1:
        return nn.Sequential(nn.Conv2d(cin, cin, kernel, stride, pad, groups=cin, bias=False), nn.BatchNorm2d(cin),
                             nn.SiLU(inplace=True), conv_bn_act(cin, cout, 1))
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, pad, bias=False), nn.BatchNorm2d(cout),
                         nn.SiLU(inplace=True))


def pick_taps(reductions: list[int], strides: list[int]) -> list[int]:
    """Index of the encoder feature nearest to each stride (log scale; the deepest on a tie)."""
    taps = []
    for stride in strides:
        distance = [abs(math.log2(r) - math.log2(stride)) for r in reductions]
        best = min(distance)
        taps.append(max(i for i, d in enumerate(distance) if d == best))
    return taps


class Pyramid(nn.Module):
    """PAN on the encoder features at `strides` (ascending); every output has `width` channels."""

    def __init__(self, in_channels: list[int], width: int, depthwise: bool):
        super().__init__()
        n = len(in_channels)
        self.laterals = nn.ModuleList(conv_bn_act(c, width, 1) for c in in_channels)
        self.top_down = nn.ModuleList(conv_bn_act(width, width, 3, depthwise=depthwise) for _ in range(n - 1))
        self.down = nn.ModuleList(conv_bn_act(width, width, 3, 2, depthwise) for _ in range(n - 1))
        self.bottom_up = nn.ModuleList(conv_bn_act(width, width, 3, depthwise=depthwise) for _ in range(n - 1))

    def forward(self, features: list[torch.Tensor]) -> list[torch.Tensor]:
        x = [lateral(f) for lateral, f in zip(self.laterals, features)]
        for i in range(len(x) - 2, -1, -1):  # top-down: coarse context into the finer levels
            x[i] = self.top_down[i](x[i] + F.interpolate(x[i + 1], size=x[i].shape[-2:], mode="nearest"))
        for i in range(1, len(x)):  # bottom-up: fine localisation into the coarser levels
            x[i] = self.bottom_up[i - 1](x[i] + self.down[i - 1](x[i - 1]))
        return x


class LevelHead(nn.Module):
    """One pyramid level -> class logits [N, C, h, w], box distances [N, 4, h, w] (pixels), coefficients [N, k, h, w]."""

    def __init__(self, width: int, num_classes: int, num_protos: int, stride: int, depthwise: bool,
                 prior: float = 0.01):
        super().__init__()
        self.stride = stride
        self.cls_branch = nn.Sequential(conv_bn_act(width, width, 3, depthwise=depthwise),
                                        conv_bn_act(width, width, 3, depthwise=depthwise))
        self.reg_branch = nn.Sequential(conv_bn_act(width, width, 3, depthwise=depthwise),
                                        conv_bn_act(width, width, 3, depthwise=depthwise))
        self.cls_out = nn.Conv2d(width, num_classes, 1)
        self.reg_out = nn.Conv2d(width, 4 + num_protos, 1)
        nn.init.constant_(self.cls_out.bias, -math.log((1 - prior) / prior))  # focal-loss prior: few positives
        nn.init.normal_(self.cls_out.weight, std=0.01)
        nn.init.normal_(self.reg_out.weight, std=0.01)
        nn.init.zeros_(self.reg_out.bias)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        logits = self.cls_out(self.cls_branch(x))
        reg = self.reg_out(self.reg_branch(x))
        distances = F.softplus(reg[:, :4]) * self.stride  # >= 0, in units of the level's stride at start
        return logits, distances, reg[:, 4:]


class Prototypes(nn.Module):
    """k prototype maps at `proto_stride` from the finest pyramid level (at `finest_stride`)."""

    def __init__(self, width: int, num_protos: int, finest_stride: int, proto_stride: int, skip_channels: int,
                 depthwise: bool):
        super().__init__()
        if finest_stride % proto_stride:
            raise ValueError(f"proto_stride={proto_stride} must divide the finest pyramid stride {finest_stride}")
        self.factor = finest_stride // proto_stride
        self.pre = conv_bn_act(width, width, 3, depthwise=depthwise)
        self.skip = conv_bn_act(skip_channels, width, 1) if skip_channels else None
        self.post = nn.Sequential(conv_bn_act(width, width, 3, depthwise=depthwise), nn.Conv2d(width, num_protos, 1))

    def forward(self, finest: torch.Tensor, skip: torch.Tensor | None) -> torch.Tensor:
        x = self.pre(finest)
        if self.factor > 1:
            x = F.interpolate(x, scale_factor=float(self.factor), mode="nearest")
        if self.skip is not None:
            x = x + self.skip(skip)
        return self.post(x)
