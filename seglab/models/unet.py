"""The classic U-Net (Ronneberger et al. 2015) as the seeds draw it.

DoubleConv (3x3 conv, BN, ReLU, twice) at every level, 2x2 max pooling down, ConvTranspose2d 2x2 up
(or bilinear upsampling + 1x1 conv), skips concatenated, a 1x1 head. Width 64 and depth 4 give the
paper's ~31M-parameter network. Any input size works: the input is padded to a multiple of 2**depth
and the logits are cropped back (edge pixels replicated).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from seglab.models.padding import pad_to_multiple


def norm_layer(kind: str, channels: int) -> nn.Module:
    """batch (the seeds' choice) | group (8 groups; batch-size independent, e.g. for tiny per-process batches)."""
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "group":
        return nn.GroupNorm(math.gcd(8, channels), channels)
    raise ValueError(f"norm={kind!r}: expected 'batch' or 'group'")


class DoubleConv(nn.Sequential):
    def __init__(self, in_channels: int, out_channels: int, norm: str = "batch"):
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
            norm_layer(norm, out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            norm_layer(norm, out_channels),
            nn.ReLU(inplace=True),
        )


class Up(nn.Module):
    """Upsample by 2, concatenate the skip, DoubleConv."""

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int, upsample: str, norm: str):
        super().__init__()
        if upsample == "transpose":
            self.up = nn.ConvTranspose2d(in_channels, out_channels, 2, stride=2)
        elif upsample == "bilinear":
            self.up = nn.Sequential(
                nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                nn.Conv2d(in_channels, out_channels, 1),
            )
        else:
            raise ValueError(f"upsample={upsample!r}: expected 'transpose' or 'bilinear'")
        self.conv = DoubleConv(out_channels + skip_channels, out_channels, norm)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.conv(torch.cat([self.up(x), skip], dim=1))


class UNet(nn.Module):
    def __init__(self, num_classes: int, in_channels: int = 3, width: int = 32, depth: int = 4,
                 upsample: str = "transpose", norm: str = "batch"):
        super().__init__()
        if depth < 1 or width < 1:
            raise ValueError(f"UNet needs depth >= 1 and width >= 1, got depth={depth}, width={width}")
        channels = [width * 2**i for i in range(depth + 1)]
        self.depth = depth
        self.stem = DoubleConv(in_channels, channels[0], norm)
        self.down = nn.ModuleList(DoubleConv(channels[i], channels[i + 1], norm) for i in range(depth))
        self.up = nn.ModuleList(
            Up(channels[i + 1], channels[i], channels[i], upsample, norm) for i in reversed(range(depth))
        )
        self.head = nn.Conv2d(channels[0], num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        x = pad_to_multiple(x, 2**self.depth)  # always emitted, so exported graphs keep the size arithmetic
        skips = [self.stem(x)]
        for down in self.down:
            skips.append(down(F.max_pool2d(skips[-1], 2)))
        x = skips.pop()
        for up in self.up:
            x = up(x, skips.pop())
        return self.head(x)[..., :height, :width]
