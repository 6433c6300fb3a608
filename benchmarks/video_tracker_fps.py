"""Tracking speed of seglab's memory tracker against the re-prompt baseline, in the same run, at 480p.

    python benchmarks/video_tracker_fps.py                                   # random-init tracker (same cost)
    python benchmarks/video_tracker_fps.py runs/video_memory/best.pt --threads 2 --frames 40
    python benchmarks/video_tracker_fps.py runs/video_memory/best.pt --clip ../shared/data/davis2016-train-subset/JPEGImages/480p/tennis

Both trackers run over the same frames (the first `--frames` of a DAVIS folder with `--clip`, else synthetic
854 x 480 frames with a moving disc), one object given as a mask on frame 0, each later frame embedded and
stepped by the tracker's propagator from the true mask of the frame before (so the cost does not depend on
whether a tracker lost the object): the memory tracker with its
propagator (seglab/video/memory_propagator.py), the baseline with the same click weights (the tracker's
`click` part) through RepromptPropagator. Frames per second after the first frame, the embedding
included, interleaved runs; prints lscpu's flags and the load average (numbers on a busy machine mean
little; the ratio is what to read). Target (issue 17): >= 5 frames/s at 480p on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch
from PIL import Image

from seglab.benchmark.timing import lscpu_summary
from seglab.models.video import MemoryTracker
from seglab.prompt.click_backend import ClickBackend
from seglab.prompt.memory_backend import MemoryBackend, load
from seglab.video import FrameSource, Tracker
from seglab.video.propagators import Track


class SyntheticClip(FrameSource):
    """854 x 480 frames: a textured background and a disc moving 6 px a frame."""

    def __init__(self, frames: int):
        rng = np.random.default_rng(0)
        self.background = rng.integers(0, 255, (480, 854, 3)).astype(np.uint8)
        self.count, self.path, self.rate = frames, "synthetic", 25.0

    def disc(self, t: int) -> np.ndarray:
        yy, xx = np.mgrid[:480, :854]
        return (xx - 200 - 6 * t) ** 2 + (yy - 240) ** 2 <= 80 ** 2

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, t: int) -> np.ndarray:
        frame = self.background.copy()
        frame[self.disc(t)] = (230, 40, 40)
        return frame

    def size(self) -> tuple[int, int]:
        return (480, 854)

    def close(self) -> None:
        pass


def clip_masks(clip, path: str | None, frames: int) -> list[np.ndarray]:
    if path is None:
        return [clip.disc(t) for t in range(frames)]
    folder = str(path).replace("JPEGImages", "Annotations")
    names = sorted(p for p in os.listdir(folder) if p.endswith(".png"))[:frames]
    return [np.asarray(Image.open(os.path.join(folder, name))) > 0 for name in names]


def seconds_per_frame(backend, clip, masks: list[np.ndarray]) -> float:
    """Mean seconds of one tracked frame (embedding + the propagator's step), each frame given the true mask of
    the frame before as its track (so both trackers always have the object to follow, whatever their accuracy)."""
    tracker = Tracker(backend)
    state = tracker.init_state(clip)
    tracker.add_prompt(state, frame=0, obj_id=1, mask=masks[0])
    track = Track(masks[0])
    start = time.perf_counter()
    for t in range(1, len(masks)):
        with torch.inference_mode():
            embedding = backend.embed(clip[t])
        state.embedded = (t, embedding)
        result = tracker.propagator.step(state, t, {1: Track(masks[t - 1], track.low_res)}, embedding)
        track = result[1]
    return (time.perf_counter() - start) / (len(masks) - 1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("checkpoint", nargs="?", default="", help="a memory-tracker checkpoint; none = random init")
    parser.add_argument("--clip", default=None, help="a folder of frames (DAVIS JPEGImages/480p/<seq>)")
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--size", type=int, default=384, help="model input (longer side) without a checkpoint")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(lscpu_summary())
    print(f"torch {torch.__version__}, {args.threads} threads, load average before {os.getloadavg()[0]:.2f}")
    if args.checkpoint:
        memory = load(args.checkpoint, device="cpu")
        model = torch.load(args.checkpoint, map_location="cpu", weights_only=True)
        size, mean, std = memory.size, model["preprocess"]["mean"], model["preprocess"]["std"]
    else:
        tracker_model = MemoryTracker().eval()
        size, mean, std = args.size, tracker_model.normalization["mean"], tracker_model.normalization["std"]
        memory = MemoryBackend(tracker_model, size, mean, std, "cpu", "memory_tracker (random init)")
    # the baseline: the same click weights (memory_tracker's `click` part; fold_batchnorm copied them)
    baseline = ClickBackend(memory.model.click, size, mean, std, "cpu", "click part, re-prompted")
    clip = FrameSource(args.clip, cache=4) if args.clip else SyntheticClip(args.frames)
    masks = clip_masks(clip, args.clip, args.frames)
    times = {"memory": [], "reprompt": []}
    for backend in (memory, baseline):  # warm-up (first-call allocations and kernel choices), not timed
        seconds_per_frame(backend, clip, masks[:3])
    for _ in range(args.repeats):  # interleaved
        for name, backend in (("memory", memory), ("reprompt", baseline)):
            times[name].append(seconds_per_frame(backend, clip, masks))
    fps = {name: 1 / float(np.median(v)) for name, v in times.items()}
    h, w = clip.size()
    print(f"{w}x{h} frames, model input {size}, {len(masks) - 1} frames after the first, median of {args.repeats}:")
    print(f"  memory tracker  {fps['memory']:6.2f} frames/s")
    print(f"  re-prompt       {fps['reprompt']:6.2f} frames/s")
    print(f"  memory / re-prompt speed ratio {fps['memory'] / fps['reprompt']:.2f}; "
          f"load average after {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
