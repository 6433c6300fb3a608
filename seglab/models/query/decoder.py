"""The transformer decoder of the query model: learned queries cross-attend to the pixel decoder's levels.

Per layer (Mask2Former's order, post-norm): masked cross-attention from the queries to one level
(coarse to fine, round robin), self-attention among the queries, a feed-forward block. Before the first
layer and after each one the shared heads read every query:
    class logits [N, Q, K + 1] (the last one is "no object"),
    mask logits  [N, Q, h, w] = mask embedding (an MLP of the query) . per-pixel embeddings.
A layer's cross-attention only sees the pixels where the previous prediction's mask is >= 0.5
(Mask2Former's masked attention; a query whose mask is empty sees every pixel), which makes the few
CPU epochs count. Attention is written with matmuls, so it traces to ONNX with dynamic sizes.

`located=True` (things: many small look-alike objects, e.g. nuclei): appearance alone cannot tell one
query's nucleus from its neighbours', so each query also has a place. Its mask logits get a Gaussian
log-prior -((x - cx) / sx)^2 - ((y - cy) / sy)^2 on the normalised pixel grid: the dot product with
the fixed coordinate channels (x, y, x^2, y^2, 1), written in centre and spread for conditioning. The
centre starts at a learned reference point per query (a regular grid over the image) and the
location head moves it; the spread starts at `initial_spread` of the image (about an object's radius:
`query_spread=`) and moves smoothly within LOG_SPREAD; cross-attention values carry the sine
position code, so what a query attends to tells it where it is (Anchor / DAB-DETR's reference
points; CondInst's relative coordinates). A session-6 DSB2018 run without it ended with 5-8k-pixel
blob masks and nuclei PQ 0; with it
(session 8, 3 epochs) still PQ 0: the spreads started at the whole image and had not shrunk (docs/panoptic.md),
hence the grid and the object-sized start; session 10 (2 epochs): every spread still went to its upper
bound, so the set loss rewards wide masks (docs/panoptic.md has the likely cause: the loss points).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from seglab.models.query.pixel_decoder import sine_positions


class Attention(nn.Module):
    """Multi-head attention; `blocked` bool [N, Q, L] (True: query q may not look at key l)."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        if dim % heads:
            raise ValueError(f"the query width {dim} must be divisible by the number of heads {heads}")
        self.heads, self.scale = heads, (dim // heads) ** -0.5
        self.q, self.k, self.v, self.out = (nn.Linear(dim, dim) for _ in range(4))

    def split(self, x: torch.Tensor) -> torch.Tensor:
        n, length, dim = x.shape
        return x.reshape(n, length, self.heads, dim // self.heads).transpose(1, 2)

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                blocked: torch.Tensor | None = None) -> torch.Tensor:
        q, k, v = self.split(self.q(query)), self.split(self.k(key)), self.split(self.v(value))
        scores = (q * self.scale) @ k.transpose(-1, -2)  # [N, heads, Q, L]
        if blocked is not None:
            scores = scores.masked_fill(blocked[:, None], float("-inf"))
        out = scores.softmax(-1) @ v
        return self.out(out.transpose(1, 2).flatten(2))


class DecoderLayer(nn.Module):
    def __init__(self, dim: int, heads: int, ffn: int):
        super().__init__()
        self.cross, self.self_attn = Attention(dim, heads), Attention(dim, heads)
        self.ffn = nn.Sequential(nn.Linear(dim, ffn), nn.ReLU(inplace=True), nn.Linear(ffn, dim))
        self.norms = nn.ModuleList(nn.LayerNorm(dim) for _ in range(3))

    def forward(self, queries, query_pos, memory, memory_pos, values, blocked):
        queries = self.norms[0](queries + self.cross(queries + query_pos, memory + memory_pos, values, blocked))
        q = queries + query_pos
        queries = self.norms[1](queries + self.self_attn(q, q, queries))
        return self.norms[2](queries + self.ffn(queries))


class MLP(nn.Sequential):
    def __init__(self, dim: int, out: int, layers: int = 3):
        parts = []
        for i in range(layers):
            parts.append(nn.Linear(dim, out if i == layers - 1 else dim))
            if i < layers - 1:
                parts.append(nn.ReLU(inplace=True))
        super().__init__(*parts)


def grid(pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel centres of a map [N, C, h, w], normalised to 0..1: (x [N, 1, 1, w], y [N, 1, h, 1]).
    From cumulative sums of ones, so an exported graph keeps h and w dynamic."""
    ones = torch.ones_like(pixels[:, :1])
    x, y = ones[:, :, :1].cumsum(3), ones[:, :, :, :1].cumsum(2)
    return (x - 0.5) / x[..., -1:], (y - 0.5) / y[:, :, -1:]


def reference_grid(count: int) -> torch.Tensor:
    """`count` points (x, y) in 0..1 on a regular grid, row by row: the queries' starting places, so that
    every part of the image has a query nearby (ceil(sqrt(count)) per row, cell centres)."""
    side = math.ceil(math.sqrt(count))
    steps = (torch.arange(side, dtype=torch.float32) + 0.5) / side
    y, x = torch.meshgrid(steps, steps, indexing="ij")
    return torch.stack([x.flatten(), y.flatten()], 1)[:count]


LOG_SPREAD = (-7.0, 1.0)  # a query's spread (sx, sy), as a fraction of the image: e^-7 .. e^1
# reached smoothly (a sigmoid of the location head's output, no clamp): a clamped spread that hit e^1 had no
# gradient left (session 10). The whole range stays open whatever the start: a stuff query (background) needs e^1.


class QueryDecoder(nn.Module):
    """(per-pixel embeddings, levels coarse to fine) -> [(class logits, mask logits)] before and after each layer."""

    def __init__(self, num_classes: int, num_queries: int, dim: int, mask_dim: int, layers: int, heads: int,
                 ffn: int, levels: int, masked_attention: bool = True, located: bool = False,
                 initial_spread: float = 1.0):
        super().__init__()
        self.masked_attention, self.located = masked_attention, located
        self.query_feat = nn.Embedding(num_queries, dim)  # the queries' content
        self.query_pos = nn.Embedding(num_queries, dim)  # and their learned position code
        self.level_embed = nn.Embedding(levels, dim)
        self.layers = nn.ModuleList(DecoderLayer(dim, heads, ffn) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)
        self.class_head = nn.Linear(dim, num_classes + 1)
        self.mask_head = MLP(dim, mask_dim)
        if located:
            if not (initial_spread > 0 and LOG_SPREAD[0] <= math.log(initial_spread) <= LOG_SPREAD[1]):
                raise ValueError(f"the queries' initial spread {initial_spread} is outside e^{LOG_SPREAD[0]:g} .. "
                                 f"e^{LOG_SPREAD[1]:g} of the image")
            self.reference = nn.Embedding(num_queries, 2)  # centres before the head moves them, as logits
            with torch.no_grad():
                self.reference.weight.copy_(torch.logit(reference_grid(num_queries)))
            self.location_head = MLP(dim, 4)  # (dcx, dcy) in logit space, (sx, sy) as logits over LOG_SPREAD
            nn.init.zeros_(self.location_head[-1].weight)
            with torch.no_grad():  # start: the reference point, spread `initial_spread` of the image
                self.location_head[-1].bias.copy_(torch.tensor([0.0, 0.0] + [self.spread_logit(initial_spread)] * 2))

    @staticmethod
    def spread_logit(spread: float) -> float:
        """The location head's output that means `spread` (inside LOG_SPREAD)."""
        low, high = LOG_SPREAD
        fraction = min(max((math.log(spread) - low) / (high - low), 1e-4), 1 - 1e-4)
        return math.log(fraction / (1 - fraction))

    def location_prior(self, out: torch.Tensor, pixels: torch.Tensor) -> torch.Tensor:
        """The Gaussian log-prior of each query's place on the pixel grid: [N, Q, h, w]."""
        shift, spread_logit = self.location_head(out).float().split(2, dim=-1)
        low, high = LOG_SPREAD
        log_spread = low + (high - low) * torch.sigmoid(spread_logit)
        centre = torch.sigmoid(self.reference.weight + shift)  # [N, Q, 2] (x, y)
        spread = log_spread.exp()
        x, y = grid(pixels.float())
        dx = (x - centre[..., 0, None, None]) / spread[..., 0, None, None]  # [N, Q, 1, w]
        dy = (y - centre[..., 1, None, None]) / spread[..., 1, None, None]  # [N, Q, h, 1]
        return -(dx * dx + dy * dy)

    def predict(self, queries: torch.Tensor, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.norm(queries)
        masks = torch.einsum("nqc,nchw->nqhw", self.mask_head(out), pixels)
        if self.located:
            masks = masks + self.location_prior(out, pixels).to(masks.dtype)
        return self.class_head(out), masks

    def blocked(self, mask_logits: torch.Tensor, level: torch.Tensor) -> torch.Tensor | None:
        """Where each query may not attend on `level`: its predicted mask resampled there is < 0.5."""
        if not self.masked_attention:
            return None
        small = F.interpolate(mask_logits.detach(), size=level.shape[-2:], mode="bilinear", align_corners=False)
        blocked = small.flatten(2) < 0  # sigmoid < 0.5
        return blocked & ~blocked.all(-1, keepdim=True)  # an empty mask: attend everywhere

    def forward(self, pixels: torch.Tensor, levels: list[torch.Tensor]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        n = pixels.shape[0]
        memory = [(f.flatten(2).transpose(1, 2) + self.level_embed.weight[i],
                   sine_positions(f).flatten(2).transpose(1, 2)) for i, f in enumerate(levels)]
        queries = self.query_feat.weight[None].expand(n, -1, -1)
        query_pos = self.query_pos.weight[None].expand(n, -1, -1)
        outputs = [self.predict(queries, pixels)]
        for i, layer in enumerate(self.layers):
            level = i % len(levels)
            keys, pos = memory[level]
            values = keys + pos if self.located else keys
            queries = layer(queries, query_pos, keys, pos, values, self.blocked(outputs[-1][1], levels[level]))
            outputs.append(self.predict(queries, pixels))
        return outputs
