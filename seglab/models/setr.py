"""SETR (Zheng et al. 2021): a ViT on 16x16 patches as encoder, with three decoders.

- naive: 1x1 conv + BN + ReLU, 1x1 conv to the classes, bilinear upsampling to the input.
- PUP (progressive upsampling): 3x3 conv + BN + ReLU then x2 bilinear upsampling, four times (1/16 -> 1/1).
- MLA (multi-level aggregation): four streams from evenly spaced transformer layers; each a 1x1 conv,
  a top-down sum with the deeper streams, then two 3x3 convs (the second halving the width) and x4
  upsampling; the streams are concatenated, scored and upsampled x4.
The ViT encoder interpolates its position embeddings to every input's patch grid (any input size).
Default encoder vit_b_16 (the paper uses ViT-L); any encoder works: MLA uses its last four features.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from seglab.models.base import SegmentationModel
from seglab.models.blocks import conv_bn_relu, resize, single_width


class SETR(SegmentationModel):
    default_encoder = "vit_b_16"

    def __init__(self, num_classes: int, in_channels: int = 3, encoder: str = "", encoder_weights: str = "",
                 decoder_channels: int | None = None, dropout: float = 0.0):
        super().__init__()
        enc = self.make_encoder(encoder, in_channels, encoder_weights)
        self.dropout = nn.Dropout2d(dropout)
        self.build_decoder(enc.out_channels, enc.reductions, single_width(decoder_channels, 256), num_classes)

    def build_decoder(self, channels: list[int], reductions: list[int], width: int, num_classes: int) -> None:
        raise NotImplementedError


class SETRNaive(SETR):
    """SETR-Naive: ViT-B/16 encoder, 1x1 convs and bilinear upsampling."""

    def build_decoder(self, channels, reductions, width, num_classes):
        self.head = conv_bn_relu(channels[-1], width, kernel=1)
        self.classifier = nn.Conv2d(width, num_classes, 1)

    def decode(self, features, size):
        return resize(self.classifier(self.dropout(self.head(features[-1]))), size)


class SETRPUP(SETR):
    """SETR-PUP: ViT-B/16 encoder, progressive upsampling (4 x [3x3 conv, x2])."""

    def build_decoder(self, channels, reductions, width, num_classes):
        steps = max(1, round(math.log2(reductions[-1])))
        self.stages = nn.ModuleList(conv_bn_relu(channels[-1] if i == 0 else width, width) for i in range(steps))
        self.classifier = nn.Conv2d(width, num_classes, 1)

    def decode(self, features, size):
        x = features[-1]
        for stage in self.stages:
            x = stage(x)
            x = resize(x, (x.shape[-2] * 2, x.shape[-1] * 2))
        return resize(self.classifier(self.dropout(x)), size)


class SETRMLA(SETR):
    """SETR-MLA: ViT-B/16 encoder, multi-level aggregation of four transformer layers."""

    def build_decoder(self, channels, reductions, width, num_classes):
        used = channels[-4:]
        self.reduce = nn.ModuleList(conv_bn_relu(c, width, kernel=1) for c in used)
        self.streams = nn.ModuleList(
            nn.Sequential(conv_bn_relu(width, width), conv_bn_relu(width, width // 2)) for _ in used)
        self.classifier = nn.Conv2d(len(used) * (width // 2), num_classes, 1)

    def decode(self, features, size):
        features = features[-len(self.reduce):]
        reduced = [reduce(f) for reduce, f in zip(self.reduce, features)]
        summed = [reduced[-1]]
        for x in reversed(reduced[:-1]):  # top-down: add the deeper (already summed) stream
            summed.insert(0, x + resize(summed[0], x.shape[-2:]))
        h, w = features[0].shape[-2:]
        streams = [resize(stream(x), (h * 4, w * 4)) for stream, x in zip(self.streams, summed)]
        return resize(self.classifier(self.dropout(torch.cat(streams, 1))), size)
