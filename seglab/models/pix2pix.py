"""MobileNetV2 + pix2pix decoder: the model of TensorFlow's image segmentation tutorial.

Encoder taps (Keras names) block_1_expand_relu (1/2), block_3_expand_relu (1/4), block_6_expand_relu
(1/8), block_13_expand_relu (1/16), block_16_project (1/32) - the `mobilenet_v2_pix2pix` encoder.
Decoder: from the deepest tap, four pix2pix upsample stages (512, 256, 128, 64 filters), each a
3x3 transposed conv with stride 2 + BN + optional dropout + ReLU, concatenated with the next tap;
a final 3x3 transposed conv with stride 2 gives the class logits at input resolution.
Strides follow the encoder's declared reductions, so any encoder fits.
"""

from __future__ import annotations

import torch
from torch import nn

from seglab.models.base import SegmentationModel
from seglab.models.blocks import channel_list, transposed_stage


class Upsample(nn.Sequential):
    def __init__(self, cin: int, cout: int, factor: int, dropout: float):
        layers = [transposed_stage(cin, cout, factor), nn.BatchNorm2d(cout)]
        if dropout:
            layers.append(nn.Dropout(dropout))
        super().__init__(*layers, nn.ReLU(inplace=True))


class Pix2Pix(SegmentationModel):
    """MobileNetV2 + pix2pix upsampling decoder (TensorFlow segmentation tutorial)."""

    default_encoder = "mobilenet_v2_pix2pix"

    def __init__(self, num_classes: int, in_channels: int = 3, encoder: str = "", encoder_weights: str = "",
                 decoder_channels: list[int] | int | None = None, dropout: float = 0.0):
        super().__init__()
        enc = self.make_encoder(encoder, in_channels, encoder_weights)
        n = len(enc.out_channels) - 1
        widths = channel_list(decoder_channels, ([512, 256, 128, 64] + [64] * n)[:n], n, "pix2pix")
        r, ch = enc.reductions, enc.out_channels
        stages, cin = [], ch[-1]
        for i, width in enumerate(widths):  # from the deepest tap towards the shallowest
            deep, shallow = n - i, n - 1 - i
            stages.append(Upsample(cin, width, r[deep] // r[shallow], dropout))
            cin = width + ch[shallow]
        self.up_stack = nn.ModuleList(stages)
        self.last = nn.ConvTranspose2d(cin, num_classes, 3, stride=r[0], padding=1, output_padding=r[0] - 1)

    def decode(self, features: list[torch.Tensor], size) -> torch.Tensor:
        x = features[-1]
        for up, skip in zip(self.up_stack, reversed(features[:-1])):
            x = torch.cat([up(x), skip], 1)
        return self.last(x)
