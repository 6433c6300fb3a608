"""`seglab track model=... source=clip.mp4 prompts=prompts.json`: follow prompted objects through a clip.

Writes into `out` (default runs/track/<clip name>): `<clip>_overlay.mp4` (each object in its colour, at
the source frame rate), with gif=N also `<clip>_overlay.gif` (longer side N px, every gif_step-th frame),
and `frames/<frame>.png` object ids (0 background, the prompts' obj_id; DAVIS
annotations' form, 16-bit when an id exceeds 255). Propagation runs backwards from the first prompted
frame when it is not the clip's first frame (those frames kept only as their PNGs), then forwards from it, each
frame written as it comes: memory does not grow with the clip's length. frames/s counts tracking time only.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from PIL import Image

from seglab.config import Config, ConfigError
from seglab.inference.instance_outputs import save_ids
from seglab.inference.gif import GifWriter
from seglab.inference.video import OverlayWriter
from seglab.tasks.video.paint import object_ids, overlay_frame
from seglab.tasks.video.prompts_file import read_prompts
from seglab.video import Tracker


class Clock:
    """The time spent inside an iterator's steps (tracking), not in the caller's work between them (writing)."""

    def __init__(self):
        self.seconds = 0.0

    def timed(self, iterator):
        iterator, start = iter(iterator), time.perf_counter()
        for item in iterator:
            self.seconds += time.perf_counter() - start
            yield item
            start = time.perf_counter()
        self.seconds += time.perf_counter() - start


def track(cfg: Config) -> dict:
    if not cfg.source:
        raise ConfigError("seglab track needs source= (a video file or a folder of frames)")
    if not cfg.prompts:
        raise ConfigError("seglab track needs prompts= (a JSON list of {frame, obj_id, points/labels, box, mask})")
    prompts = read_prompts(cfg.prompts)
    tracker = Tracker(cfg.model, device=cfg.device)
    source = Path(cfg.source)
    state = tracker.init_state(source)
    for entry in prompts:
        try:
            tracker.add_prompt(state, frame=entry["frame"], obj_id=entry["obj_id"], **entry["prompt"])
        except ValueError as e:
            raise ConfigError(f"{entry['where']}: {e}") from None
    out = Path(cfg.out) if cfg.out else Path(cfg.project) / "track" / source.stem
    (out / "frames").mkdir(parents=True, exist_ok=True)
    names, (height, width) = state.frames.names, state.size
    png = lambda frame: out / "frames" / f"{names[frame]}.png"  # noqa: E731
    clock = Clock()
    first = min(state.prompts)
    writers = [OverlayWriter(out / f"{source.stem}_overlay.mp4", state.frames.rate, width, height)]
    if cfg.gif:
        writers.append(GifWriter(out / f"{source.stem}_overlay.gif", state.frames.rate, cfg.gif, cfg.gif_step))

    def write(frame: int, ids: list[int], masks) -> None:
        painted = overlay_frame(state.frames[frame], ids, masks)  # once, for every writer
        for writer in writers:
            writer.write(painted)

    try:
        if first > 0:  # the frames before the first prompt: tracked backwards, kept only as their id PNGs
            for frame, ids, masks in clock.timed(tracker.propagate(state, start=first, reverse=True)):
                if frame < first:
                    save_ids(png(frame), object_ids(ids, masks))
        obj_ids = list(state.obj_ids)
        for frame in range(first):
            id_map = np.asarray(Image.open(png(frame)))
            write(frame, obj_ids, np.stack([id_map == o for o in obj_ids]))
        for frame, ids, masks in clock.timed(tracker.propagate(state, start=first)):  # streamed: nothing kept
            save_ids(png(frame), object_ids(ids, masks))
            write(frame, ids, masks)
    finally:
        for writer in writers:
            writer.close()
        state.frames.close()
    seconds = clock.seconds
    summary = {"frames": len(names), "objects": list(state.obj_ids), "out": str(out),
               "fps": (len(names) - 1) / seconds if seconds and len(names) > 1 else None}
    if cfg.verbose:
        print(f"tracked {len(state.obj_ids)} object(s) through {len(names)} frames of {source} "
              f"({summary['fps'] or 0:.1f} frames/s); written: {out}")
    return summary
