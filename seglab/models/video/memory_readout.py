"""The memory read-out: what the current frame's features say about the object, given memory frames.

Each memory frame is (keys [B, K, h, w], mask [B, 1, h, w]): L2-normalised key features of the frame and
the object's mask probability on the same grid. The current frame's keys (query, [B or 1, K, H, W]) are
compared with every memory position by cosine similarity (STM / XMem-lite); per memory frame, three maps
on the query grid:
- the attention read-out: softmax over memory positions of `scale * cosine`, weighted sum of the mask
  (the memory's value), i.e. "how much the positions that look like this one were the object";
- the best match among the memory's object positions (cosine, pushed down by 2 where the mask is 0);
- the best match among its background positions (likewise where the mask is 1).
"""

from __future__ import annotations

import torch

MAPS_PER_FRAME = 3
EXCLUDED = 2.0  # subtracted from a cosine (in [-1, 1]) to leave a position out of a max


def read_memory(query: torch.Tensor, keys: torch.Tensor, masks: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """query [Bq, K, H, W] (Bq = 1 or B), keys [B, M, K, h, w], masks [B, M, 1, h, w] -> [B, 3 M, H, W]."""
    batch, frames = keys.shape[:2]
    height, width = query.shape[-2:]
    q = query.flatten(2).transpose(1, 2).expand(batch, -1, -1)  # [B, N, K]
    maps = []
    for m in range(frames):
        k = keys[:, m].flatten(2)  # [B, K, n]
        v = masks[:, m].flatten(2).to(q.dtype)  # [B, 1, n]
        cosine = torch.bmm(q, k)  # [B, N, n]
        attention = torch.softmax(cosine * scale, dim=-1)
        read = torch.bmm(attention, v.transpose(1, 2))  # [B, N, 1]
        best_object = (cosine - EXCLUDED * (1 - v)).amax(dim=-1, keepdim=True)
        best_background = (cosine - EXCLUDED * v).amax(dim=-1, keepdim=True)
        maps.append(torch.cat([read, best_object, best_background], dim=-1))
    out = torch.cat(maps, dim=-1)  # [B, N, 3 M]
    return out.transpose(1, 2).reshape(batch, MAPS_PER_FRAME * frames, height, width)
