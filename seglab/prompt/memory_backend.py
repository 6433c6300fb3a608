"""seglab's memory tracker (seglab/models/video/memory_tracker.py) as a promptable backend with a memory.

It is a click-model backend (seglab/prompt/click_backend.py: the same square frame, `embed` once per
frame, `decode` for prompts, which is the click model's decode) with what a memory propagator needs on
top, all on the square input frame:
- `memory_from_mask(embedding, mask)`: a frame's memory entry (keys, mask probability on the memory grid)
  from a bool mask at the frame's original size (a prompted frame's result);
- `decode_memory(embedding, points, labels, boxes, mask_input, memory)`: a decode that reads the memory;
  returns the full-size logits, scores, low-res logits and the frame's memory entry of the result.
It declares `video_propagator = "memory"` (seglab/video/propagator_registry.py), so `Tracker` uses it.
Checkpoints: task "video", `"backend": "video_memory"` (written by `seglab train task=video`).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from seglab.engine.checkpoint import load_checkpoint, model_from_checkpoint
from seglab.prompt.backend import LOW_RES, ImageEmbedding, check_prompts
from seglab.prompt.click_backend import SINGLE, ClickBackend

MASK_LOGIT = 10.0  # a given bool mask as logits (+10 inside, -10 outside)


class MemoryBackend(ClickBackend):
    video_propagator = "memory"

    def square_mask(self, embedding: ImageEmbedding, mask: np.ndarray) -> torch.Tensor:
        """bool [H, W] at the original size -> float [1, 1, S, S] on the square input (resized, zero padded)."""
        h, w = embedding.input_size
        m = torch.from_numpy(np.ascontiguousarray(mask, np.float32)).to(self.device)[None, None]
        m = F.interpolate(m, size=(h, w), mode="bilinear", align_corners=False)
        return F.pad(m, (0, self.size - w, 0, self.size - h))

    def mask_logits(self, embedding: ImageEmbedding, mask: np.ndarray) -> torch.Tensor:
        """A bool mask as low-res logits [1, 1, 256, 256] (what `decode` returns and takes as mask_input)."""
        square = F.interpolate(self.square_mask(embedding, mask), size=(LOW_RES, LOW_RES), mode="area")
        return (square * 2 - 1) * MASK_LOGIT

    def memory_from_mask(self, embedding: ImageEmbedding, mask: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.inference_mode():
            return self.model.memory_entry(embedding.features, self.square_mask(embedding, mask))

    def decode_memory(self, embedding: ImageEmbedding, points, labels, boxes, mask_input, memory: dict):
        """B objects on one frame with their memories ({"keys": [B, 2, K, h, w], "masks": [B, 2, 1, h, w]})
        -> (logits [B, 1, H, W], scores [B, 1], low-res logits [B, 1, 256, 256], (keys, masks) of this frame)."""
        check_prompts(points, labels, boxes, mask_input)
        scale = embedding.extra["scale"]
        to = lambda t, dtype: None if t is None else t.to(self.device, dtype)
        points_in = None if points is None else (to(points, torch.float32) + 0.5) * scale
        boxes_in = None if boxes is None else to(boxes, torch.float32) * scale
        with torch.inference_mode():
            logits, iou = self.model.decode(embedding.features, points_in, to(labels, torch.int64), boxes_in,
                                            to(mask_input, torch.float32), memory)
            logits, scores = logits[:, SINGLE].float(), iou[:, SINGLE].float()
            entry = self.model.memory_entry(embedding.features, torch.sigmoid(logits))
        low_res = F.interpolate(logits, size=(LOW_RES, LOW_RES), mode="bilinear", align_corners=False)
        return self.full_size(logits, embedding), scores, low_res, entry


def backend_from_checkpoint(ckpt: dict, device: str = "auto", size: int | None = None) -> MemoryBackend:
    preprocess = ckpt["preprocess"]
    name = f"{ckpt['arch']['name']}_{ckpt['arch']['args'].get('encoder') or 'efficientnet_lite0'}"
    return MemoryBackend(model_from_checkpoint(ckpt), size or preprocess["size"], preprocess["mean"],
                         preprocess["std"], device, name)


def load(path: str | Path, device: str = "auto", size: int | None = None, **options) -> MemoryBackend:
    """BACKENDS["video_memory"]: a seglab memory-tracker checkpoint (task "video") -> its backend."""
    if options:
        raise TypeError(f"{path}: the memory-tracker loader takes device and size, not {', '.join(options)}")
    ckpt = load_checkpoint(path)
    if ckpt.get("task") != "video":
        raise ValueError(f"{path}: a seglab {ckpt.get('task', 'semantic')!r} checkpoint, not a memory tracker "
                         f"(task 'video')")
    return backend_from_checkpoint(ckpt, device, size)
