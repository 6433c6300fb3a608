"""Training-time validation of a tracker: DAVIS J&F on simulated clips of held-out images.

The val clips are made once, seeded (seglab/data/video/simulated_clips.py, no augmentation, `VAL_FRAMES`
frames each), and run through the same `Tracker` that `seglab val task=video` runs: the object's true mask
on frame 0 (DAVIS's semi-supervised protocol), then propagation; every frame is scored with J and F
(seglab/metrics/video.py; ignored pixels are void).
"""
from __future__ import annotations

import numpy as np

from seglab.data.video.simulated_clips import SimulatedClips
from seglab.metrics.video import VideoObjectEvaluator
from seglab.video import FrameSource, Tracker

VAL_FRAMES = 8
VOID = 255


class ArrayFrames(FrameSource):
    """A clip held in memory (uint8 [H, W, 3] frames) as the tracker's frame source."""

    def __init__(self, frames: list[np.ndarray], name: str = "clip"):
        self._frames, self.path, self.rate = frames, name, 25.0

    def __len__(self) -> int:
        return len(self._frames)

    def __getitem__(self, index: int) -> np.ndarray:
        return self._frames[index]

    @property
    def names(self) -> list[str]:
        return [f"{i:05d}" for i in range(len(self._frames))]

    def size(self) -> tuple[int, int]:
        return self._frames[0].shape[:2]

    def close(self) -> None:
        pass


def val_clips(splits: list, size: int, seed: int, frames: int = VAL_FRAMES) -> list[tuple[list, list]]:
    """[(frames uint8 [S, S, 3] list, object ids int64 [S, S] list: 1 object, 0 background, 255 void)]."""
    clips = SimulatedClips(splits, size, frames=frames, augment=False)
    out = []
    for i in range(len(clips)):
        images, target, _ = clips[(i, seed + i)]
        ids = np.where(target["ignore"].numpy(), VOID, target["masks"].numpy() > 0).astype(np.int64)
        out.append(([np.ascontiguousarray(f.permute(1, 2, 0).numpy()) for f in images], list(ids)))
    return out


def clip_scores(backend, clips: list) -> dict:
    """J&F (seglab/metrics/video.py's result) of `backend`'s tracker over the clips."""
    tracker = Tracker(backend)
    evaluator = VideoObjectEvaluator()
    for k, (frames, ids) in enumerate(clips):
        if not (ids[0] == 1).any():
            continue
        state = tracker.init_state(ArrayFrames(frames, f"clip{k}"))
        tracker.add_prompt(state, frame=0, obj_id=1, mask=ids[0] == 1)
        for frame, obj_ids, masks in tracker.propagate(state):
            predicted = np.where(masks[0], 1, 0).astype(np.int64)
            evaluator.process({"video": f"clip{k}", "frame": frame, "object_ids": ids[frame]}, {"object_ids": predicted})
    return evaluator.evaluate()
