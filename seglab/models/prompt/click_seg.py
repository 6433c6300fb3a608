"""seglab's click model: RITM's inputs (clicks, previous mask, box) with SAM's split of the work.

`embed(x)` runs the heavy part once per image: any seglab encoder and a small FPN neck give features
at stride 8 (`s8`, `channels` wide) and stride 4 (`s4`). `decode(features, points, labels, boxes,
prev_logits)` is the light part, run per click: the prompts as maps on the stride-4 grid
(click_maps.py: positive / negative Gaussian click maps, the previous mask, the box) are encoded by
two small convs (to stride 8), added to the cached stride-8 features, mixed by a few
depthwise-separable residual blocks with growing dilation (so a click reaches the whole object),
brought to stride 4 with the cached stride-4 features and turned into 4 mask logit maps plus a
predicted IoU for each:
- channel 0: the single mask (what a refining click or a box asks for);
- channels 1-3: three candidates for an ambiguous first click (SAM's multimask output).
Logits come at stride 4 of the (square, padded) input. Input sides must be multiples of the encoder's
`multiple` (32 for most). Every constructor argument is a plain value, so checkpoints rebuild it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from seglab.encoders import build_encoder
from seglab.models.prompt.click_maps import PROMPT_CHANNELS, prompt_maps

OUTPUT_STRIDE = 4
OUTPUTS = 4  # single mask + 3 multimask candidates
DILATIONS = (1, 2, 4, 8, 1)


def conv_bn_relu(cin: int, cout: int, kernel: int = 3, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


class SeparableBlock(nn.Module):
    """ReLU(x + BN(1x1(ReLU(BN(dilated depthwise 3x3(x)))))): cheap mixing over a wide field (conv / BN
    pairs in Sequentials, so seglab.inference.fuse folds them for inference)."""

    def __init__(self, channels: int, dilation: int):
        super().__init__()
        self.spatial = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=dilation, dilation=dilation,
                                               groups=channels, bias=False), nn.BatchNorm2d(channels),
                                     nn.ReLU(inplace=True))
        self.channel = nn.Sequential(nn.Conv2d(channels, channels, 1, bias=False), nn.BatchNorm2d(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.channel(self.spatial(x)))


class Neck(nn.Module):
    """Encoder features -> {"s8": [N, C, H/8, W/8] (the 1/8, 1/16, 1/32 maps summed), "s4": [N, C/2, H/4, W/4]}."""

    def __init__(self, in_channels: list[int], reductions: list[int], channels: int):
        super().__init__()
        self.taps = {r: i for i, r in enumerate(reductions)}  # the last feature at each reduction
        missing = [r for r in (4, 8) if r not in self.taps]
        if missing:
            raise ValueError(f"the click model needs encoder features at reductions 4 and 8 (got {reductions})")
        self.deep = [r for r in sorted(self.taps) if r >= 8]
        self.lateral = nn.ModuleList(nn.Conv2d(in_channels[self.taps[r]], channels, 1) for r in self.deep)
        self.smooth = conv_bn_relu(channels, channels)
        self.fine = conv_bn_relu(in_channels[self.taps[4]], channels // 2, kernel=1)

    def forward(self, features: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        s8 = None
        for r, lateral in zip(reversed(self.deep), reversed(self.lateral)):
            x = lateral(features[self.taps[r]])
            s8 = x if s8 is None else x + F.interpolate(s8, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return {"s8": self.smooth(s8), "s4": self.fine(features[self.taps[4]])}


class ClickSeg(nn.Module):
    """`num_classes` is taken for the registries' shared signature and not used: a prompt gives one object."""

    default_encoder = "efficientnet_lite0"

    def __init__(self, num_classes: int = 1, encoder: str = "efficientnet_lite0", encoder_weights: str = "",
                 channels: int = 64, click_radius: float = 5.0):
        super().__init__()
        self.encoder = build_encoder(encoder or self.default_encoder, 3, encoder_weights)
        self.normalization = {k: list(v) for k, v in self.encoder.normalization.items()}
        self.click_radius = float(click_radius)
        self.neck = Neck(self.encoder.out_channels, self.encoder.reductions, channels)
        fine = channels // 2
        self.prompt_fine = conv_bn_relu(PROMPT_CHANNELS, fine)  # stride 4
        self.prompt_coarse = conv_bn_relu(fine, channels, stride=2)  # stride 8
        self.mix = nn.Sequential(*(SeparableBlock(channels, d) for d in DILATIONS))
        self.up = conv_bn_relu(channels, fine, kernel=1)
        self.refine = SeparableBlock(fine, 1)
        self.mask_head = nn.Conv2d(fine, OUTPUTS, 1)
        self.iou_head = nn.Sequential(nn.Linear(2 * channels, channels), nn.ReLU(inplace=True),
                                      nn.Linear(channels, OUTPUTS))

    @property
    def multiple(self) -> int:
        return self.encoder.multiple

    def embed(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The heavy part, once per image: normalised [N, 3, H, W] -> cached features."""
        if x.shape[-2] % self.multiple or x.shape[-1] % self.multiple:
            raise ValueError(f"click_seg input sides must be multiples of {self.multiple}, got {tuple(x.shape[-2:])}")
        return self.neck(self.encoder(x))

    def decode(self, features: dict[str, torch.Tensor], points: torch.Tensor | None, labels: torch.Tensor | None,
               boxes: torch.Tensor | None = None, prev_logits: torch.Tensor | None = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """The light part, per prompt batch of B: (logits [B, 4, H/4, W/4], predicted IoU [B, 4]).

        points [B, N, 2] (x, y) and boxes [B, 4] in input pixels; prev_logits [B, 1, h, w] (any size).
        Features of one image are shared by all B prompts (given with batch 1), or given per prompt."""
        s8, s4 = features["s8"], features["s4"]
        batch = next((t.shape[0] for t in (points, boxes, prev_logits) if t is not None), s8.shape[0])
        if s8.shape[0] != batch:
            s8, s4 = s8.expand(batch, -1, -1, -1), s4.expand(batch, -1, -1, -1)
        maps = prompt_maps(points, labels, boxes, prev_logits, batch, tuple(s4.shape[-2:]), OUTPUT_STRIDE,
                           self.click_radius, s4.device).to(s4.dtype)
        fine = self.prompt_fine(maps)
        x = self.mix(s8 + self.prompt_coarse(fine))
        pooled = torch.cat([x.mean(dim=(2, 3)), x.amax(dim=(2, 3))], dim=1)
        y = F.interpolate(self.up(x), size=s4.shape[-2:], mode="bilinear", align_corners=False)
        logits = self.mask_head(self.refine(y + s4 + fine))
        return logits, self.iou_head(pooled)

    def forward(self, x: torch.Tensor, points: torch.Tensor | None = None, labels: torch.Tensor | None = None,
                boxes: torch.Tensor | None = None, prev_logits: torch.Tensor | None = None):
        return self.decode(self.embed(x), points, labels, boxes, prev_logits)
