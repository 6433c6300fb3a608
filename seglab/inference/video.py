"""Videos frame by frame: decode, predict in batches, write the overlays back as a video.

Needs PyAV (`pip install av`, or `pip install seglab[video]`), whose wheels bring their own FFmpeg.
Writes <name>_overlay.mp4 (H.264 when available, else MPEG-4 Part 2) at the source frame rate and,
with save_frames=true, <name>_frames/<name>_<frame>.png class ids (plus _probs.npy with save_probs).

Temporal smoothing (`smooth` = a, 0 = off): each pixel's class probabilities are an exponential moving
average over the frames, m_t = a * m_{t-1} + (1 - a) * p_t (m_0 = p_0), and the labels are its argmax.
p_t are the probabilities at the frame's own size that `Predictor.run` gives (the one inference path:
stretch, tiles, TTA), so each frame is predicted exactly as with smooth=0; the overlay, the PNGs and the
saved probabilities are the smoothed ones. Memory: the carried average plus one probability buffer per
frame of a batch, C x H x W float32 each; batches of frames are cut so those buffers stay below
SMOOTH_BUFFER_BYTES (at least one frame), whatever the video length.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image

from seglab.data.io import DataError
from seglab.inference.outputs import flush_probs, probs_file
from seglab.inference.overlay import overlay
from seglab.inference.predictor import Job, Predictor

SMOOTH_BUFFER_BYTES = 1 << 29  # per-frame probability buffers of one batch, when smoothing


def _av():
    try:
        import av
    except ImportError:
        raise DataError("reading videos needs PyAV: pip install av (or pip install 'seglab[video]')") from None
    return av


def _even(frame: np.ndarray) -> np.ndarray:
    """yuv420p needs even sides: repeat the last row/column when a side is odd."""
    height, width = frame.shape[:2]
    return np.pad(frame, ((0, height % 2), (0, width % 2), (0, 0)), mode="edge") if height % 2 or width % 2 else frame


class OverlayWriter:
    def __init__(self, path: Path, rate: Fraction, width: int, height: int):
        av = _av()
        self.container = av.open(str(path), mode="w")
        codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
        self.stream = self.container.add_stream(codec, rate=rate)
        self.stream.width, self.stream.height = width + width % 2, height + height % 2
        self.stream.pix_fmt = "yuv420p"
        self.frame_type = av.VideoFrame

    def write(self, rgb: np.ndarray) -> None:
        frame = self.frame_type.from_ndarray(np.ascontiguousarray(_even(rgb)), format="rgb24")
        for packet in self.stream.encode(frame):
            self.container.mux(packet)

    def close(self) -> None:
        for packet in self.stream.encode():
            self.container.mux(packet)
        self.container.close()


def _frames(path: Path):
    """(rate, iterator of RGB uint8 frames); decoding problems become DataError naming the file."""
    av = _av()
    try:
        container = av.open(str(path))
        stream = container.streams.video[0]
    except (av.error.FFmpegError, IndexError, OSError) as e:
        raise DataError(f"{path}: not a video file FFmpeg can read ({str(e)[:200] or 'no video stream'})") from None
    rate = stream.average_rate or stream.guessed_rate or Fraction(25)

    def frames():
        try:
            for frame in container.decode(stream):
                yield frame.to_ndarray(format="rgb24")
        except av.error.FFmpegError as e:
            raise DataError(f"{path}: video decoding failed ({str(e)[:200]})") from None
        finally:
            container.close()

    return rate, frames()


class ProbabilityAverage:
    """The moving average of per-pixel class probabilities over frames (one map carried), and the
    reused per-frame buffers that `Predictor.run` writes each frame's probabilities into."""

    def __init__(self, smooth: float, batch: int):
        if not 0 < smooth < 1:
            raise ValueError(f"smooth={smooth}: expected a fraction in (0, 1) for smoothing (0 = off)")
        self.smooth, self.batch = smooth, batch
        self.mean: np.ndarray | None = None
        self.buffers: list[np.ndarray] = []

    def frames_per_batch(self, channels: int, height: int, width: int) -> int:
        return max(1, min(self.batch, SMOOTH_BUFFER_BYTES // (4 * channels * height * width)))

    def buffer(self, slot: int, shape: tuple[int, int, int]) -> np.ndarray:
        """float32 [C, H, W] for the slot-th frame of a batch, allocated once and reused."""
        if self.buffers and self.buffers[0].shape != shape:
            self.buffers = []
        while len(self.buffers) <= slot:
            self.buffers.append(np.empty(shape, np.float32))
        return self.buffers[slot]

    def update(self, probs: np.ndarray) -> np.ndarray:
        """Add one frame's probabilities (its buffer is scaled in place); the smoothed labels uint8 [H, W]."""
        if self.mean is None or self.mean.shape != probs.shape:
            self.mean = probs.copy()
        else:
            self.mean *= self.smooth
            self.mean += np.multiply(probs, 1 - self.smooth, out=probs)
        return self.mean.argmax(0).astype(np.uint8)


def predict_video(predictor: Predictor, path: Path, out: Path, save_frames: bool = False,
                  save_probs: bool = False, smooth: float = 0.0) -> int:
    """Predict every frame of `path`; returns the number of frames written. `smooth`: see the module docstring."""
    average = ProbabilityAverage(smooth, predictor.options.batch) if smooth > 0 else None
    rate, frames = _frames(path)
    frame_dir = out / f"{path.stem}_frames"
    if save_frames:
        frame_dir.mkdir(parents=True, exist_ok=True)
    writer, count, pending = None, 0, []
    classes, batch = predictor.classes, predictor.options.batch

    def flush():
        nonlocal writer, count
        labels = predictor.run([job for job, _ in pending])
        for (job, name), ids in zip(pending, labels):
            if average is not None:
                ids = average.update(job.probs_out)
            if writer is None:
                height, width = ids.shape
                writer = OverlayWriter(out / f"{path.stem}_overlay.mp4", rate, width, height)
            writer.write(overlay(job.image, ids, classes.colors, classes.ignore_index))
            if save_frames:
                Image.fromarray(ids).save(frame_dir / f"{name}.png")
                if average is not None and save_probs:  # the smoothed probabilities, as the labels are
                    saved = probs_file(frame_dir, name, *average.mean.shape)
                    saved[:] = average.mean
                    flush_probs(saved)
                flush_probs(job.probs_out)
            count += 1
        pending.clear()

    try:
        for index, frame in enumerate(frames):
            name = f"{path.stem}_{index:06d}"
            probs, shape = None, (predictor.num_classes, *frame.shape[:2])
            if average is not None:
                batch = average.frames_per_batch(*shape)
                probs = average.buffer(len(pending), shape)
            elif save_frames and save_probs:
                probs = probs_file(frame_dir, name, *shape)
            pending.append((Job(frame, probs_out=probs), name))
            if len(pending) >= batch:
                flush()
        if pending:
            flush()
    finally:
        if writer is not None:
            writer.close()
    if count == 0:
        raise DataError(f"{path}: the video has no frames")
    return count
