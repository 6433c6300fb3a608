"""The pixel decoder of the query model: an FPN over the encoder, and the sine position code of its maps.

    encoder taps at strides mask_stride, 2 mask_stride, ..., 32 (chosen by declared reductions; an
    encoder without a stride is resampled from its nearest feature)
      -> 1x1 laterals to `width` channels, top-down sums, a 3x3 conv (GroupNorm, ReLU) per level
      -> per-pixel embeddings (`mask_features`, a 1x1 conv of the finest level) at mask_stride, and
         the three coarsest levels (coarse to fine) that the transformer decoder attends to.

MaskFormer's own pixel decoder is this FPN; Mask2Former's deformable-attention one is not CPU-friendly.
GroupNorm rather than BatchNorm: per-sample in eval and stable with the small batches of CPU training.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from seglab.models.instance.onestage_head import pick_taps

DECODER_LEVELS = 3  # the coarsest levels the queries attend to (Mask2Former: 1/32, 1/16, 1/8)


def conv_gn_relu(cin: int, cout: int, kernel: int) -> nn.Sequential:
    groups = math.gcd(32, cout)
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, padding=kernel // 2, bias=False), nn.GroupNorm(groups, cout),
                         nn.ReLU(inplace=True))


class PixelDecoder(nn.Module):
    """Encoder features -> (per-pixel embeddings [N, mask_dim, H / mask_stride, W / mask_stride],
    decoder levels: a list of [N, width, h_l, w_l], coarse to fine)."""

    def __init__(self, reductions: list[int], channels: list[int], width: int, mask_dim: int, mask_stride: int,
                 top_stride: int = 32):
        super().__init__()
        if mask_stride not in (4, 8):
            raise ValueError(f"mask_stride must be 4 or 8, got {mask_stride}")
        self.strides = [mask_stride * 2 ** i for i in range(int(math.log2(top_stride // mask_stride)) + 1)]
        self.taps = pick_taps(list(reductions), self.strides)
        self.tap_reductions = [reductions[t] for t in self.taps]
        self.laterals = nn.ModuleList(conv_gn_relu(channels[t], width, 1) for t in self.taps)
        self.outputs = nn.ModuleList(conv_gn_relu(width, width, 3) for _ in self.taps)
        self.mask_features = nn.Conv2d(width, mask_dim, 1)

    def forward(self, features: list[torch.Tensor], size) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """`size`: the (padded) input's height and width."""
        taps = []
        for tap, reduction, stride in zip(self.taps, self.tap_reductions, self.strides):
            f = features[tap]
            if reduction != stride:  # e.g. a ViT's single stride 16: resample to the level's size
                f = F.interpolate(f, size=(size[0] // stride, size[1] // stride), mode="bilinear",
                                  align_corners=False)
            taps.append(f)
        levels: list[torch.Tensor] = [None] * len(taps)
        top = None
        for i in reversed(range(len(taps))):
            x = self.laterals[i](taps[i])
            if top is not None:
                x = x + F.interpolate(top, scale_factor=2.0, mode="nearest")
            top = self.outputs[i](x)
            levels[i] = top
        return self.mask_features(levels[0]), levels[::-1][:DECODER_LEVELS]


def sine_positions(feature: torch.Tensor, temperature: float = 10000.0) -> torch.Tensor:
    """DETR's 2-D sine position code for a map [N, C, h, w] -> [N, C, h, w] (C even; half y, half x).

    Coordinates come from cumulative sums of ones, so an exported graph keeps them dynamic in h and w."""
    channels = feature.shape[1]
    half = channels // 2
    ones = torch.ones_like(feature[:, 0])
    y = ones.cumsum(1)
    x = ones.cumsum(2)
    scale = 2 * math.pi
    y = (y - 0.5) / (y[:, -1:, :] + 1e-6) * scale
    x = (x - 0.5) / (x[:, :, -1:] + 1e-6) * scale
    dim = torch.arange(half, dtype=torch.float32, device=feature.device)
    dim = temperature ** (2 * torch.div(dim, 2, rounding_mode="floor") / half)
    pos_x, pos_y = x[..., None] / dim, y[..., None] / dim  # [N, h, w, half]
    pos_x = torch.stack([pos_x[..., 0::2].sin(), pos_x[..., 1::2].cos()], 4).flatten(3)
    pos_y = torch.stack([pos_y[..., 0::2].sin(), pos_y[..., 1::2].cos()], 4).flatten(3)
    return torch.cat([pos_y, pos_x], 3).permute(0, 3, 1, 2).to(feature.dtype)
