"""seglab.video: frames streamed from a folder or a video file, the Tracker API (prompt, propagate, correct,
reverse, several objects) with the re-prompt baseline, on synthetic clips whose truth is known."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import ndimage

from seglab.prompt.backend import ImageEmbedding
from seglab.video import FrameSource, Tracker
from seglab.video.prompts import from_mask, inner_point, mask_box

H, W = 60, 80


class ColourBackend:
    """A promptable backend with real, simple behaviour: the object is the connected region of pixels whose
    colour is within 40 of the colour under the (first) foreground point, inside the box when one is given;
    with only a box, the colour at the box centre. Scores: 1. Low-res logits: the mask resized to 256x256."""

    name, device = "colour", torch.device("cpu")

    def __init__(self):
        self.embeds = 0

    def embed(self, image):
        self.embeds += 1
        return ImageEmbedding(torch.from_numpy(image.astype(np.float32)), image.shape[:2], image.shape[:2])

    def decode(self, embedding, points, labels, boxes, mask_input, multimask):
        image = embedding.features.numpy()
        b = (points if points is not None else boxes).shape[0]
        masks = np.zeros((b, 1, *image.shape[:2]), bool)
        for i in range(b):
            region = np.ones(image.shape[:2], bool)
            if boxes is not None:
                x0, y0, x1, y1 = boxes[i].tolist()
                region[:] = False
                region[max(0, int(y0) - 6): int(y1) + 6, max(0, int(x0) - 6): int(x1) + 6] = True
            if points is not None and (labels[i] == 1).any():
                x, y = points[i][labels[i] == 1][0].tolist()
            else:
                x0, y0, x1, y1 = boxes[i].tolist()
                x, y = (x0 + x1) / 2, (y0 + y1) / 2
            seed = image[int(y), int(x)]
            close = (np.abs(image - seed).max(-1) < 40) & region
            parts, _ = ndimage.label(close)
            if parts[int(y), int(x)]:
                masks[i, 0] = parts == parts[int(y), int(x)]
        logits = torch.from_numpy(np.where(masks, 10.0, -10.0).astype(np.float32))
        low = torch.nn.functional.interpolate(logits, size=(256, 256))
        return logits, torch.ones(b, 1), low


def disc(cx: float, cy: float, r: float = 8) -> np.ndarray:
    yy, xx = np.mgrid[:H, :W]
    return (xx + 0.5 - cx) ** 2 + (yy + 0.5 - cy) ** 2 <= r * r


def clip(tmp_path: Path, n: int = 12) -> tuple[Path, list[dict[int, np.ndarray]]]:
    """A red disc moving right and a green one moving left on grey noise; the truth per frame."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "frames"
    folder.mkdir()
    truth = []
    for t in range(n):
        frame = rng.integers(100, 140, (H, W, 3)).astype(np.uint8)
        red, green = disc(12 + 3 * t, 20), disc(68 - 3 * t, 42)
        frame[red] = (220, 30, 30)
        frame[green] = (30, 220, 30)
        Image.fromarray(frame).save(folder / f"{t:05d}.png")
        truth.append({1: red, 2: green})
    return folder, truth


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return (a & b).sum() / max(1, (a | b).sum())


def test_prompt_helpers_on_a_known_mask():
    mask = disc(30, 30, 6)
    x0, y0, x1, y1 = mask_box(mask)
    assert (x0, y0, x1, y1) == (24, 24, 36, 36)
    assert np.allclose(inner_point(mask), (30, 30), atol=1.0)
    assert from_mask(np.zeros((5, 5), bool)) is None


def test_folder_frames_are_read_on_demand_with_a_bounded_cache(tmp_path):
    folder, _ = clip(tmp_path, n=6)
    source = FrameSource(folder, cache=2)
    assert len(source) == 6 and source.names[0] == "00000"
    first = source[0]
    assert first.shape == (H, W, 3) and first.dtype == np.uint8
    for i in range(6):
        source[i]
    assert len(source._memory) == 2
    assert np.array_equal(source[0], np.asarray(Image.open(folder / "00000.png")))


