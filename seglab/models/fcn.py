"""Fully convolutional networks (Long, Shelhamer, Darrell 2015): FCN-32s, FCN-16s, FCN-8s.

The classifier's fully connected layers become convolutions on the deepest feature (fc6: 7x7 conv,
fc7: 1x1 conv, `decoder_channels` wide, 4096 in the paper, each with ReLU and dropout; fc6 trains as
im2col + GEMM, see GemmConv2d) and a 1x1
conv scores the classes. FCN-32s upsamples that score map straight to the input; FCN-16s first
upsamples it x2 and adds a score of the previous feature (pool4), FCN-8s adds pool3 as well.
Upsampling is transposed convolution initialised as bilinear interpolation, and the skip scores
start at zero, as in the paper, so a 16s/8s net starts out as its coarser parent.
Default encoder: VGG16 (pool3/4/5 at 1/8, 1/16, 1/32); any encoder works (e.g. resnet50).
"""

from __future__ import annotations

import torch
from torch import nn

from seglab.models.base import SegmentationModel
from seglab.models.blocks import GemmConv2d, single_width, transposed_upsampler


class FCN(SegmentationModel):
    default_encoder = "vgg16"
    skips = 0  # 32s: 0, 16s: 1 (pool4), 8s: 2 (pool4, pool3)

    def __init__(self, num_classes: int, in_channels: int = 3, encoder: str = "", encoder_weights: str = "",
                 decoder_channels: int | None = None, dropout: float = 0.0):
        super().__init__()
        enc = self.make_encoder(encoder, in_channels, encoder_weights)
        if len(enc.out_channels) < self.skips + 1:
            raise ValueError(f"{type(self).__name__} needs {self.skips + 1} encoder features")
        width = single_width(decoder_channels, 4096)
        self.fc = nn.Sequential(
            GemmConv2d(enc.out_channels[-1], width, 7, padding=3), nn.ReLU(inplace=True), nn.Dropout2d(dropout),
            nn.Conv2d(width, width, 1), nn.ReLU(inplace=True), nn.Dropout2d(dropout),
            nn.Conv2d(width, num_classes, 1),
        )
        used = range(len(enc.out_channels) - 1 - self.skips, len(enc.out_channels) - 1)  # shallow to deep
        self.score_skips = nn.ModuleList(nn.Conv2d(enc.out_channels[i], num_classes, 1) for i in reversed(used))
        for score in self.score_skips:
            nn.init.zeros_(score.weight)
            nn.init.zeros_(score.bias)
        r = enc.reductions
        deepest = len(r) - 1
        self.up_skips = nn.ModuleList(transposed_upsampler(num_classes, r[deepest - i] // r[deepest - i - 1])
                                      for i in range(self.skips))
        self.up_final = transposed_upsampler(num_classes, r[deepest - self.skips])

    def decode(self, features: list[torch.Tensor], size) -> torch.Tensor:
        score = self.fc(features[-1])
        for i, (up, skip_score) in enumerate(zip(self.up_skips, self.score_skips)):
            score = up(score) + skip_score(features[-2 - i])
        return self.up_final(score)


class FCN32s(FCN):
    """FCN-32s: fc6/fc7 as convolutions on VGG16, one x32 transposed-conv upsampling."""

    skips = 0


class FCN16s(FCN):
    """FCN-16s: FCN-32s plus a pool4 skip (sum at 1/16), x16 upsampling."""

    skips = 1


class FCN8s(FCN):
    """FCN-8s: FCN-16s plus a pool3 skip (sum at 1/8), x8 upsampling."""

    skips = 2
