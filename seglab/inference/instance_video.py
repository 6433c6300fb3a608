"""Videos through an instance model, frame by frame: the overlay video and, on request, per-frame id PNGs.

Mirrors semantic video prediction (seglab/inference/video.py, whose decoder and writer it uses): frames are
decoded one at a time (never the whole video up front) and each goes through `InstancePredictor.predict`
(the image path: whole frame, or tiles when the frame is large). Writes <name>_overlay.mp4 at the source
frame rate and, with save_frames=true, <name>_frames/<name>_<frame>.png instance ids (8-bit, 16-bit beyond
255).

Ids are stable across frames: each frame's instances are matched to the previous frame's by mask IoU
(seglab/inference/instance_tracks.py), so a tracked object keeps its id in the PNGs and its colour in the
overlay; a new object gets the next unused id. Every detection the predictor keeps (score >= score_threshold)
is tracked; those with score >= min_score are drawn. With `smooth` = a > 0 a tracked object's score is the
moving average a x previous + (1 - a) x this frame's, and that is the score drawn and compared with
min_score (an object whose score dips for a frame stays drawn); smooth=0 draws exactly what predict draws
on each frame as an image, with stable ids.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from seglab.data.io import DataError
from seglab.inference.instance import InstancePredictor
from seglab.inference.instance_outputs import (
    instance_colors,
    instance_overlay,
    save_ids,
)
from seglab.inference.instance_tracks import InstanceTracks
from seglab.inference.video import OverlayWriter
from seglab.inference.video import (
    _frames as decoded_frames,  # the one decoder of videos (errors name the file)
)


class TrackColors:
    """uint8 [M, 3] colours of track ids: track id k has colour k of `instance_colors`, in every frame."""

    def __init__(self):
        self.palette = instance_colors(64)

    def __call__(self, track_ids: np.ndarray) -> np.ndarray:
        need = int(track_ids.max(initial=0))
        if need > len(self.palette):
            self.palette = instance_colors(max(need, 2 * len(self.palette)))
        return self.palette[track_ids - 1]


def predict_instance_video(predictor: InstancePredictor, path: Path, out: Path, save_frames: bool = False,
                           smooth: float = 0.0) -> int:
    """Predict every frame of `path` into `out`; returns the number of frames written."""
    tracks, colors = InstanceTracks(smooth), TrackColors()
    rate, frames = decoded_frames(path)
    frame_dir = out / f"{path.stem}_frames"
    if save_frames:
        frame_dir.mkdir(parents=True, exist_ok=True)
    writer, count = None, 0
    try:
        for index, frame in enumerate(frames):
            drawn = tracks.update(predictor.predict(frame)).drawn(predictor.options.min_score)
            if writer is None:
                height, width = frame.shape[:2]
                writer = OverlayWriter(out / f"{path.stem}_overlay.mp4", rate, width, height)
            writer.write(instance_overlay(frame, drawn.as_prediction(), predictor.classes.names,
                                          colors=colors(drawn.track_ids)))
            if save_frames:
                save_ids(frame_dir / f"{path.stem}_{index:06d}.png", drawn.ids)
            count += 1
    finally:
        if writer is not None:
            writer.close()
    if count == 0:
        raise DataError(f"{path}: the video has no frames")
    return count
