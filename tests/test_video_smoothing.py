"""Temporal smoothing of video predictions (smooth=) and stable instance ids across frames.

Semantic: a fake model whose labels flicker on alternate frames; smooth=0.6 (a moving average of the
per-pixel probabilities) holds them, smooth=0 does not, and the written labels equal an independent moving
average of the per-frame probabilities the image path gives. Instance: discs whose detection order swaps, a
disc that moves, a disc that appears, checked on the written id PNGs; the Hungarian matching is checked
against a brute-force search."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from PIL import Image
from test_inference_common import tiny_checkpoint
from test_instance_tiling import CPU, DiscFinder, metadata, one_thread  # noqa: F401
from test_instance_video import decoded, write_video
from torch import nn

from seglab.cli import main
from seglab.data.spec import ClassTable
from seglab.inference.instance import (
    InstanceOptions,
    InstancePrediction,
    InstancePredictor,
)
from seglab.inference.instance_tracks import InstanceTracks
from seglab.inference.instance_video import predict_instance_video
from seglab.inference.predictor import InferenceOptions, Job, Predictor
from seglab.inference.video import predict_video

av = pytest.importorskip("av")
pytestmark = pytest.mark.usefixtures("one_thread")
FRAMES, HEIGHT, WIDTH = 8, 48, 64
HIGH, LOW = 200, 140  # the right half's grey level on even / odd frames: class 1 at p = 0.9, class 0 at p = 0.6


class GreyToClass(nn.Module):
    """Per pixel, class 1's logit grows with the grey level: logit(0.9) at HIGH, logit(0.4) at LOW."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        slope = (np.log(9) - np.log(0.4 / 0.6)) / (HIGH - LOW)
        one = (255 * x[:, :1] - LOW) * slope + np.log(0.4 / 0.6)
        return torch.cat([torch.zeros_like(one), one], 1)


