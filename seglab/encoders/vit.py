"""Vision Transformer on 16x16 patches (torchvision's modules and key names) as a SETR encoder.

Returns the tokens of four evenly spaced layers (the last one after the final LayerNorm), each
reshaped to a map at 1/16. The position embeddings, learned for `image_size`, are interpolated
(bicubic) to the patch grid of every input, so any input size works.
"""

from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F
import torchvision

from seglab.encoders.base import Encoder, EncoderSpec, TorchvisionWeights

def attention(mha: torch.nn.MultiheadAttention, x: torch.Tensor) -> torch.Tensor:
    """Self-attention with the parameters of torchvision's nn.MultiheadAttention, written out so that
    ONNX export keeps the batch and token counts dynamic (nn.MultiheadAttention's own export fixes them)."""
    n, heads = x.shape[0], mha.num_heads
    qkv = F.linear(x, mha.in_proj_weight, mha.in_proj_bias).reshape(n, -1, 3, heads, mha.head_dim)
    q, k, v = qkv.permute(2, 0, 3, 1, 4)
    weights = (q @ k.transpose(-2, -1) * mha.head_dim**-0.5).softmax(-1)
    weights = F.dropout(weights, mha.dropout, mha.training)
    return mha.out_proj((weights @ v).transpose(1, 2).reshape(n, -1, mha.embed_dim))


def block(layer: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """torchvision's EncoderBlock (pre-norm attention and MLP, each with a residual)."""
    x = x + layer.dropout(attention(layer.self_attention, layer.ln_1(x)))
    return x + layer.mlp(layer.ln_2(x))


VARIANTS = {  # width, layers, heads, MLP width
    "vit_tiny_16": (192, 12, 3, 768),
    "vit_small_16": (384, 12, 6, 1536),
    "vit_b_16": (768, 12, 12, 3072),
}


class ViT(Encoder):
    dilatable = False

    def __init__(self, variant: str, image_size: int = 224, patch: int = 16):
        super().__init__()
        dim, layers, heads, mlp = VARIANTS[variant]
        vit = torchvision.models.VisionTransformer(image_size, patch, layers, heads, dim, mlp)
        self.conv_proj, self.class_token, self.encoder = vit.conv_proj, vit.class_token, vit.encoder
        self.grid = image_size // patch
        self.taps = [layers * (i + 1) // 4 - 1 for i in range(4)]
        self.out_channels, self.reductions = [dim] * 4, [patch] * 4

    def position_embedding(self, h: int, w: int) -> torch.Tensor:
        pos = self.encoder.pos_embedding
        grid = pos[:, 1:].reshape(1, self.grid, self.grid, -1).permute(0, 3, 1, 2)
        grid = F.interpolate(grid, size=(h, w), mode="bicubic", align_corners=False)
        return torch.cat([pos[:, :1], grid.flatten(2).transpose(1, 2)], 1)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.conv_proj(x)
        n, dim, h, w = x.shape
        tokens = torch.cat([self.class_token.expand(n, -1, -1), x.flatten(2).transpose(1, 2)], 1)
        tokens = self.encoder.dropout(tokens + self.position_embedding(h, w))
        features = []
        for i, layer in enumerate(self.encoder.layers):
            tokens = block(layer, tokens)
            if i in self.taps:
                out = self.encoder.ln(tokens) if i == self.taps[-1] else tokens
                features.append(out[:, 1:].transpose(1, 2).reshape(n, dim, h, w))
        return features


VITS = {
    "vit_tiny_16": EncoderSpec(partial(ViT, "vit_tiny_16"), about="ViT-Tiny/16 (no declared weights)"),
    "vit_small_16": EncoderSpec(partial(ViT, "vit_small_16"), about="ViT-Small/16 (no declared weights)"),
    "vit_b_16": EncoderSpec(partial(ViT, "vit_b_16"), TorchvisionWeights("ViT_B_16_Weights.IMAGENET1K_V1"),
                            about="torchvision ViT-B/16"),
}
