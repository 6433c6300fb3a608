"""Mix Transformer MiT-B0..B2 (SegFormer, Xie et al. 2021): four stages at 1/4, 1/8, 1/16, 1/32.

Each stage: overlapping patch embedding (strided conv + LayerNorm), transformer blocks with
efficient self-attention (keys/values from a map shrunk by `sr` with a strided conv) and Mix-FFN
(a 3x3 depthwise conv between the two linear layers, no position embeddings), then LayerNorm.
No ImageNet weight source is declared: neither torchvision nor timm ships MiT.
"""

from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from seglab.encoders.base import Encoder, EncoderSpec

VARIANTS = {  # channels, blocks per stage
    "mit_b0": ([32, 64, 160, 256], [2, 2, 2, 2]),
    "mit_b1": ([64, 128, 320, 512], [2, 2, 2, 2]),
    "mit_b2": ([64, 128, 320, 512], [3, 4, 6, 3]),
}
HEADS, SR_RATIOS = [1, 2, 5, 8], [8, 4, 2, 1]


class EfficientAttention(nn.Module):
    def __init__(self, dim: int, heads: int, sr: int):
        super().__init__()
        self.heads, self.scale = heads, (dim // heads) ** -0.5
        self.q, self.kv, self.proj = nn.Linear(dim, dim), nn.Linear(dim, 2 * dim), nn.Linear(dim, dim)
        if sr > 1:
            self.sr, self.norm = nn.Conv2d(dim, dim, sr, sr), nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        n, length, dim = x.shape
        q = self.q(x).reshape(n, length, self.heads, dim // self.heads).transpose(1, 2)
        if hasattr(self, "sr"):
            x = self.sr(x.transpose(1, 2).reshape(n, dim, h, w)).flatten(2).transpose(1, 2)
            x = self.norm(x)
        k, v = self.kv(x).reshape(n, -1, 2, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4)
        attention = (q @ k.transpose(-2, -1) * self.scale).softmax(-1)
        return self.proj((attention @ v).transpose(1, 2).reshape(n, length, dim))


class MixFFN(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)
        self.dw = nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden)

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        x = self.fc1(x)
        n, _, c = x.shape
        x = self.dw(x.transpose(1, 2).reshape(n, c, h, w)).flatten(2).transpose(1, 2)
        return self.fc2(F.gelu(x))


class Block(nn.Module):
    def __init__(self, dim: int, heads: int, sr: int, drop_path: float):
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(dim), EfficientAttention(dim, heads, sr)
        self.norm2, self.ffn = nn.LayerNorm(dim), MixFFN(dim, 4 * dim)
        self.drop_path = drop_path

    def residual(self, branch: torch.Tensor) -> torch.Tensor:
        """Stochastic depth: during training drop the whole branch for some samples."""
        if not self.training or self.drop_path == 0:
            return branch
        keep = torch.rand(branch.shape[0], 1, 1, device=branch.device) >= self.drop_path
        return branch * keep / (1 - self.drop_path)

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        x = x + self.residual(self.attn(self.norm1(x), h, w))
        return x + self.residual(self.ffn(self.norm2(x), h, w))


class Stage(nn.Module):
    def __init__(self, cin: int, dim: int, depth: int, heads: int, sr: int, first: bool, drop_paths: list[float]):
        super().__init__()
        kernel, stride = (7, 4) if first else (3, 2)
        self.patch_embed = nn.Conv2d(cin, dim, kernel, stride, kernel // 2)
        self.embed_norm = nn.LayerNorm(dim)
        self.blocks = nn.ModuleList(Block(dim, heads, sr, p) for p in drop_paths)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x)
        n, c, h, w = x.shape
        x = self.embed_norm(x.flatten(2).transpose(1, 2))
        for block in self.blocks:
            x = block(x, h, w)
        return self.norm(x).transpose(1, 2).reshape(n, c, h, w)


class MiT(Encoder):
    dilatable = False  # patch embeddings and attention reductions are tied to the strides

    def __init__(self, variant: str, drop_path: float = 0.1):
        super().__init__()
        dims, depths = VARIANTS[variant]
        total = sum(depths)
        rates = [drop_path * i / max(total - 1, 1) for i in range(total)]  # growing with depth
        stages, cin, start = [], 3, 0
        for i, (dim, depth) in enumerate(zip(dims, depths)):
            stages.append(Stage(cin, dim, depth, HEADS[i], SR_RATIOS[i], i == 0, rates[start:start + depth]))
            cin, start = dim, start + depth
        self.stages = nn.ModuleList(stages)
        self.out_channels, self.reductions = list(dims), [4, 8, 16, 32]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = []
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        return features


MITS = {name: EncoderSpec(partial(MiT, name), about=f"Mix Transformer {name[-2:].upper()} (SegFormer)")
        for name in VARIANTS}
