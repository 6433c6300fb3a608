"""`Tracker`: prompt objects on any frame of a clip and follow them through it, with SAM 2's API shape.

    tracker = Tracker("runs/prompt/best.pt")          # a promptable checkpoint or backend (seglab.prompt)
    state = tracker.init_state("clip.mp4")            # or a folder of frames; frames are streamed
    frame, obj_ids, masks = tracker.add_prompt(state, frame=0, obj_id=1, points=[[x, y]], labels=[1])
    for frame, obj_ids, masks in tracker.propagate(state):   # masks bool [objects, H, W] at the frame's size
        ...
    tracker.add_prompt(state, frame=40, obj_id=1, points=[[x2, y2]], labels=[0])   # a correction
    for frame, obj_ids, masks in tracker.propagate(state, start=40): ...          # re-propagates from there

How an object moves from frame to frame is the model's `propagator` (seglab/video/propagators.py):
the default, for any promptable backend, re-prompts the model on every frame with the previous
frame's mask (its box, its innermost point and its low-resolution logits): the re-prompt baseline.
A model with a memory of earlier frames declares its own propagator (`model.video_propagator`).
Each frame's results are kept as COCO RLE (`state.results[frame][obj_id]`), never as full arrays.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pycocotools.mask as mask_utils
import torch

from seglab.prompt.backend import MASK_THRESHOLD, PromptBackend
from seglab.video.frames import FrameSource
from seglab.video.prompts import Prompt
from seglab.video.propagator_registry import propagator_for
from seglab.video.propagators import Track


@dataclass
class TrackingState:
    frames: FrameSource
    prompts: dict[int, dict[int, Prompt]] = field(default_factory=dict)  # frame -> object -> prompt
    prompt_tracks: dict[int, dict[int, Track]] = field(default_factory=dict)  # frame -> object -> its result
    results: dict[int, dict[int, dict]] = field(default_factory=dict)  # frame -> object -> RLE
    obj_ids: list[int] = field(default_factory=list)
    embedded: tuple[int, Any] | None = None  # (frame, embedding) of the last embedded frame
    memory: dict = field(default_factory=dict)  # the propagator's own per-clip state
    reverse: bool = False  # the direction of the propagation under way (a propagator with memory reads it)

    @property
    def size(self) -> tuple[int, int]:
        return self.frames.size()

    def mask(self, frame: int, obj_id: int) -> np.ndarray:
        """The stored result of one object on one frame (all False when there is none)."""
        rle = self.results.get(frame, {}).get(obj_id)
        return mask_utils.decode(rle).astype(bool) if rle is not None else np.zeros(self.size, bool)


class Tracker:
    def __init__(self, model: PromptBackend | str | Path, device: str = "auto", **options):
        if isinstance(model, (str, Path)):
            from seglab.prompt.predictor import load_backend

            model = load_backend(model, device=device, **options)
        if not isinstance(model, PromptBackend):
            raise TypeError(f"model must be a promptable backend (seglab.prompt) or a checkpoint path, "
                            f"got {type(model).__name__}")
        self.backend = model
        self.propagator = propagator_for(model)  # the model's `video_propagator`, else the re-prompt baseline

    # --- clips and prompts -------------------------------------------------------------------------
    def init_state(self, video: str | Path | FrameSource, cache: int = 8) -> TrackingState:
        frames = video if isinstance(video, FrameSource) else FrameSource(video, cache=cache)
        return TrackingState(frames)

    def reset_state(self, state: TrackingState) -> None:
        """Forget every prompt and result (the frames stay)."""
        for name in ("prompts", "prompt_tracks", "results", "memory"):
            getattr(state, name).clear()
        state.obj_ids.clear()

    def add_prompt(self, state: TrackingState, frame: int, obj_id: int, points=None, labels=None, box=None,
                   mask=None, clear: bool = False) -> tuple[int, list[int], np.ndarray]:
        """Prompt one object on one frame; points add to the object's earlier points on that frame unless
        `clear`. Returns (frame, obj_ids, masks [objects, H, W]) on that frame."""
        n = len(state.frames)
        if not 0 <= frame < n:
            raise ValueError(f"frame={frame}: the clip has frames 0..{n - 1}")
        prompt = Prompt.make(points, labels, box, mask, size=state.size)
        earlier = state.prompts.get(frame, {}).get(obj_id)
        if earlier is not None and not clear and prompt.mask is None:
            prompt = _merged(earlier, prompt)
        state.prompts.setdefault(frame, {})[obj_id] = prompt
        if obj_id not in state.obj_ids:
            state.obj_ids.append(obj_id)
        previous = state.prompt_tracks.get(frame, {}).get(obj_id) if not clear else None
        track = self._prompted(state, frame, prompt, previous)
        state.prompt_tracks.setdefault(frame, {})[obj_id] = track
        state.results.setdefault(frame, {})[obj_id] = _rle(track.mask)
        self.propagator.prompted(state, frame, obj_id, track)
        return frame, list(state.obj_ids), np.stack([state.mask(frame, o) for o in state.obj_ids])

    def remove_object(self, state: TrackingState, obj_id: int) -> None:
        for table in (state.prompts, state.prompt_tracks, state.results):
            for per_frame in table.values():
                per_frame.pop(obj_id, None)
        if obj_id in state.obj_ids:
            state.obj_ids.remove(obj_id)

    # --- propagation -------------------------------------------------------------------------------
    def propagate(self, state: TrackingState, start: int | None = None, reverse: bool = False,
                  max_frames: int | None = None) -> Iterator[tuple[int, list[int], np.ndarray]]:
        """Frames from `start` (default: the first prompted frame; reverse: the last) onwards (or backwards),
        at most `max_frames`; yields (frame, obj_ids, masks bool [objects, H, W]). On a frame where an object
        has a prompt, the prompt's result stands; elsewhere the object is followed from the frame before."""
        if not state.prompts:
            raise ValueError("add a prompt (add_prompt) before propagating")
        n = len(state.frames)
        prompted = sorted(state.prompts)
        if start is None:
            start = prompted[-1] if reverse else prompted[0]
        if not 0 <= start < n:
            raise ValueError(f"start={start}: the clip has frames 0..{n - 1}")
        order = range(start, -1, -1) if reverse else range(start, n)
        state.reverse = reverse
        keep_lost = getattr(self.propagator, "follows_lost_objects", False)  # SAM 2: a vanished object may return
        if max_frames is not None:
            order = order[: max(0, int(max_frames))]
        carried: dict[int, Track] = {}
        if order:  # the objects not prompted on the first frame: from the frame before's stored results
            before = order[0] + (1 if reverse else -1)
            carried = {o: Track(state.mask(before, o)) for o in state.obj_ids
                       if keep_lost and o in state.results.get(before, {}) or state.mask(before, o).any()}
        for frame in order:
            here = state.prompt_tracks.get(frame, {})
            follow = {o: t for o, t in carried.items() if o not in here and (keep_lost or t.mask.any())}
            tracks = dict(here)
            if follow:
                tracks.update(self.propagator.step(state, frame, follow, self._embedding(state, frame)))
            carried = {**carried, **tracks}
            state.results[frame] = {o: _rle(t.mask) for o, t in tracks.items()}
            masks = np.stack([tracks[o].mask if o in tracks else np.zeros(state.size, bool) for o in state.obj_ids])
            yield frame, list(state.obj_ids), masks

    # --- internals ---------------------------------------------------------------------------------
    def _embedding(self, state: TrackingState, frame: int) -> Any:
        if state.embedded is None or state.embedded[0] != frame:
            with torch.inference_mode():
                state.embedded = (frame, self.backend.embed(state.frames[frame]))
        return state.embedded[1]

    def _prompted(self, state: TrackingState, frame: int, prompt: Prompt, previous: Track | None) -> Track:
        if prompt.mask is not None:
            return Track(prompt.mask)
        points = None if prompt.points is None else torch.from_numpy(prompt.points)[None]
        labels = None if prompt.labels is None else torch.from_numpy(prompt.labels)[None]
        boxes = None if prompt.box is None else torch.from_numpy(prompt.box)[None]
        low_res = previous.low_res if previous is not None and previous.low_res is not None else None
        embedding = self._embedding(state, frame)
        move = lambda x: None if x is None else x.to(self.backend.device)  # noqa: E731
        with torch.inference_mode():
            logits, scores, low = self.backend.decode(embedding, move(points), move(labels), move(boxes),
                                                      move(low_res), False)
        return Track((logits[0, 0] > MASK_THRESHOLD).cpu().numpy(), low[:, :1].float(), float(scores[0, 0]))


def _merged(earlier: Prompt, new: Prompt) -> Prompt:
    if earlier.points is None or new.points is None:
        points, labels = (new.points, new.labels) if new.points is not None else (earlier.points, earlier.labels)
    else:
        points, labels = np.concatenate([earlier.points, new.points]), np.concatenate([earlier.labels, new.labels])
    return Prompt(points, labels, new.box if new.box is not None else earlier.box, None)


def _rle(mask: np.ndarray) -> dict:
    return mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
