"""seglab's memory tracker: the click model (seglab/models/prompt/click_seg.py) with a memory of two frames.

`embed(x)` is the click model's (encoder + neck: `s8`, `s4`) plus `key`: L2-normalised 1x1-projected
stride-8 features, computed once per frame and used both as the query (this frame) and, pooled to
stride 8 * `memory_pool`, as a memory key (when this frame becomes a memory).

`decode(features, points, labels, boxes, prev_logits, memory)`: without `memory` it is exactly the click
model's decode (a prompted frame). With `memory` = {"keys": [B, M, K, h, w], "masks": [B, M, 1, h, w]}
(M = 2: the anchor, i.e. the object's prompted frame kept for the clip, and the previous frame, each with
the object's mask probability; see `memory_entry`), the read-out (memory_readout.py: attention read-out
and best object / background matches per memory frame) and the previous mask on the stride-8 grid go
through two convs and are added to the prompt features before the click model's mixing blocks. The last
of those convs starts at zero, so an untrained memory path leaves the click model's answer unchanged:
training starts from what the click model knows (`click.*` weights load from a click checkpoint).
Every constructor argument is a plain value, so checkpoints rebuild it.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from seglab.models.prompt.click_maps import prompt_maps
from seglab.models.prompt.click_seg import OUTPUT_STRIDE, ClickSeg, conv_bn_relu
from seglab.models.video.memory_readout import MAPS_PER_FRAME, read_memory

MEMORY_FRAMES = 2  # the anchor (prompted) frame and the previous frame
READOUT_CHANNELS = MAPS_PER_FRAME * MEMORY_FRAMES + 1  # + the previous mask
INITIAL_SCALE = 20.0  # softmax temperature of the cosine affinity (learned, as its log)


class MemoryTracker(nn.Module):
    """The click model + a two-frame memory (anchor and previous frame); `num_classes` is not used."""

    default_encoder = "efficientnet_lite0"

    def __init__(self, num_classes: int = 1, encoder: str = "efficientnet_lite0", encoder_weights: str = "",
                 channels: int = 64, click_radius: float = 5.0, key_channels: int = 32, memory_pool: int = 2):
        super().__init__()
        self.click = ClickSeg(num_classes, encoder, encoder_weights, channels, click_radius)
        self.normalization = self.click.normalization
        self.memory_pool = int(memory_pool)
        self.key = nn.Conv2d(channels, key_channels, 1)
        self.log_scale = nn.Parameter(torch.tensor(math.log(INITIAL_SCALE)))
        self.memory_in = nn.Sequential(conv_bn_relu(READOUT_CHANNELS, channels),
                                       nn.Conv2d(channels, channels, 3, padding=1))
        nn.init.zeros_(self.memory_in[-1].weight)
        nn.init.zeros_(self.memory_in[-1].bias)

    @property
    def encoder(self) -> nn.Module:
        """The click model's encoder (a property, so the state dict holds it once, under `click.`)."""
        return self.click.encoder

    @property
    def multiple(self) -> int:
        return self.click.multiple

    def embed(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        features = self.click.embed(x)
        return {**features, "key": F.normalize(self.key(features["s8"]), dim=1)}

    def memory_entry(self, features: dict[str, torch.Tensor], mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One frame as memory: (keys [1 or B, K, h, w], mask [B, 1, h, w]) on the memory grid, from the frame's
        features and the object's mask probability [B, 1, any size] over the same (square) input."""
        keys = F.normalize(F.avg_pool2d(features["key"], self.memory_pool), dim=1)
        grid = F.interpolate(mask.float(), size=keys.shape[-2:], mode="area")
        return keys, grid.to(keys.dtype)

    def decode(self, features: dict[str, torch.Tensor], points: torch.Tensor | None, labels: torch.Tensor | None,
               boxes: torch.Tensor | None = None, prev_logits: torch.Tensor | None = None,
               memory: dict[str, torch.Tensor] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits [B, 4, H/4, W/4], predicted IoU [B, 4]), as the click model's decode."""
        if memory is None:
            return self.click.decode(features, points, labels, boxes, prev_logits)
        click = self.click
        s8, s4 = features["s8"], features["s4"]
        batch = memory["keys"].shape[0]
        if s8.shape[0] != batch:
            s8, s4 = s8.expand(batch, -1, -1, -1), s4.expand(batch, -1, -1, -1)
        maps = prompt_maps(points, labels, boxes, prev_logits, batch, tuple(s4.shape[-2:]), OUTPUT_STRIDE,
                           click.click_radius, s4.device).to(s4.dtype)
        readout = read_memory(features["key"], memory["keys"], memory["masks"], self.log_scale.exp())
        previous = F.interpolate(maps[:, 2:3], size=s8.shape[-2:], mode="area")  # the previous-mask channel
        fine = click.prompt_fine(maps)
        x = click.mix(s8 + click.prompt_coarse(fine) + self.memory_in(torch.cat([readout, previous], dim=1)))
        pooled = torch.cat([x.mean(dim=(2, 3)), x.amax(dim=(2, 3))], dim=1)
        y = F.interpolate(click.up(x), size=s4.shape[-2:], mode="bilinear", align_corners=False)
        logits = click.mask_head(click.refine(y + s4 + fine))
        return logits, click.iou_head(pooled)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One frame tracked with itself as both memory frames (for shape checks and FLOP counts)."""
        features = self.embed(x)
        empty = torch.zeros(x.shape[0], 1, *features["s4"].shape[-2:], device=x.device, dtype=x.dtype)
        keys, masks = self.memory_entry(features, empty)
        memory = {"keys": torch.stack([keys, keys], dim=1), "masks": torch.stack([masks, masks], dim=1)}
        return self.decode(features, None, None, None, empty, memory)
