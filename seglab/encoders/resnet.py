"""torchvision ResNet-18/34/50 as encoders: stem (1/2) and layer1-4 (1/4 .. 1/32)."""

from __future__ import annotations

from functools import partial

import torchvision

from seglab.encoders.base import EncoderSpec, TorchvisionWeights
from seglab.encoders.taps import TapEncoder, add_body_prefix

TAPS = ["relu", "layer1", "layer2", "layer3", "layer4"]
REDUCTIONS = [2, 4, 8, 16, 32]


def resnet(name: str, channels: list[int]) -> TapEncoder:
    return TapEncoder(getattr(torchvision.models, name)(weights=None), TAPS, channels, REDUCTIONS)


RESNETS = {
    "resnet18": EncoderSpec(partial(resnet, "resnet18", [64, 64, 128, 256, 512]),
                            TorchvisionWeights("ResNet18_Weights.IMAGENET1K_V1"), convert=add_body_prefix,
                            about="torchvision ResNet-18"),
    "resnet34": EncoderSpec(partial(resnet, "resnet34", [64, 64, 128, 256, 512]),
                            TorchvisionWeights("ResNet34_Weights.IMAGENET1K_V1"), convert=add_body_prefix,
                            about="torchvision ResNet-34"),
    "resnet50": EncoderSpec(partial(resnet, "resnet50", [64, 256, 512, 1024, 2048]),
                            TorchvisionWeights("ResNet50_Weights.IMAGENET1K_V2"), convert=add_body_prefix,
                            about="torchvision ResNet-50"),
}
