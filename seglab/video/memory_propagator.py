"""seglab's memory tracker as a video propagator (`video_propagator = "memory"`, seglab/prompt/memory_backend.py).

Per object, `state.memory["objects"][obj_id]` keeps
- `anchors`: {frame: (keys, mask)} of every frame the object was prompted on (its result there), for the clip;
- `previous`: (frame, keys, mask) of the last frame it was tracked on.
Each step decodes all objects of the frame in one batch with a memory of two frames: the anchor (the
object's nearest prompted frame behind the current one in the propagation's direction, so a correction
on frame 40 anchors frames 41... from there; the nearest prompted frame when none is behind) and the frame
before (the stored previous entry, the anchor when that frame was a prompted one, else that frame
embedded again with its stored mask). As in the re-prompt baseline the decode also gets the previous
mask's box, its innermost point and its low-resolution logits. An object whose mask became empty is still
looked for (its anchor may find it again). Memory is bounded: one entry per prompt plus one per object.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from seglab.prompt.backend import MASK_THRESHOLD
from seglab.video.prompts import from_mask
from seglab.video.propagators import Track

NO_BOX = (0.0, 0.0, -1.0, -1.0)  # an empty box (no cell inside): the object had no mask on the frame before


@dataclass
class ObjectMemory:
    anchors: dict[int, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)
    previous: tuple[int, torch.Tensor, torch.Tensor] | None = None


class MemoryPropagator:
    follows_lost_objects = True

    def __init__(self, backend):
        self.backend = backend

    # --- the tracker's hooks --------------------------------------------------------------------------
    def prompted(self, state, frame: int, obj_id: int, track: Track) -> None:
        """The prompted frame's result becomes an anchor (and the latest memory) of the object."""
        bank = self._bank(state, obj_id)
        keys, mask = self.backend.memory_from_mask(self._embedding(state, frame), track.mask)
        bank.anchors[frame] = (keys, mask)
        bank.previous = (frame, keys, mask)

    def step(self, state, frame: int, tracks: dict[int, Track], embedding) -> dict[int, Track]:
        reverse = bool(getattr(state, "reverse", False))
        before = frame + 1 if reverse else frame - 1
        ids = [o for o in tracks if self._bank(state, o).anchors]
        results = {o: Track(np.zeros(state.size, bool), None, 0.0) for o in tracks if o not in ids}
        if not ids:
            return results
        points, labels, boxes, mask_inputs, keys, masks = [], [], [], [], [], []
        for obj_id in ids:
            bank, track = self._bank(state, obj_id), tracks[obj_id]
            anchor = bank.anchors[_anchor_frame(bank.anchors, frame, reverse)]
            previous = self._previous(state, bank, before, track)
            keys.append(torch.cat([anchor[0], previous[0]]))
            masks.append(torch.cat([anchor[1], previous[1]]))
            prompt = from_mask(track.mask)
            points.append(prompt.points if prompt is not None else np.zeros((1, 2), np.float32))
            labels.append(prompt.labels if prompt is not None else np.full(1, -1, np.int64))
            boxes.append(prompt.box if prompt is not None else np.array(NO_BOX, np.float32))
            low = track.low_res if track.low_res is not None else self.backend.mask_logits(embedding, track.mask)
            mask_inputs.append(low.to(self.backend.device))
        device = self.backend.device
        memory = {"keys": torch.stack(keys), "masks": torch.stack(masks)}
        logits, scores, low_res, (frame_keys, frame_masks) = self.backend.decode_memory(
            embedding, torch.from_numpy(np.stack(points)).to(device), torch.from_numpy(np.stack(labels)).to(device),
            torch.from_numpy(np.stack(boxes)).to(device), torch.cat(mask_inputs), memory)
        for i, obj_id in enumerate(ids):
            self._bank(state, obj_id).previous = (frame, frame_keys[:1], frame_masks[i : i + 1])
            results[obj_id] = Track((logits[i, 0] > MASK_THRESHOLD).cpu().numpy(), low_res[i : i + 1], float(scores[i, 0]))
        return results

    # --- the memory --------------------------------------------------------------------------------------
    def _bank(self, state, obj_id: int) -> ObjectMemory:
        """The object's memory, without the objects removed and the prompts replaced since."""
        objects = state.memory.setdefault("objects", {})
        for gone in set(objects) - set(state.obj_ids):
            del objects[gone]
        bank = objects.setdefault(obj_id, ObjectMemory())
        for f in [f for f in bank.anchors if obj_id not in state.prompts.get(f, {})]:
            del bank.anchors[f]
        return bank

    def _previous(self, state, bank: ObjectMemory, before: int, track: Track) -> tuple[torch.Tensor, torch.Tensor]:
        if bank.previous is not None and bank.previous[0] == before:
            return bank.previous[1:]
        if before in bank.anchors:
            return bank.anchors[before]
        with torch.inference_mode():  # a propagation that starts on a frame nobody was tracked to just before
            embedding = self.backend.embed(state.frames[before])
        return self.backend.memory_from_mask(embedding, track.mask)

    def _embedding(self, state, frame: int):
        if state.embedded is None or state.embedded[0] != frame:
            with torch.inference_mode():
                state.embedded = (frame, self.backend.embed(state.frames[frame]))
        return state.embedded[1]


def _anchor_frame(anchors: dict, frame: int, reverse: bool) -> int:
    """The nearest prompted frame behind `frame` in the propagation's direction, else the nearest one."""
    behind = [f for f in anchors if (f > frame if reverse else f < frame)]
    pool = behind or list(anchors)
    return min(pool, key=lambda f: abs(f - frame))
