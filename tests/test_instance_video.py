"""`seglab predict` of an instance checkpoint on a video: an overlay video with every frame, per-frame id PNGs
with save_frames=true, and the objects of each frame found as on images."""
from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from seglab.cli import main
from seglab.inference.instance import InstanceOptions, InstancePredictor
from seglab.inference.instance_video import predict_instance_video
from test_instance_tiling import (CPU, DiscFinder, draw_discs, matches, metadata, one_thread,  # noqa: F401
                                  untrained_checkpoint)

av = pytest.importorskip("av")
pytestmark = pytest.mark.usefixtures("one_thread")  # small forwards on busy shared cores
FRAMES = 10


def disc_frames(count: int, height: int = 96, width: int = 128) -> list[tuple[np.ndarray, list]]:
    """Frames with two discs moving right and down (image, truth as draw_discs gives it)."""
    r = min(height, width)
    return [draw_discs(height, width, [(height // 3 + t, width // 5 + 2 * t, r // 9),
                                       (2 * height // 3, 4 * width // 5 - 2 * t, r // 10)]) for t in range(count)]


def write_video(path: Path, frames: list[np.ndarray], rate: int = 10) -> Path:
    container = av.open(str(path), mode="w")
    stream = container.add_stream("libx264" if "libx264" in av.codecs_available else "mpeg4", rate=rate)
    stream.height, stream.width = frames[0].shape[:2]
    stream.pix_fmt = "yuv420p"
    if stream.codec_context.name == "libx264":
        stream.options = {"crf": "10"}  # nearly lossless: the disc edges stay where they were drawn
    else:
        stream.bit_rate = 4_000_000
    for frame in frames:
        for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    return path


def decoded(path: Path) -> tuple[Fraction, list[np.ndarray]]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return stream.average_rate, [f.to_ndarray(format="rgb24") for f in container.decode(stream)]


def test_every_frame_is_predicted_like_an_image(tmp_path):
    frames = disc_frames(FRAMES)
    clip = write_video(tmp_path / "discs.mp4", [image for image, _ in frames])
    predictor = InstancePredictor(DiscFinder(), CPU, InstanceOptions(), metadata(128))
    assert predict_instance_video(predictor, clip, tmp_path, save_frames=True) == FRAMES
    rate, overlay = decoded(tmp_path / "discs_overlay.mp4")
    assert len(overlay) == FRAMES and overlay[0].shape == (96, 128, 3) and rate == 10
    pngs = sorted((tmp_path / "discs_frames").glob("*.png"))
    assert [p.name for p in pngs] == [f"discs_{i:06d}.png" for i in range(FRAMES)]
    _, source = decoded(clip)
    for png, (_, truth), pixels in zip(pngs, frames, source):
        ids = np.asarray(Image.open(png))
        assert ids.max() == 2 and all(count == 1 and iou > 0.9 for count, iou in matches(ids, truth))
        assert np.array_equal(ids, predictor.predict(pixels).ids)  # the image path, on the decoded frame


def test_predict_cli_writes_an_overlay_video_with_every_frame(tmp_path):
    model = untrained_checkpoint(tmp_path / "untrained.pt")
    source = tmp_path / "in"
    source.mkdir()
    write_video(source / "clip.mp4", [image for image, _ in disc_frames(FRAMES, 64, 48)])
    Image.fromarray(disc_frames(1, 40, 56)[0][0]).save(source / "still.png")
    out = tmp_path / "pred"
    assert main(["predict", f"model={model}", f"source={source}", f"out={out}", "score_threshold=0", "min_score=0",
                 "max_detections=5", "save_frames=true", "precision=fp32", "verbose=false"]) == 0
    assert not (out / "errors.txt").exists()
    _, overlay = decoded(out / "clip_overlay.mp4")
    assert len(overlay) == FRAMES and overlay[0].shape == (64, 48, 3)
    pngs = sorted((out / "clip_frames").glob("clip_*.png"))
    assert len(pngs) == FRAMES and all(Image.open(p).size == (48, 64) for p in pngs)
    assert (out / "still.png").is_file() and (out / "still_overlay.png").is_file()
    assert {e["file_name"] for e in json.loads((out / "predictions.json").read_text())} <= {"still.png"}


def test_a_broken_video_is_listed_and_the_rest_predicted(tmp_path):
    model = untrained_checkpoint(tmp_path / "untrained.pt")
    source = tmp_path / "in"
    source.mkdir()
    (source / "broken.mp4").write_bytes(b"not a video")
    Image.fromarray(disc_frames(1, 40, 56)[0][0]).save(source / "still.png")
    out = tmp_path / "pred"
    assert main(["predict", f"model={model}", f"source={source}", f"out={out}", "verbose=false"]) == 0
    errors = (out / "errors.txt").read_text()
    assert "broken.mp4" in errors and "not a video file" in errors
    assert (out / "still.png").is_file()
