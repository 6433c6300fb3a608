"""The network of the bottom-up panoptic model after the encoder: a light decoder to stride 4 and three heads.

- `Context`: an ASPP-lite on the deepest feature: a 1x1 branch, a dilated 3x3 branch (rate 2, depthwise
  when asked) and an image-pooling branch added by broadcasting (no resize: exports with any input size).
- `Decoder`: an FPN top-down pass from the context to the finest stride (`strides[0]`, 4 by default): 1x1
  laterals, nearest upsampling + add + 3x3 at each level. One shared decoder (Panoptic-DeepLab has two; one
  is half the decoder cost on a CPU and the heads keep their own towers).
- `Heads`: per output a 3x3 tower and a 1x1 projection: semantic logits (num_classes), centre heatmap
  (1 channel, linear, regressed with MSE) and centre offsets (2 channels: dy, dx in input pixels, the
  projection scaled by the head stride so that one unit of the conv moves the vote by one output cell).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from seglab.models.instance.onestage_head import conv_bn_act


class Context(nn.Module):
    """ASPP-lite: (1x1 + dilated 3x3 + broadcast image pooling) -> 1x1 fuse, `width` channels out."""

    def __init__(self, cin: int, width: int, depthwise: bool):
        super().__init__()
        self.point = conv_bn_act(cin, width, 1)
        if depthwise:
            self.dilated = nn.Sequential(nn.Conv2d(cin, cin, 3, padding=2, dilation=2, groups=cin, bias=False),
                                         nn.BatchNorm2d(cin), nn.SiLU(inplace=True), conv_bn_act(cin, width, 1))
        else:
            self.dilated = nn.Sequential(nn.Conv2d(cin, width, 3, padding=2, dilation=2, bias=False),
                                         nn.BatchNorm2d(width), nn.SiLU(inplace=True))
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(cin, width, 1), nn.SiLU(inplace=True))
        self.fuse = conv_bn_act(2 * width, width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fuse(torch.cat([self.point(x), self.dilated(x)], 1)) + self.pool(x)


class Decoder(nn.Module):
    """Encoder features at ascending strides -> one map of `width` channels at the finest stride."""

    def __init__(self, in_channels: list[int], width: int, depthwise: bool):
        super().__init__()
        self.context = Context(in_channels[-1], width, depthwise)
        self.laterals = nn.ModuleList(conv_bn_act(c, width, 1) for c in in_channels[:-1])
        self.fuse = nn.ModuleList(conv_bn_act(width, width, 3, depthwise=depthwise) for _ in in_channels[:-1])

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        x = self.context(features[-1])
        for i in range(len(features) - 2, -1, -1):
            lateral = self.laterals[i](features[i])
            x = self.fuse[i](lateral + F.interpolate(x, size=lateral.shape[-2:], mode="nearest"))
        return x


def tower(width: int, head_width: int, cout: int, depthwise: bool) -> nn.Sequential:
    return nn.Sequential(conv_bn_act(width, head_width, 3, depthwise=depthwise),
                         conv_bn_act(head_width, head_width, 3, depthwise=depthwise), nn.Conv2d(head_width, cout, 1))


class Heads(nn.Module):
    """Decoder map -> (semantic logits [N, C, h, w], heatmap [N, 1, h, w], offsets [N, 2, h, w] in pixels)."""

    def __init__(self, width: int, head_width: int, num_classes: int, stride: int, depthwise: bool):
        super().__init__()
        self.stride = float(stride)
        self.semantic = tower(width, head_width, num_classes, depthwise)
        self.heatmap = tower(width, head_width, 1, depthwise)
        self.offsets = tower(width, head_width, 2, depthwise)
        for projection in (self.heatmap[-1], self.offsets[-1]):
            nn.init.normal_(projection.weight, std=0.01)
            nn.init.zeros_(projection.bias)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.semantic(x), self.heatmap(x), self.offsets(x) * self.stride
