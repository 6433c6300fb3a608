"""SAM 2's memory as a seglab video propagator: official SAM 2 / 2.1 checkpoints through `Tracker`.

`Tracker("sam2.1_hiera_tiny.pt")` gets this propagator because the SAM 2 backend declares
`video_propagator = "sam2_memory"` (seglab/video/propagator_registry.py). It drives SAM2Base's own
building blocks the way sam2's SAM2VideoPredictor does, but frame by frame on seglab's streamed frames
(the predictor loads every frame of the clip up front):

- each frame is encoded once (the backend's `embed`, whose embedding carries the backbone output);
- every object is decoded by `track_step` with the memory bank kept in `state.memory`: per object, the
  prompted frames as conditioning memories (kept for the clip), the last `num_maskmem - 1` tracked
  frames as non-conditioning memories, and the object pointers of the last
  `min(frames, max_obj_ptrs_in_encoder) - 1` tracked frames (256 numbers each); older memories are
  dropped as propagation moves on, so the bank is bounded whatever the clip's length;
- each output is encoded into memory by the memory encoder (bfloat16 features, as sam2 stores them).

Prompts follow `add_new_points_or_box` / `add_new_mask`: a box enters as two corner points (labels 2, 3)
before the clicks; on a frame the object was not yet tracked on, the prompt is decoded without memory
(an initial conditioning frame), on a tracked frame it is a correction decoded with the memory and the
frame's previous logits; either way the frame becomes a conditioning memory (sam2's
`add_all_frames_to_correct_as_cond=True`: in seglab a prompted frame's result stands). Its memory is
encoded from the binarised mask, as `build_sam2_video_predictor` configures the model. The prompted
frame's result in the tracker's state is SAM 2's own (this propagator writes it there).
Objects are tracked one by one (batch 1, as sam2 1.1 does) and are followed after they vanish: SAM 2
predicts whether an object is present and may find it again.

Differences from SAM2VideoPredictor, by design: frames are resized by the image backend's transform
(torchvision's antialiased resize of the float image, as SAM2ImagePredictor), not by PIL on the uint8
frame; small holes are filled with scipy (8-connected background regions of at most `fill_hole_area`
low-resolution pixels, as sam2's CUDA kernel, which sam2 skips where it is not built); a re-propagation
after a correction sees only the memories still in the bank (sam2 keeps every frame's); `clear=True`
prompts start without the frame's previous logits; an object is followed only from a frame it has a
result on (sam2 also tracks it before its first prompt).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pycocotools.mask as mask_utils
import torch
import torch.nn.functional as F
from scipy import ndimage

from seglab.video.prompts import Prompt
from seglab.video.propagators import Track

FILL_HOLE_AREA = 8  # build_sam2_video_predictor's fill_hole_area
HOLE_SCORE = 0.1  # the logit a filled hole gets (sam2's)
LOGIT_CLAMP = 32.0  # previous logits fed back with a correction are clamped (sam2's)
BOX_LABELS = (2, 3)
# what build_sam2_video_predictor sets on the model beyond the image model's config
VIDEO_MODEL_SETTINGS = {"binarize_mask_from_pts_for_mem_enc": True}


def fill_holes(logits: torch.Tensor, max_area: int) -> torch.Tensor:
    """Background regions (logit <= 0, 8-connected) of at most `max_area` pixels become `HOLE_SCORE`."""
    if max_area <= 0:
        return logits
    background = (logits <= 0).cpu().numpy()
    holes = np.zeros_like(background)
    for index in np.ndindex(background.shape[:-2]):
        labels, _ = ndimage.label(background[index], structure=np.ones((3, 3)))
        areas = np.bincount(labels.ravel())
        holes[index] = (labels > 0) & (areas[labels] <= max_area)
    return torch.where(torch.from_numpy(holes).to(logits.device), HOLE_SCORE, logits)


@dataclass
class ObjectMemory:
    """One object's memory bank: SAM 2 outputs (maskmem_features, maskmem_pos_enc, pred_masks, obj_ptr,
    object_score_logits) of its prompted frames (`cond`) and of its last tracked frames (`recent`)."""

    cond: dict[int, dict] = field(default_factory=dict)
    recent: dict[int, dict] = field(default_factory=dict)
    tracked: dict[int, bool] = field(default_factory=dict)  # frame -> tracked in reverse (sam2's frames_tracked)
    prompts: dict[int, Prompt] = field(default_factory=dict)  # the prompt each conditioning frame was decoded from


class Sam2MemoryPropagator:
    follows_lost_objects = True  # an object SAM 2 sees as absent is still looked for on the next frames

    def __init__(self, backend, fill_hole_area: int = FILL_HOLE_AREA):
        self.backend, self.model = backend, backend.model
        for name, value in VIDEO_MODEL_SETTINGS.items():  # used by the memory encoder only, never by `decode`
            setattr(self.model, name, value)
        self.fill_hole_area = fill_hole_area
        stride = getattr(self.model, "memory_temporal_stride_for_eval", 1)
        self.spatial_reach = max(1, (self.model.num_maskmem - 2) * stride + 1)  # farthest memory frame read

    # --- the tracker's hooks --------------------------------------------------------------------------
    def prompted(self, state, frame: int, obj_id: int, track: Track) -> None:
        """Decode the prompt as SAM 2's video predictor does, store it as a conditioning memory and as the
        frame's result in `state`."""
        bank = self._bank(state, obj_id)
        prompt = state.prompts[frame][obj_id]
        backbone = self._backbone(state, frame)
        points, masks = self._inputs(prompt, state.size)
        previous = None if masks is not None else _previous_logits(bank, frame, prompt)
        with torch.inference_mode():
            out = self._track(state, bank, frame, backbone, frame not in bank.tracked, points, masks,
                              bank.tracked.get(frame, False), False, previous)
            high_res = F.interpolate(out["pred_masks"], size=(self.model.image_size,) * 2, mode="bilinear",
                                     align_corners=False)
            features, pos_enc = self.model._encode_new_memory(backbone[0], backbone[2], high_res,
                                                              out["object_score_logits"], is_mask_from_pts=True)
        out["maskmem_features"], out["maskmem_pos_enc"] = features.to(torch.bfloat16), self._pos_enc(state, pos_enc)
        bank.cond[frame], bank.prompts[frame] = out, prompt
        bank.recent.pop(frame, None)
        result = self._as_track(out, state.size)
        state.prompt_tracks.setdefault(frame, {})[obj_id] = result
        state.results.setdefault(frame, {})[obj_id] = mask_utils.encode(np.asfortranarray(result.mask.astype(np.uint8)))

    def step(self, state, frame: int, tracks: dict[int, Track], embedding) -> dict[int, Track]:
        reverse = bool(getattr(state, "reverse", False))
        backbone = embedding.extra["backbone"]
        results = {}
        for obj_id in tracks:
            bank = state.memory.get("objects", {}).get(obj_id)
            if bank is None or not bank.cond:
                results[obj_id] = Track(np.zeros(state.size, bool), None, 0.0)
                continue
            before, after = (frame + 1, frame - 1) if reverse else (frame - 1, frame + 1)
            if before in bank.cond:  # propagation went through that prompted frame (sam2 marks it tracked)
                bank.tracked.setdefault(before, reverse)
            self._forget_far(state, bank, frame, reverse)  # a pass in another place or direction than the last
            with torch.inference_mode():
                out = self._track(state, bank, frame, backbone, False, None, None, reverse, True, None)
            out["maskmem_features"] = out["maskmem_features"].to(torch.bfloat16)
            out["maskmem_pos_enc"] = self._pos_enc(state, out["maskmem_pos_enc"])
            bank.recent[frame], bank.tracked[frame] = out, reverse
            self._forget_far(state, bank, after, reverse)  # what the next frame no longer reads
            results[obj_id] = self._as_track(out, state.size)
        return results

    # --- SAM 2 ------------------------------------------------------------------------------------------
    def _track(self, state, bank: ObjectMemory, frame: int, backbone, init: bool, points, masks, reverse: bool,
               encode: bool, previous) -> dict:
        """One object on one frame: track_step with the object's memory -> sam2's compact output."""
        vision, vision_pos, sizes = backbone
        memory = {"cond_frame_outputs": bank.cond, "non_cond_frame_outputs": self._readable(bank, frame, reverse)}
        out = self.model.track_step(frame_idx=frame, is_init_cond_frame=init, current_vision_feats=vision,
                                    current_vision_pos_embeds=vision_pos, feat_sizes=sizes, point_inputs=points,
                                    mask_inputs=masks, output_dict=memory, num_frames=len(state.frames),
                                    track_in_reverse=reverse, run_mem_encoder=encode, prev_sam_mask_logits=previous)
        return {"maskmem_features": out["maskmem_features"], "maskmem_pos_enc": out["maskmem_pos_enc"],
                "pred_masks": fill_holes(out["pred_masks"], self.fill_hole_area), "obj_ptr": out["obj_ptr"],
                "object_score_logits": out["object_score_logits"]}

    def _inputs(self, prompt: Prompt, size: tuple[int, int]):
        """(point_inputs, mask_inputs) for track_step, as add_new_points_or_box / add_new_mask make them."""
        device, side = self.backend.device, self.model.image_size
        if prompt.mask is not None:  # a mask prompt is the mask (the tracker's rule too)
            mask = torch.from_numpy(prompt.mask).to(device)[None, None].float()
            if mask.shape[-2:] != (side, side):
                mask = F.interpolate(mask, size=(side, side), mode="bilinear", align_corners=False, antialias=True)
                mask = (mask >= 0.5).float()
            return None, mask
        coords, labels = [], []
        if prompt.box is not None:
            coords.append(prompt.box.reshape(2, 2))
            labels.append(np.array(BOX_LABELS))
        if prompt.points is not None:
            coords.append(prompt.points)
            labels.append(prompt.labels)
        height, width = size
        xy = torch.from_numpy(np.concatenate(coords).astype(np.float32))[None] / torch.tensor([width, height]) * side
        kinds = torch.from_numpy(np.concatenate(labels).astype(np.int32))[None]
        return {"point_coords": xy.to(device), "point_labels": kinds.to(device)}, None

    def _as_track(self, out: dict, size: tuple[int, int]) -> Track:
        logits = F.interpolate(out["pred_masks"], size=size, mode="bilinear", align_corners=False)
        present = torch.sigmoid(out["object_score_logits"].float()).item()
        return Track((logits[0, 0] > 0).cpu().numpy(), out["pred_masks"].clamp(-LOGIT_CLAMP, LOGIT_CLAMP), present)

    # --- the memory bank --------------------------------------------------------------------------------
    def _bank(self, state, obj_id: int) -> ObjectMemory:
        """The object's memory, without the objects and prompts removed from the tracker since."""
        objects = state.memory.setdefault("objects", {})
        for gone in set(objects) - set(state.obj_ids):
            del objects[gone]
        bank = objects.setdefault(obj_id, ObjectMemory())
        stale = [f for f in bank.cond if obj_id not in state.prompts.get(f, {})]
        for f in stale:
            del bank.cond[f], bank.prompts[f]
        if stale and not bank.cond:
            bank = objects[obj_id] = ObjectMemory()
        return bank

    def _pointer_reach(self, state) -> int:
        if not self.model.use_obj_ptrs_in_encoder:
            return self.spatial_reach
        return max(self.spatial_reach, min(len(state.frames), self.model.max_obj_ptrs_in_encoder) - 1)

    def _forget_far(self, state, bank: ObjectMemory, frame: int, reverse: bool) -> None:
        """Keep the non-conditioning memories SAM 2 can read on `frame` and the frames after it: spatial
        features within `spatial_reach` behind, object pointers within the pointer reach."""
        sign, reach = (-1 if reverse else 1), self._pointer_reach(state)
        for f in list(bank.recent):
            behind = (frame - f) * sign
            if not 1 <= behind <= reach:
                del bank.recent[f]
            elif behind > self.spatial_reach and bank.recent[f]["maskmem_features"] is not None:
                bank.recent[f] = {**bank.recent[f], "maskmem_features": None, "pred_masks": None}

    def _readable(self, bank: ObjectMemory, frame: int, reverse: bool) -> dict[int, dict]:
        """Non-conditioning memories track_step may read on `frame`: a pointer-only memory is left out where
        spatial features would be read."""
        sign = -1 if reverse else 1
        return {f: out for f, out in bank.recent.items()
                if out["maskmem_features"] is not None or not 1 <= (frame - f) * sign <= self.spatial_reach}

    def _pos_enc(self, state, pos_enc: list[torch.Tensor]) -> list[torch.Tensor]:
        """The memory's positional encoding is the same on every frame: one copy per clip (as sam2)."""
        if "maskmem_pos_enc" not in state.memory:
            state.memory["maskmem_pos_enc"] = [p[0:1].clone() for p in pos_enc]
        return state.memory["maskmem_pos_enc"]

    def _backbone(self, state, frame: int):
        if state.embedded is None or state.embedded[0] != frame:
            with torch.inference_mode():
                state.embedded = (frame, self.backend.embed(state.frames[frame]))
        return state.embedded[1].extra["backbone"]


def _previous_logits(bank: ObjectMemory, frame: int, prompt: Prompt) -> torch.Tensor | None:
    """The frame's last logits, fed with new clicks (sam2's prev_sam_mask_logits), unless the clicks replace the
    frame's earlier prompt or its output has left the bank."""
    earlier = bank.cond.get(frame) or bank.recent.get(frame)
    if earlier is None or earlier["pred_masks"] is None or not _continues(bank.prompts.get(frame), prompt):
        return None
    return earlier["pred_masks"].clamp(-LOGIT_CLAMP, LOGIT_CLAMP)


def _continues(earlier: Prompt | None, prompt: Prompt) -> bool:
    """Whether `prompt` adds clicks to `earlier` (seglab's default), rather than replacing it (clear=True)."""
    if earlier is None:
        return True
    if earlier.mask is not None or (earlier.box is None) != (prompt.box is None):
        return False
    if earlier.box is not None and not np.array_equal(earlier.box, prompt.box):
        return False
    if earlier.points is None:
        return True
    n = len(earlier.points)
    return prompt.points is not None and len(prompt.points) >= n and np.array_equal(prompt.points[:n], earlier.points)