def test_a_video_file_is_decoded_once_and_read_back_in_any_order(tmp_path):
    av = pytest.importorskip("av")
    path = tmp_path / "clip.mp4"
    container = av.open(str(path), mode="w")
    stream = container.add_stream("mpeg4", rate=10)
    stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
    for t in range(7):
        frame = np.full((H, W, 3), 20 * t, np.uint8)
        for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    source = FrameSource(path, cache=2)
    assert source[3].shape == (H, W, 3) and len(source._files) == 4  # decoded only as far as asked
    assert len(source) == 7
    assert abs(int(source[6].mean()) - 120) < 8 and abs(int(source[1].mean()) - 20) < 8  # backwards: from files
    spill = source._spill
    source.close()
    assert not spill.exists()
    with pytest.raises(Exception, match="no such video file"):
        FrameSource(tmp_path / "missing.mp4")


def test_one_click_follows_two_objects_through_the_clip(tmp_path):
    folder, truth = clip(tmp_path)
    backend = ColourBackend()
    tracker = Tracker(backend)
    state = tracker.init_state(folder)
    tracker.add_prompt(state, frame=0, obj_id=1, points=[[12, 20]], labels=[1])
    frame, ids, masks = tracker.add_prompt(state, frame=0, obj_id=2, box=[60, 34, 76, 50])
    assert frame == 0 and ids == [1, 2] and masks.shape == (2, H, W)
    seen = []
    for frame, ids, masks in tracker.propagate(state):
        seen.append(frame)
        assert iou(masks[0], truth[frame][1]) > 0.9 and iou(masks[1], truth[frame][2]) > 0.9, frame
    assert seen == list(range(12))
    assert backend.embeds == 12  # each frame embedded once, both objects decoded together
    assert iou(state.mask(11, 2), truth[11][2]) > 0.9  # results kept (as RLE) for scrubbing


def test_reverse_max_frames_and_a_correction_repropagates_from_its_frame(tmp_path):
    folder, truth = clip(tmp_path)
    tracker = Tracker(ColourBackend())
    state = tracker.init_state(folder)
    tracker.add_prompt(state, frame=8, obj_id=1, mask=truth[8][1])
    frames = [f for f, _, _ in tracker.propagate(state, reverse=True, max_frames=5)]
    assert frames == [8, 7, 6, 5, 4]
    assert iou(state.mask(4, 1), truth[4][1]) > 0.9
    # a correction on frame 5: the object is now the green disc; frames from 5 on follow it
    tracker.add_prompt(state, frame=5, obj_id=1, points=[[68 - 15, 42]], labels=[1], clear=True)
    for frame, _, masks in tracker.propagate(state, start=5, max_frames=3):
        assert iou(masks[0], truth[frame][2]) > 0.9, frame
    assert iou(state.mask(4, 1), truth[4][1]) > 0.9  # earlier frames keep their result


def test_a_lost_object_stays_empty_and_bad_prompts_are_named(tmp_path):
    folder, _ = clip(tmp_path, n=4)
    tracker = Tracker(ColourBackend())
    state = tracker.init_state(folder)
    with pytest.raises(ValueError, match="add a prompt"):
        next(tracker.propagate(state))
    with pytest.raises(ValueError, match="frames 0..3"):
        tracker.add_prompt(state, frame=9, obj_id=1, points=[[1, 1]], labels=[1])
    with pytest.raises(ValueError, match="go together"):
        tracker.add_prompt(state, frame=0, obj_id=1, points=[[1, 1]])
    with pytest.raises(ValueError, match="mask is 3x3"):
        tracker.add_prompt(state, frame=0, obj_id=1, mask=np.ones((3, 3), bool))
    tracker.add_prompt(state, frame=0, obj_id=1, mask=np.zeros((H, W), bool))
    assert all(not masks.any() for _, _, masks in tracker.propagate(state))
