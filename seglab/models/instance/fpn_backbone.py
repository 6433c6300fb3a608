"""A seglab encoder with a feature pyramid on top: the backbone torchvision's detection models take.

The pyramid's inputs are picked by the encoder's declared `reductions` (4, 8, 16, 32 by default; for
a reduction declared more than once, the deepest feature), never by its name. torchvision's
FeaturePyramidNetwork gives `out_channels` maps per level and LastLevelMaxPool one more at twice the
coarsest reduction ("pool"), so five levels in all: what the region proposal network's anchors and
MultiScaleRoIAlign expect.

    backbone = EncoderFPN(build_encoder("efficientnet_lite0"))
    levels = backbone(x)  # OrderedDict "0" (x/4), "1" (x/8), "2" (x/16), "3" (x/32), "pool" (x/64)
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn
from torchvision.ops import FeaturePyramidNetwork
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

from seglab.encoders import Encoder

PYRAMID_REDUCTIONS = (4, 8, 16, 32)


def pyramid_taps(reductions: list[int], wanted: tuple[int, ...] | list[int], name: str = "encoder") -> list[int]:
    """Indices of the encoder features at the `wanted` reductions (the last one where several share one)."""
    missing = [r for r in wanted if r not in reductions]
    if missing:
        raise ValueError(f"{name} declares features at reductions {list(reductions)}; the feature pyramid needs "
                         f"reductions {list(wanted)} (missing {missing}). Use a multi-scale encoder "
                         f"(ResNet, MobileNetV2, EfficientNet-Lite0, MiT, VGG, timm:<cnn>) or set pyramid_reductions "
                         f"to reductions it declares")
    if list(wanted) != sorted(set(wanted)):
        raise ValueError(f"pyramid_reductions={list(wanted)}: give distinct reductions in increasing order")
    return [max(i for i, r in enumerate(reductions) if r == want) for want in wanted]


class EncoderFPN(nn.Module):
    """Encoder + FPN + max-pool level; `out_channels` is what torchvision's MaskRCNN reads.

    freeze_norm: the encoder's BatchNorm layers (any subclass, e.g. timm's BatchNormAct2d) keep their
    statistics and affine parameters, in training too: what torchvision does to pretrained detection
    backbones, since batches of a few large images give poor batch statistics. The state dict is
    the same either way."""

    def __init__(self, encoder: Encoder, out_channels: int = 256,
                 reductions: tuple[int, ...] | list[int] = PYRAMID_REDUCTIONS, freeze_norm: bool = False,
                 name: str = "the encoder"):
        super().__init__()
        self.encoder = encoder
        self.taps = pyramid_taps(encoder.reductions, reductions, name)
        self.reductions = list(reductions)
        self.out_channels = out_channels
        self.level_names = [str(i) for i in range(len(self.taps))]  # torchvision's names; "pool" is added
        self.fpn = FeaturePyramidNetwork([encoder.out_channels[i] for i in self.taps], out_channels,
                                         extra_blocks=LastLevelMaxPool())
        norms = [m for m in encoder.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        self.frozen_norms = norms if freeze_norm else []  # a plain list: the modules stay registered once
        for norm in self.frozen_norms:
            norm.requires_grad_(False)

    def train(self, mode: bool = True) -> "EncoderFPN":
        super().train(mode)
        for norm in self.frozen_norms:
            norm.eval()
        return self

    def forward(self, x: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        features = self.encoder(x)
        return self.fpn(OrderedDict((name, features[i]) for name, i in zip(self.level_names, self.taps)))
