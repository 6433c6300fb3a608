"""seglab's memory tracker: the clip simulator, the model and its memory, training, and tracking through `Tracker`."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import seglab
from seglab.data.prompt import open_object_split
from seglab.data.spec import ClassTable
from seglab.data.video.simulated_clips import (
    Motion,
    SimulatedClips,
    apply_motion,
    sample_motion,
)
from seglab.engine.checkpoint import atomic_save, make_checkpoint
from seglab.models.prompt import ClickSeg
from seglab.models.video import MemoryTracker
from seglab.models.video.memory_readout import read_memory
from seglab.prompt.memory_backend import MemoryBackend
from seglab.video import Tracker
from seglab.video.memory_propagator import MemoryPropagator
from seglab.video.propagators import RepromptPropagator

SIDE = 64
MEAN, STD = [0.5] * 3, [0.5] * 3


def blob_dataset(root: Path, count: int = 6) -> Path:
    """Folder layout: images with one bright ellipse each on a textured background, masks 0 / 255."""
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    yy, xx = np.mgrid[:48, :64]
    for i in range(count):
        cy, cx, ry, rx = rng.integers(16, 32), rng.integers(20, 44), rng.integers(7, 12), rng.integers(8, 14)
        mask = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
        image = rng.integers(0, 90, (48, 64, 3)).astype(np.uint8)
        image[mask] = (230, 60 + 20 * i, 40)
        Image.fromarray(image).save(root / "images" / f"im{i}.png")
        Image.fromarray(mask.astype(np.uint8) * 255).save(root / "masks" / f"im{i}.png")
    return root


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


def centroid(mask) -> np.ndarray:
    ys, xs = np.nonzero(np.asarray(mask))
    return np.array([xs.mean(), ys.mean()])


# --- the clip simulator ------------------------------------------------------------------------------------
def test_simulated_motion_moves_the_mask_with_the_image():
    image = torch.zeros(3, SIDE, SIDE, dtype=torch.uint8)
    image[0, 20:36, 24:40] = 255  # a painted red square
    mask = (image[0] > 0).to(torch.uint8)
    ignore = torch.zeros(SIDE, SIDE, dtype=torch.bool)
    _, moved_mask, _ = apply_motion(image, mask, ignore, Motion(translate=(5.0, -3.0)))
    assert np.allclose(centroid(moved_mask) - centroid(mask), [5, -3], atol=0.01)  # the affine's translation
    for motion in sample_motion(np.random.default_rng(3), 6, SIDE)[1:]:  # rotation, scale, shear, translation
        warped, warped_mask, warped_ignore = apply_motion(image, mask, ignore, motion)
        painted = warped[0].numpy() > 127
        assert iou(painted, warped_mask.numpy() > 0) > 0.85
        assert np.abs(centroid(painted) - centroid(warped_mask)).max() < 0.75
        assert warped_ignore.any() == (abs(motion.angle) > 0.5 or max(map(abs, motion.translate)) > 0.5)


def test_simulated_clips_are_seeded_and_hand_on_perturbed_masks(tmp_path):
    split = open_object_split(blob_dataset(tmp_path / "blobs"), "train", val_fraction=0.2)
    clips = SimulatedClips([split], SIDE, frames=4)
    a, b, c = clips[(1, 7)], clips[(1, 7)], clips[(1, 8)]
    assert a[0].shape == (4, 3, SIDE, SIDE) and a[1]["masks"].shape == (4, SIDE, SIDE)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1]["given"], b[1]["given"])
    assert not torch.equal(a[0], c[0])
    masks, given = a[1]["masks"].numpy() > 0, a[1]["given"].numpy() > 0
    assert np.array_equal(given[0], masks[0])  # the anchor's own truth
    assert all(iou(given[k], masks[k - 1]) > 0.3 for k in range(1, 4))  # frame k gets frame k-1's (perturbed) mask
    assert not all(np.array_equal(masks[k], masks[0]) for k in range(1, 4))  # the object moves


# --- the model --------------------------------------------------------------------------------------------
def small_tracker(**kw) -> MemoryTracker:
    torch.manual_seed(0)
    return MemoryTracker(channels=16, **kw).eval()


def test_memory_tracker_shapes_and_memory_matters():
    model = small_tracker()
    x = torch.randn(2, 3, SIDE, SIDE)
    with torch.no_grad():
        logits, scores = model(x)
        assert logits.shape == (2, 4, SIDE // 4, SIDE // 4) and scores.shape == (2, 4)
        features = model.embed(x[:1])
        disc = torch.zeros(1, 1, SIDE, SIDE)
        disc[..., 20:40, 20:44] = 1
        keys, mask = model.memory_entry(features, disc)
        assert keys.shape == (1, 32, SIDE // 16, SIDE // 16) and mask.shape == (1, 1, SIDE // 16, SIDE // 16)
        assert torch.allclose(keys.norm(dim=1), torch.ones(1))
        prev = (disc * 2 - 1) * 10
        memory = {"keys": torch.stack([keys, keys], 1), "masks": torch.stack([mask, mask], 1)}
        # an untrained memory path (its last conv starts at zero) leaves the click model's answer as it is
        click, _ = model.click.decode(features, None, None, None, prev)
        assert torch.allclose(model.decode(features, None, None, None, prev, memory)[0], click, atol=1e-5)
        torch.nn.init.normal_(model.memory_in[-1].weight, std=0.5)  # as after training
        with_disc, _ = model.decode(features, None, None, None, prev, memory)
        other = {"keys": memory["keys"], "masks": torch.stack([1 - mask, mask], 1)}  # another anchor mask
        assert (model.decode(features, None, None, None, prev, other)[0] - with_disc).abs().max() > 1e-3


def test_memory_read_out_follows_appearance():
    """The attention read-out is the mask of the memory positions that look like the query position."""
    keys = F.normalize(torch.tensor([[1.0, 0.0], [0.0, 1.0]]).T.reshape(1, 1, 2, 1, 2), dim=2)  # 2 positions
    masks = torch.tensor([1.0, 0.0]).reshape(1, 1, 1, 1, 2)
    query = F.normalize(torch.tensor([[0.0, 1.0], [1.0, 0.0]]).T.reshape(1, 2, 1, 2), dim=1)  # swapped
    out = read_memory(query, keys, masks, torch.tensor(50.0))
    assert out.shape == (1, 3, 1, 2)
    assert out[0, 0, 0, 0] < 0.01 and out[0, 0, 0, 1] > 0.99  # read-out: the mask where the key matches
    assert torch.allclose(out[0, 1, 0], torch.tensor([0.0, 1.0]))  # best cosine among the object's positions
    assert torch.allclose(out[0, 2, 0], torch.tensor([1.0, 0.0]))  # and among the background's


# --- training -----------------------------------------------------------------------------------------------
def click_checkpoint(path: Path) -> Path:
    torch.manual_seed(1)
    model = ClickSeg(channels=16)
    ckpt = make_checkpoint(model, {"name": "click_seg", "args": {"num_classes": 1, "channels": 16}},
                           ClassTable(["object"], [(220, 60, 60)]),
                           {"mean": MEAN, "std": STD, "resize": "longer_side_square", "size": SIDE}, {}, 1, {})
    atomic_save({**ckpt, "task": "prompt"}, path)
    return path


def test_training_writes_a_best_pt_that_tracks_on_its_own(tmp_path):
    data = blob_dataset(tmp_path / "blobs", count=7)
    init = click_checkpoint(tmp_path / "click.pt")
    run = seglab.train(task="video", model="memory_tracker", data=str(data), init=str(init), imgsz=SIDE, epochs=1,
                       batch=2, clip_frames=3, val_fraction=0.15, project=str(tmp_path / "runs"), name="mem",
                       workers=0, precision="fp32", samples=0, verbose=False)
    with open(Path(run) / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1 and float(rows[0]["val_j_and_f"]) >= 0
    ckpt = torch.load(Path(run) / "best.pt", weights_only=True)
    assert ckpt["task"] == "video" and ckpt["arch"]["args"]["channels"] == 16  # the click checkpoint's width
    start = torch.load(init, weights_only=True)["model"]
    name = "mask_head.weight"
    assert not torch.equal(ckpt["model"][f"click.{name}"], start[name])  # trained from the click weights
    tracker = Tracker(Path(run) / "best.pt", device="cpu")  # the file alone rebuilds it
    assert isinstance(tracker.propagator, MemoryPropagator)
    assert isinstance(Tracker(init, device="cpu").propagator, RepromptPropagator)


def test_training_refuses_davis(tmp_path):
    root = tmp_path / "DAVIS"
    (root / "JPEGImages" / "480p" / "a").mkdir(parents=True)
    (root / "Annotations" / "480p" / "a").mkdir(parents=True)
    with pytest.raises(Exception, match="evaluation set"):
        seglab.train(task="video", model="memory_tracker", data=str(root), imgsz=SIDE, epochs=1, verbose=False,
                     project=str(tmp_path / "runs"))


# --- tracking -----------------------------------------------------------------------------------------------
class ReadOutTracker(MemoryTracker):
    """The decoder replaced by the memory read-out itself: the object is where the anchor's attention read-out
    is above 0.5, and the keys are the pixels' mean colours per stride-8 cell (a random-init encoder's features
    are nearly constant): tracking depends on the memory path alone (memory entries, read-out, which frames the
    propagator remembers), deterministically."""

    def embed(self, x):
        return {**super().embed(x), "key": F.normalize(F.avg_pool2d(x, 8), dim=1)}

    def decode(self, features, points, labels, boxes=None, prev_logits=None, memory=None):
        if memory is None:
            return super().decode(features, points, labels, boxes, prev_logits)
        read = read_memory(features["key"], memory["keys"][:, :1], memory["masks"][:, :1], self.log_scale.exp())
        logits = F.interpolate((read[:, :1] - 0.5) * 20, size=features["s4"].shape[-2:], mode="bilinear")
        return logits.repeat(1, 4, 1, 1), torch.zeros(logits.shape[0], 4)


def disc(cx: float, cy: float, r: float, side: int = 128) -> np.ndarray:
    yy, xx = np.mgrid[:side, :side]
    return (xx + 0.5 - cx) ** 2 + (yy + 0.5 - cy) ** 2 <= r * r


def two_disc_clip(frames: int = 10, side: int = 128):
    """A red disc moving right by 2 px a frame and a blue one moving down, on grey."""
    out, red, blue = [], [], []
    for t in range(frames):
        r, b = disc(40 + 2 * t, 44, 20, side), disc(88, 30 + 2 * t, 18, side)
        image = np.full((side, side, 3), 120, np.uint8)
        image[r], image[b] = (220, 40, 40), (40, 60, 220)
        out.append(image)
        red.append(r)
        blue.append(b)
    return out, red, blue


def read_out_tracker() -> Tracker:
    torch.manual_seed(0)
    model = ReadOutTracker(channels=16, memory_pool=1)
    return Tracker(MemoryBackend(model, 128, MEAN, STD, "cpu"))


def test_tracker_follows_a_moving_disc_by_its_memory():
    from seglab.tasks.video.clip_val import ArrayFrames

    frames, red, _ = two_disc_clip()
    tracker = read_out_tracker()
    state = tracker.init_state(ArrayFrames(frames))
    tracker.add_prompt(state, frame=0, obj_id=1, mask=red[0])
    scores = [iou(masks[0], red[f]) for f, _, masks in tracker.propagate(state)]
    assert len(scores) == 10 and min(scores[1:]) > 0.8


def test_a_correction_re_anchors_the_memory_from_its_frame():
    from seglab.tasks.video.clip_val import ArrayFrames

    frames, red, blue = two_disc_clip()
    tracker = read_out_tracker()
    state = tracker.init_state(ArrayFrames(frames))
    tracker.add_prompt(state, frame=0, obj_id=1, mask=red[0])
    first = {f: masks[0] for f, _, masks in tracker.propagate(state)}
    assert all(iou(first[f], red[f]) > 0.8 for f in range(1, 10))
    tracker.add_prompt(state, frame=5, obj_id=1, mask=blue[5])  # "no, this one" on frame 5
    again = {f: masks[0] for f, _, masks in tracker.propagate(state, start=5)}
    assert sorted(again) == list(range(5, 10)) and np.array_equal(again[5], blue[5])
    assert all(iou(again[f], blue[f]) > 0.8 for f in range(6, 10))
    assert all(np.array_equal(state.mask(f, 1), first[f]) for f in range(1, 5))  # frames before stay
    assert sorted(state.memory["objects"][1].anchors) == [0, 5]  # bounded: one entry per prompt
    back = {f: masks[0] for f, _, masks in tracker.propagate(state, start=4, reverse=True)}
    assert all(iou(back[f], blue[f]) > 0.8 for f in range(1, 5))  # backwards from the correction: anchored on it
    assert np.array_equal(back[0], red[0])  # frame 0's prompt stands