def flicker_frames() -> list[np.ndarray]:
    """Dark left half (always class 0), right half HIGH on even frames and LOW on odd ones."""
    frames = []
    for t in range(FRAMES):
        frame = np.full((HEIGHT, WIDTH, 3), 30, np.uint8)
        frame[:, WIDTH // 2:] = HIGH if t % 2 == 0 else LOW
        frames.append(frame)
    return frames


def grey_predictor(**options) -> Predictor:
    meta = {"classes": ClassTable(["ground", "thing"], [(0, 0, 0), (255, 0, 0)]),
            "preprocess": {"mean": [0.0] * 3, "std": [1.0] * 3, "size": 32, "resize": "stretch"}}
    return Predictor(GreyToClass(), CPU, InferenceOptions(**options), metadata=meta)


def moving_average_labels(predictor: Predictor, frames: list[np.ndarray], smooth: float):
    """Labels and margins (best minus second probability) of a plain moving average of per-frame probabilities."""
    mean, out = None, []
    for frame in frames:
        probs = np.empty((predictor.num_classes, *frame.shape[:2]), np.float32)
        predictor.run([Job(frame, probs_out=probs)])
        mean = probs if mean is None else smooth * mean + (1 - smooth) * probs
        top = np.sort(mean, 0)
        out.append((mean.argmax(0), top[-1] - top[-2]))
    return out


def written_labels(out, stem: str) -> list[np.ndarray]:
    pngs = sorted((out / f"{stem}_frames").glob(f"{stem}_*.png"))
    assert [p.name for p in pngs] == [f"{stem}_{i:06d}.png" for i in range(len(pngs))]
    return [np.asarray(Image.open(p)) for p in pngs]


@pytest.mark.parametrize("mode", ["stretch", "tile"])
def test_smoothing_holds_flickering_labels_and_off_it_flickers(tmp_path, mode):
    clip = write_video(tmp_path / "flicker.mp4", flicker_frames())
    predictor = grey_predictor(mode=mode, tile=16, batch=3)
    _, frames = decoded(clip)
    inside = np.s_[4:-4, WIDTH // 2 + 4:-4]  # the right half away from its edge (codec ringing)
    for smooth in (0.0, 0.6):
        out = tmp_path / f"smooth{smooth}"
        out.mkdir()
        assert predict_video(predictor, clip, out, save_frames=True, save_probs=True, smooth=smooth) == FRAMES
        labels = written_labels(out, "flicker")
        right = [np.bincount(ids[inside].ravel(), minlength=2).argmax() for ids in labels]
        assert all((ids[:, :WIDTH // 2 - 4] == 0).all() for ids in labels)
        if smooth:
            assert right == [1] * FRAMES  # held through every dark frame
        else:
            assert right == [1 - t % 2 for t in range(FRAMES)]  # flickers, frame by frame
        for ids, (want, margin) in zip(labels, moving_average_labels(predictor, frames, smooth)):
            sure = margin > 1e-4
            assert np.array_equal(ids[sure], want[sure])
        saved = np.load(out / "flicker_frames" / "flicker_000005_probs.npy").astype(np.float32)
        assert np.array_equal(saved.argmax(0)[inside], labels[5][inside])  # the probabilities the labels came from
        _, overlay = decoded(out / "flicker_overlay.mp4")
        assert len(overlay) == FRAMES


def test_the_smooth_key_reaches_video_predict(tmp_path):
    clip = write_video(tmp_path / "clip.mp4", [np.roll(f, 5 * t, axis=1) for t, f in enumerate(flicker_frames())])
    out = tmp_path / "out"
    assert main(["predict", f"model={tiny_checkpoint()}", f"source={clip}", f"out={out}", "save_frames=true",
                 "smooth=0.8", "verbose=false"]) == 0
    _, frames = decoded(clip)
    for ids, (want, margin) in zip(written_labels(out, "clip"), moving_average_labels(Predictor(tiny_checkpoint()),
                                                                                      frames, 0.8)):
        assert np.array_equal(ids[margin > 1e-4], want[margin > 1e-4])
    assert main(["predict", f"model={tiny_checkpoint()}", f"source={clip}", f"out={out}", "smooth=1",
                 "verbose=false"]) != 0


# --- instance: stable ids ---------------------------------------------------------------------------------

def disc_video(discs_per_frame: list[list[tuple[int, int, int, int]]], height: int = 64, width: int = 96):
    """Frames with discs (cy, cx, r, grey) on a dark ground."""
    frames = []
    yy, xx = np.mgrid[:height, :width]
    for discs in discs_per_frame:
        frame = np.full((height, width, 3), 20, np.uint8)
        for cy, cx, r, grey in discs:
            frame[(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = grey
        frames.append(frame)
    return frames


def disc_predictor(**options) -> InstancePredictor:
    return InstancePredictor(DiscFinder(), CPU, InstanceOptions(**options), metadata(96))


def test_ids_follow_the_discs_when_their_detection_order_swaps(tmp_path):
    frames = disc_video([[(20, 25, 9, 250 if t % 2 else 180), (40, 70, 9, 180 if t % 2 else 250)]
                         for t in range(FRAMES)])
    clip = write_video(tmp_path / "swap.mp4", frames)
    predictor = disc_predictor()
    _, pixels = decoded(clip)
    per_image = [predictor.predict(p).ids[20, 25] for p in pixels]
    assert per_image == [2 - t % 2 for t in range(FRAMES)]  # as images, the discs trade ids every frame
    assert predict_instance_video(predictor, clip, tmp_path, save_frames=True) == FRAMES
    ids = written_labels(tmp_path, "swap")
    assert {(i[20, 25], i[40, 70]) for i in ids} == {(ids[0][20, 25], ids[0][40, 70])}  # one id each, every frame
    assert ids[0][20, 25] != ids[0][40, 70] and 0 not in (ids[0][20, 25], ids[0][40, 70])


def test_a_moving_disc_keeps_its_id_and_a_new_disc_gets_a_new_one(tmp_path):
    appears = 4
    frames = disc_video([[(30, 15 + 3 * t, 8, 230), (45, 75, 8, 200)] + ([(15, 75, 6, 160)] if t >= appears else [])
                         for t in range(FRAMES)])
    clip = write_video(tmp_path / "move.mp4", frames)
    assert predict_instance_video(disc_predictor(), clip, tmp_path, save_frames=True) == FRAMES
    ids = written_labels(tmp_path, "move")
    moving = [i[30, 15 + 3 * t] for t, i in enumerate(ids)]
    still = [i[45, 75] for i in ids]
    new = [i[15, 75] for i in ids]
    assert len(set(moving)) == 1 and len(set(still)) == 1 and moving[0] != still[0] and 0 not in moving + still
    assert new[:appears] == [0] * appears and len(set(new[appears:])) == 1
    assert new[appears] not in (moving[0], still[0])
    _, overlay = decoded(tmp_path / "move_overlay.mp4")
    colour = [o[30, 15 + 3 * t].astype(int) for t, o in enumerate(overlay)]
    assert max(np.abs(c - colour[0]).max() for c in colour) < 40  # the same colour in every frame (codec noise)


def test_a_smoothed_score_keeps_a_disc_drawn_through_a_dim_frame(tmp_path):
    dim = 3
    frames = disc_video([[(30, 40, 9, 160 if t == dim else 235)] for t in range(FRAMES)])  # 0.63 on frame 3, else 0.92
    clip = write_video(tmp_path / "dim.mp4", frames)
    for smooth, drawn in ((0.0, False), (0.6, True)):
        out = tmp_path / f"s{smooth}"
        out.mkdir()
        predict_instance_video(disc_predictor(min_score=0.7), clip, out, save_frames=True, smooth=smooth)
        ids = written_labels(out, "dim")
        assert (ids[dim][30, 40] > 0) == drawn and all(i[30, 40] > 0 for t, i in enumerate(ids) if t != dim)


def test_a_same_place_object_of_another_class_is_a_new_track():
    ids = np.zeros((10, 10), np.int32)
    ids[2:6, 2:6] = 1
    tracks = InstanceTracks()
    first = tracks.update(InstancePrediction(ids, np.array([0.9]), np.array([0])))
    again = tracks.update(InstancePrediction(ids, np.array([0.9]), np.array([0])))
    other = tracks.update(InstancePrediction(ids, np.array([0.9]), np.array([1])))
    assert first.track_ids.tolist() == again.track_ids.tolist() == [1] and other.track_ids.tolist() == [2]


def strips(*bounds: int) -> InstancePrediction:
    """Instances 1, 2, ... as column strips [bounds[k], bounds[k + 1]) of a 4 x 16 image."""
    ids = np.zeros((4, 16), np.int32)
    for k, (start, stop) in enumerate(itertools.pairwise(bounds), start=1):
        ids[:, start:stop] = k
    return InstancePrediction(ids, np.linspace(0.9, 0.8, len(bounds) - 1), np.zeros(len(bounds) - 1, np.int64))


def test_the_assignment_is_the_best_overall_not_greedy():
    """A = [0, 12), B = [12, 16) then Y = [0, 4), X = [4, 16): IoU(A, X) = 0.5 is the best pair, but A-Y + B-X
    (1/3 + 1/3) beats A-X alone (B and Y overlap nowhere)."""
    tracks = InstanceTracks()
    a, b = tracks.update(strips(0, 12, 16)).track_ids
    y, x = tracks.update(strips(0, 4, 16)).track_ids
    assert (y, x) == (a, b)


def random_frame(boxes) -> InstancePrediction:
    """Boxes (y0, x0, y1, x1, label) painted best first, so instances do not overlap; all of them kept."""
    ids = np.zeros((24, 24), np.int32)
    kept = []
    for y0, x0, y1, x1, label in boxes:
        free = ids[y0:y1, x0:x1] == 0
        if free.any():
            kept.append(label)
            ids[y0:y1, x0:x1][free] = len(kept)
    return InstancePrediction(ids, np.linspace(0.9, 0.5, len(kept)), np.asarray(kept, np.int64))


def best_total_iou(previous: InstancePrediction, current: InstancePrediction) -> float:
    """Brute force: the largest summed IoU of any one-to-one matching of same-class pairs with IoU >= 0.3."""
    def iou(a, b):
        return (a & b).sum() / (a | b).sum()

    candidates = [[iou(p, c) if previous.labels[i] == current.labels[j] and iou(p, c) >= 0.3 else 0.0
                   for i, p in enumerate(previous.masks)] for j, c in enumerate(current.masks)]
    choices = [[None] + [i for i, v in enumerate(row) if v] for row in candidates]
    best = 0.0
    for pick in itertools.product(*choices):
        used = [i for i in pick if i is not None]
        if len(used) == len(set(used)):
            best = max(best, sum(candidates[j][i] for j, i in enumerate(pick) if i is not None))
    return best


def jittered(rng, box: tuple) -> tuple:
    """The box moved / resized by up to 3 px per side, its class changed now and then."""
    y0, x0, y1, x1, label = box
    y0, x0 = max(0, y0 + int(rng.integers(-3, 4))), max(0, x0 + int(rng.integers(-3, 4)))
    y1, x1 = max(y0 + 1, y1 + int(rng.integers(-3, 4))), max(x0 + 1, x1 + int(rng.integers(-3, 4)))
    return y0, x0, y1, x1, label if rng.random() > 0.15 else 1 - label


def test_matching_maximises_the_summed_iou_like_a_brute_force_search():
    rng = np.random.default_rng(0)
    checked = 0
    for _ in range(60):
        boxes = []
        for _ in range(4):
            y0, x0 = rng.integers(0, 18, 2)
            boxes.append((int(y0), int(x0), int(y0 + rng.integers(3, 10)), int(x0 + rng.integers(3, 10)),
                          int(rng.integers(0, 2))))
        moved = [jittered(rng, boxes[k]) for k in rng.permutation(4)[:int(rng.integers(2, 5))]]
        previous, current = random_frame(boxes), random_frame(moved)
        tracks = InstanceTracks()
        before = tracks.update(previous)
        after = tracks.update(current)
        matched = 0.0
        for j, track in enumerate(after.track_ids):
            if track in before.track_ids:
                i = int(np.flatnonzero(before.track_ids == track)[0])
                p, c = previous.masks[i], current.masks[j]
                assert previous.labels[i] == current.labels[j]
                matched += (p & c).sum() / (p | c).sum()
        want = best_total_iou(previous, current)
        assert matched == pytest.approx(want)
        new = after.track_ids[~np.isin(after.track_ids, before.track_ids)]
        assert (new > before.track_ids.max()).all() and len(set(after.track_ids)) == len(after.track_ids)
        checked += want > 0
    assert checked > 20  # most cases had something to match
