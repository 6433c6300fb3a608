"""torchvision VGG16 / VGG16-BN as encoders: the output of each of the five max-poolings (1/2 .. 1/32).

The pools also return their indices (`forward_with_indices`), which SegNet's decoder unpools with.
"""

from __future__ import annotations

from functools import partial

import torch
from torch import nn
from torchvision.models.vgg import cfgs, make_layers

from seglab.encoders.base import Encoder, EncoderSpec, TorchvisionWeights


class VGGEncoder(Encoder):
    dilatable = False  # the resolution falls at max-poolings, which have no dilated form here

    def __init__(self, name: str):  # vgg16 | vgg16_bn
        super().__init__()
        # torchvision's own layer list (keys as in its state dicts), without the 120M-parameter classifier
        self.features = make_layers(cfgs["D"], batch_norm=name.endswith("_bn"))
        for layer in self.features:
            if isinstance(layer, nn.Conv2d):  # torchvision's VGG initialisation
                nn.init.kaiming_normal_(layer.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(layer.bias)
        self.stage_depths, convs, out = [], 0, []
        for layer in self.features:
            if isinstance(layer, nn.Conv2d):
                convs, channels = convs + 1, layer.out_channels
            elif isinstance(layer, nn.MaxPool2d):
                layer.return_indices = True
                self.stage_depths.append(convs)
                out.append(channels)
                convs = 0
        self.out_channels = out
        self.reductions = [2**i for i in range(1, len(out) + 1)]

    def forward_with_indices(self, x: torch.Tensor):
        """-> (features, pooling indices, pre-pooling sizes), one of each per stage."""
        features, indices, sizes = [], [], []
        for layer in self.features:
            if isinstance(layer, nn.MaxPool2d):
                sizes.append(x.shape[-2:])
                x, index = layer(x)
                features.append(x)
                indices.append(index)
            else:
                x = layer(x)
        return features, indices, sizes

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.forward_with_indices(x)[0]


VGGS = {
    "vgg16": EncoderSpec(partial(VGGEncoder, "vgg16"), TorchvisionWeights("VGG16_Weights.IMAGENET1K_V1"),
                         about="torchvision VGG16, pool1..pool5"),
    "vgg16_bn": EncoderSpec(partial(VGGEncoder, "vgg16_bn"), TorchvisionWeights("VGG16_BN_Weights.IMAGENET1K_V1"),
                            about="torchvision VGG16 with batch norm, pool1..pool5"),
}
