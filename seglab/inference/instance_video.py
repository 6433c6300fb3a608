"""Videos through an instance model, frame by frame: the overlay video and, on request, per-frame id PNGs.

Mirrors semantic video prediction (seglab/inference/video.py, whose decoder and writer it uses): frames are
decoded one at a time (never the whole video up front), each goes through `InstancePredictor.predict`
(the image path: whole frame, or tiles when the frame is large), and the instances with score >= min_score
are drawn as predict draws them on images. Writes <name>_overlay.mp4 at the source frame rate and, with
save_frames=true, <name>_frames/<name>_<frame>.png instance ids (8-bit, 16-bit beyond 255 instances).
Instance ids are per frame: the same object may get another id in the next frame (no tracking).
"""

from __future__ import annotations

from pathlib import Path

from seglab.data.io import DataError
from seglab.inference.instance import InstancePredictor
from seglab.inference.instance_outputs import instance_overlay, save_ids
from seglab.inference.video import OverlayWriter
from seglab.inference.video import _frames as decoded_frames  # the one decoder of videos (errors name the file)


def predict_instance_video(predictor: InstancePredictor, path: Path, out: Path, save_frames: bool = False) -> int:
    """Predict every frame of `path` into `out`; returns the number of frames written."""
    rate, frames = decoded_frames(path)
    frame_dir = out / f"{path.stem}_frames"
    if save_frames:
        frame_dir.mkdir(parents=True, exist_ok=True)
    writer, count = None, 0
    try:
        for index, frame in enumerate(frames):
            drawn = predictor.predict(frame).confident(predictor.options.min_score)
            if writer is None:
                height, width = frame.shape[:2]
                writer = OverlayWriter(out / f"{path.stem}_overlay.mp4", rate, width, height)
            writer.write(instance_overlay(frame, drawn, predictor.classes.names))
            if save_frames:
                save_ids(frame_dir / f"{path.stem}_{index:06d}.png", drawn.ids)
            count += 1
    finally:
        if writer is not None:
            writer.close()
    if count == 0:
        raise DataError(f"{path}: the video has no frames")
    return count
