"""U-Net decoder on any encoder (the encoder-decoder form of Ronneberger et al. 2015).

From the deepest feature up: resize to the next shallower feature (nearest), concatenate it,
two 3x3 conv + BN + ReLU; a last stage without skip brings the result to input resolution, and a
3x3 conv gives the logits. One decoder stage per encoder feature; `decoder_channels` sets their widths.
"""

from __future__ import annotations

import torch
from torch import nn

from seglab.models.base import SegmentationModel
from seglab.models.blocks import channel_list, conv_bn_relu, resize

DEFAULT_WIDTHS = [256, 128, 64, 32, 16]


class DecoderStage(nn.Module):
    def __init__(self, cin: int, skip: int, cout: int):
        super().__init__()
        self.convs = nn.Sequential(conv_bn_relu(cin + skip, cout), conv_bn_relu(cout, cout))

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None, size) -> torch.Tensor:
        x = resize(x, size, mode="nearest")
        return self.convs(x if skip is None else torch.cat([x, skip], 1))


class UNetEncoder(SegmentationModel):
    """U-Net decoder on any encoder (default resnet34)."""

    def __init__(self, num_classes: int, in_channels: int = 3, encoder: str = "", encoder_weights: str = "",
                 decoder_channels: list[int] | int | None = None):
        super().__init__()
        enc = self.make_encoder(encoder, in_channels, encoder_weights)
        n = len(enc.out_channels)
        widths = channel_list(decoder_channels, (DEFAULT_WIDTHS + [16] * n)[:n], n, "unet_encoder")
        skips = list(reversed(enc.out_channels[:-1])) + [0]
        cins = [enc.out_channels[-1]] + widths[:-1]
        self.stages = nn.ModuleList(DecoderStage(c, s, w) for c, s, w in zip(cins, skips, widths))
        self.head = nn.Conv2d(widths[-1], num_classes, 3, padding=1)

    def decode(self, features: list[torch.Tensor], size) -> torch.Tensor:
        skips = list(reversed(features[:-1])) + [None]
        x = features[-1]
        for stage, skip in zip(self.stages, skips):
            x = stage(x, skip, size if skip is None else skip.shape[-2:])
        return self.head(x)
