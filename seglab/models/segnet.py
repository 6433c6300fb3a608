"""SegNet (Badrinarayanan, Kendall, Cipolla 2017): VGG16-BN encoder whose max-poolings keep their
indices; the decoder mirrors it, each stage max-unpooling with the indices of its encoder stage
("bed of nails": each value goes back to where its max came from, zeros elsewhere) followed by
as many 3x3 conv + BN + ReLU as the encoder stage had. The last convolution scores the classes.
Needs an encoder that keeps pooling indices (`forward_with_indices`): vgg16_bn (default) or vgg16.
"""

from __future__ import annotations

import torch
from torch import nn

from seglab.models.base import SegmentationModel
from seglab.models.blocks import conv_bn_relu, max_unpool


class SegNet(SegmentationModel):
    """SegNet: VGG16-BN encoder, decoder unpooling with the encoder's max-pooling indices."""

    default_encoder = "vgg16_bn"

    def __init__(self, num_classes: int, in_channels: int = 3, encoder: str = "", encoder_weights: str = ""):
        super().__init__()
        enc = self.make_encoder(encoder, in_channels, encoder_weights)
        if not hasattr(enc, "forward_with_indices"):
            raise ValueError(f"segnet needs an encoder that keeps max-pooling indices (vgg16_bn, vgg16), "
                             f"not {encoder}")
        channels, depths = enc.out_channels, enc.stage_depths
        stages = []
        for i in reversed(range(len(channels))):  # deepest encoder stage first
            cout = channels[i - 1] if i > 0 else channels[0]
            convs = [conv_bn_relu(channels[i], channels[i]) for _ in range(depths[i] - 1)]
            if i > 0:
                convs.append(conv_bn_relu(channels[i], cout))
            stages.append(nn.Sequential(*convs))
        self.stages = nn.ModuleList(stages)
        self.classifier = nn.Conv2d(channels[0], num_classes, 3, padding=1)

    def padded_forward(self, x: torch.Tensor) -> torch.Tensor:
        features, indices, sizes = self.encoder.forward_with_indices(x)
        x = features[-1]
        for stage, index, size in zip(self.stages, reversed(indices), reversed(sizes)):
            x = stage(max_unpool(x, index, size))
        return self.classifier(x)
