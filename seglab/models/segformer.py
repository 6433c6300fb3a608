"""SegFormer (Xie et al. 2021): Mix Transformer encoder (MiT-B0..B2) and the all-MLP decoder.

Decoder: each encoder feature goes through a linear layer (1x1 conv) to `decoder_channels` (256 for
B0/B1 in the paper, 768 for B2 and up), is upsampled to the shallowest feature's size (1/4 for MiT),
concatenated, fused by a 1x1 conv + BN + ReLU, then dropout, a linear classifier and bilinear
upsampling to the input. Default encoder mit_b0; any encoder works.
"""

from __future__ import annotations

import torch
from torch import nn

from seglab.models.base import SegmentationModel
from seglab.models.blocks import conv_bn_relu, resize, single_width


class SegFormer(SegmentationModel):
    """SegFormer: Mix Transformer (MiT-B0 by default, B1, B2) + all-MLP decoder."""

    default_encoder = "mit_b0"

    def __init__(self, num_classes: int, in_channels: int = 3, encoder: str = "", encoder_weights: str = "",
                 decoder_channels: int | None = None, dropout: float = 0.0):
        super().__init__()
        enc = self.make_encoder(encoder, in_channels, encoder_weights)
        width = single_width(decoder_channels, 256)
        self.linear = nn.ModuleList(nn.Conv2d(c, width, 1) for c in enc.out_channels)
        self.fuse = conv_bn_relu(len(enc.out_channels) * width, width, kernel=1)
        self.dropout = nn.Dropout2d(dropout)
        self.classifier = nn.Conv2d(width, num_classes, 1)

    def decode(self, features: list[torch.Tensor], size) -> torch.Tensor:
        target = features[0].shape[-2:]
        x = torch.cat([resize(linear(f), target) for linear, f in zip(self.linear, features)], 1)
        return resize(self.classifier(self.dropout(self.fuse(x))), size)
