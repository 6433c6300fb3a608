"""`seglab track model=... source=clip.mp4 prompts=prompts.json`: follow prompted objects through a clip.

Writes into `out` (default runs/track/<clip name>): `<clip>_overlay.mp4` (each object in its colour, at
the source frame rate), with gif=N also `<clip>_overlay.gif` (longer side N px, every gif_step-th frame),
and `frames/<frame>.png` object ids (0 background, the prompts' obj_id; DAVIS
annotations' form, 16-bit when an id exceeds 255). Propagation runs forward from the first prompted
frame, then backwards from it when it is not the clip's first frame.
"""
from __future__ import annotations

import time
from pathlib import Path

from seglab.config import Config, ConfigError
from seglab.inference.instance_outputs import save_ids
from seglab.inference.gif import GifWriter
from seglab.inference.video import OverlayWriter
from seglab.tasks.video.paint import object_ids, overlay_frame
from seglab.tasks.video.prompts_file import read_prompts
from seglab.video import Tracker


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
    start = time.perf_counter()
    first = min(state.prompts)
    results = {f: (ids, masks) for f, ids, masks in tracker.propagate(state, start=first)}
    if first > 0:
        results.update({f: (ids, masks) for f, ids, masks in tracker.propagate(state, start=first, reverse=True)})
    seconds = time.perf_counter() - start
    names = state.frames.names
    height, width = state.size
    writers = [OverlayWriter(out / f"{source.stem}_overlay.mp4", state.frames.rate, width, height)]
    if cfg.gif:
        writers.append(GifWriter(out / f"{source.stem}_overlay.gif", state.frames.rate, cfg.gif, cfg.gif_step))
    try:
        for frame in range(len(state.frames)):
            ids, masks = results[frame]
            save_ids(out / "frames" / f"{names[frame]}.png", object_ids(ids, masks))
            painted = overlay_frame(state.frames[frame], ids, masks)
            for writer in writers:
                writer.write(painted)
    finally:
        for writer in writers:
            writer.close()
        state.frames.close()
    summary = {"frames": len(names), "objects": list(state.obj_ids), "out": str(out),
               "fps": (len(names) - 1) / seconds if seconds and len(names) > 1 else None}
    if cfg.verbose:
        print(f"tracked {len(state.obj_ids)} object(s) through {len(names)} frames of {source} "
              f"({summary['fps'] or 0:.1f} frames/s); written: {out}")
    return summary
