"""DeepLabV3+ (Chen et al. 2018): dilated encoder, ASPP, and a decoder with a low-level skip.

The encoder keeps 1/`output_stride` resolution (16 by default; later strides become dilations;
an encoder that cannot be dilated, e.g. VGG or MiT, warns and keeps its own stride).
ASPP on its deepest feature: a 1x1 conv, three 3x3 convs with atrous rates 6, 12, 18 (at output
stride 16; doubled at 8, halved at 32) and image-level pooling (its BN needs batches of 2+ in training), each with BN + ReLU, concatenated and projected by a 1x1
conv to `decoder_channels` (256) with dropout. Decoder: the ASPP output upsampled to the low-level
feature (the first at 1/4 or coarser), concatenated with that feature reduced to 48 channels by a
1x1 conv, two 3x3 convs, a 1x1 classifier and bilinear upsampling to the input.
"""

from __future__ import annotations

import torch
from torch import nn

from seglab.models.base import SegmentationModel
from seglab.models.blocks import conv_bn_relu, resize, single_width


class ImagePooling(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = conv_bn_relu(cin, cout, kernel=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return resize(self.conv(x.mean((2, 3), keepdim=True)), x.shape[-2:])


class ASPP(nn.Module):
    def __init__(self, cin: int, cout: int, rates: tuple[int, ...], dropout: float):
        super().__init__()
        branches = [conv_bn_relu(cin, cout, kernel=1)] + [conv_bn_relu(cin, cout, dilation=r) for r in rates]
        self.branches = nn.ModuleList([*branches, ImagePooling(cin, cout)])
        self.project = nn.Sequential(conv_bn_relu(len(self.branches) * cout, cout, kernel=1), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(torch.cat([branch(x) for branch in self.branches], 1))


class DeepLabV3Plus(SegmentationModel):
    """DeepLabV3+: dilated ResNet-50 (output stride 16), ASPP, low-level skip at 1/4."""

    default_encoder = "resnet50"

    def __init__(self, num_classes: int, in_channels: int = 3, encoder: str = "", encoder_weights: str = "",
                 decoder_channels: int | None = None, dropout: float = 0.0, output_stride: int = 16):
        super().__init__()
        if output_stride not in (8, 16, 32):
            raise ValueError(f"deeplabv3plus: output_stride={output_stride}, expected 8, 16 or 32")
        enc = self.make_encoder(encoder, in_channels, encoder_weights, output_stride)
        width = single_width(decoder_channels, 256)
        self.low = next((i for i, r in enumerate(enc.reductions) if r >= 4), 0)
        rates = tuple(r * 16 // enc.reductions[-1] for r in (6, 12, 18))  # the stride it really has
        self.aspp = ASPP(enc.out_channels[-1], width, rates, dropout)
        self.reduce_low = conv_bn_relu(enc.out_channels[self.low], 48, kernel=1)
        self.fuse = nn.Sequential(conv_bn_relu(width + 48, width), conv_bn_relu(width, width))
        self.classifier = nn.Conv2d(width, num_classes, 1)

    def decode(self, features: list[torch.Tensor], size) -> torch.Tensor:
        low = self.reduce_low(features[self.low])
        x = torch.cat([resize(self.aspp(features[-1]), low.shape[-2:]), low], 1)
        return resize(self.classifier(self.fuse(x)), size)
