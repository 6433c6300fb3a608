"""`seglab val task=video model=<promptable checkpoint> data=<DAVIS folder>`: J&F of the tracker.

Per sequence: every object of the first annotated frame is given to the tracker (`video_prompt`: its
mask, box or one click), the tracker propagates to the end of the clip, and each annotated frame is
scored with DAVIS's J and F (seglab/metrics/video.py; the first and last frames left out, as
davis2017-evaluation does). The JSON also holds the tracking speed (frames per second after the
prompted frame, the embedding included) and per-sequence / per-object scores.
"""
from __future__ import annotations

import time

from seglab.config import Config
from seglab.data import resolve_root
from seglab.data.video import load_sequences
from seglab.metrics.video import VideoObjectEvaluator
from seglab.tasks.reporting import write_val_result
from seglab.tasks.video.first_prompt import FIRST_PROMPTS
from seglab.tasks.video.paint import object_ids
from seglab.video import Tracker


def val(cfg: Config) -> dict:
    tracker = Tracker(cfg.model, device=cfg.device)
    root = resolve_root(cfg.data)
    sequences = load_sequences(root, cfg.split)
    evaluator = VideoObjectEvaluator()
    frames, seconds = 0, 0.0
    for sequence in sequences:
        state = tracker.init_state(sequence.frames)
        first = min(sequence.annotations)
        truth = sequence.object_ids(first)
        for obj in sorted(set(truth.ravel().tolist()) - {0, 255}):
            tracker.add_prompt(state, frame=first, obj_id=int(obj), **FIRST_PROMPTS[cfg.video_prompt](truth == obj))
        start = time.perf_counter()
        for frame, ids, masks in tracker.propagate(state, start=first):
            if frame in sequence.annotations:
                evaluator.process({"video": sequence.name, "frame": frame, "object_ids": sequence.object_ids(frame)},
                                  {"object_ids": object_ids(ids, masks)})
            frames += frame != first
        seconds += time.perf_counter() - start
        state.frames.close()
        if cfg.verbose:
            row = evaluator.evaluate()["per_video"].get(sequence.name, {})
            print(f"  {sequence.name}: {len(state.frames)} frames, J&F {_show(row.get('j_and_f_mean'))}", flush=True)
    result = evaluator.evaluate()
    result.update({"video_prompt": cfg.video_prompt, "tracked_frames": frames,
                   "fps": frames / seconds if seconds else None, "tracker": type(tracker.propagator).__name__})
    described = f"{tracker.backend.name}, first frame given as {cfg.video_prompt}, {result['tracker']}"
    final, path = write_val_result(cfg, root, len(sequences), described, result)
    if cfg.verbose:
        print(f"{cfg.model} on {root} split={cfg.split} ({len(sequences)} sequences): J&F {_show(result['j_and_f_mean'])}"
              f"  J {_show(result['j_mean'])}  F {_show(result['f_mean'])}  ({_show(result['fps'], 1)} frames/s)")
        print(f"written: {path}")
    return final


def _show(value, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"
