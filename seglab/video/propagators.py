"""How a tracker carries objects from one frame to the next.

A propagator has `prompted(state, frame, obj_id, track)` (an object was prompted on a frame) and
`step(state, frame, tracks, embedding) -> {obj_id: Track}` (the objects on `frame`, given their tracks
on the frame before in the propagation's direction and the frame's embedding).

`RepromptPropagator` works with any promptable backend and keeps no memory: on every frame each object
is re-prompted with what the previous frame gave (the mask's box, its innermost point, and the
previous low-resolution logits as the mask input), all objects of a frame in one batched decode.
It is the baseline a tracker with memory must beat.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from seglab.prompt.backend import MASK_THRESHOLD
from seglab.video.prompts import from_mask


@dataclass
class Track:
    mask: np.ndarray  # bool [H, W]
    low_res: torch.Tensor | None = None  # [1, 1, 256, 256] logits of the model's last decode
    score: float = 1.0


class RepromptPropagator:
    def __init__(self, backend):
        self.backend = backend

    def prompted(self, state, frame: int, obj_id: int, track: Track) -> None:
        """Nothing to remember: the next frame is prompted from this track alone."""

    def step(self, state, frame: int, tracks: dict[int, Track], embedding) -> dict[int, Track]:
        ids, prompts = [], []
        for obj_id, track in tracks.items():
            prompt = from_mask(track.mask)
            if prompt is not None:
                ids.append(obj_id)
                prompts.append((prompt, track.low_res))
        out = {o: Track(np.zeros_like(t.mask), None, 0.0) for o, t in tracks.items() if o not in ids}
        if not ids:
            return out
        device = self.backend.device
        points = torch.from_numpy(np.stack([p.points for p, _ in prompts])).to(device)
        labels = torch.from_numpy(np.stack([p.labels for p, _ in prompts])).to(device)
        boxes = torch.from_numpy(np.stack([p.box for p, _ in prompts])).to(device)
        with_low_res = all(low is not None for _, low in prompts)
        mask_input = torch.cat([low for _, low in prompts]).to(device) if with_low_res else None
        with torch.inference_mode():
            logits, scores, low_res = self.backend.decode(embedding, points, labels, boxes, mask_input, False)
        for i, obj_id in enumerate(ids):
            out[obj_id] = Track((logits[i, 0] > MASK_THRESHOLD).cpu().numpy(), low_res[i : i + 1, :1].float(),
                                float(scores[i, 0]))
        return out
