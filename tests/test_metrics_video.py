"""DAVIS J&F: hand-computed frames, DAVIS's statistics, streaming over videos, and a dilation cross-check."""
import math

import numpy as np
import pytest
from scipy import ndimage

from seglab.metrics.evaluator import Evaluator
from seglab.metrics.video import (VideoObjectEvaluator, bound_radius, davis_boundary, frame_f, frame_j,
                                  sequence_statistics)


def square(h, w, y0, x0, y1, x1):
    m = np.zeros((h, w), bool)
    m[y0:y1, x0:x1] = True
    return m


def test_j_hand_cases():
    t = square(8, 8, 2, 2, 6, 6)
    assert frame_j(t, square(8, 8, 2, 3, 6, 7)) == pytest.approx(12 / 20)
    assert frame_j(np.zeros((4, 4), bool), np.zeros((4, 4), bool)) == 1.0     # empty-empty frame
    assert frame_j(t, np.zeros_like(t)) == 0.0
    void = square(8, 8, 0, 6, 8, 8)   # the prediction's extra column lies on void
    assert frame_j(t, square(8, 8, 2, 2, 6, 7), void) == pytest.approx(1.0)


def test_boundary_map_is_davis_one_pixel_map():
    m = square(5, 5, 1, 1, 3, 3)
    expected = {(0, 0), (0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1), (2, 2)}
    assert set(zip(*np.nonzero(davis_boundary(m)))) == expected
    assert not davis_boundary(np.ones((6, 7), bool)).any()   # the image border is no boundary


def test_bound_radius():
    assert bound_radius((480, 854)) == 8.0        # ceil(0.008 * 979.7)
    assert bound_radius((480, 854), 3) == 3.0     # >= 1: pixels


def test_f_hand_cases():
    t = square(10, 10, 0, 5, 10, 10)              # boundary: column 4
    assert frame_f(t, t) == 1.0
    assert frame_f(t, square(10, 10, 0, 7, 10, 10), bound_th=1) == 0.0   # 2 px away
    assert frame_f(t, square(10, 10, 0, 7, 10, 10), bound_th=2) == 1.0
    # prediction: the top half only. Its boundary: (0..4, 4) and (4, 5..9); within 1 px of the truth's
    # column 4: the five column pixels and (4,5) -> P = 6/10; truth rows 0..5 are within 1 px -> R = 6/10.
    assert frame_f(t, square(10, 10, 0, 5, 5, 10), bound_th=1) == pytest.approx(0.6)
    empty = np.zeros((10, 10), bool)
    assert frame_f(empty, empty) == 1.0 and frame_f(t, empty) == 0.0 and frame_f(empty, t) == 0.0


def brute_f(t, p, radius):
    bt, bp = davis_boundary(t), davis_boundary(p)
    if not bt.any() and not bp.any():
        return 1.0
    if not bt.any() or not bp.any():
        return 0.0
    near_t = ndimage.distance_transform_edt(~bt) <= radius
    near_p = ndimage.distance_transform_edt(~bp) <= radius
    prec, rec = (bp & near_t).sum() / bp.sum(), (bt & near_p).sum() / bt.sum()
    return 0.0 if prec + rec == 0 else 2 * prec * rec / (prec + rec)


@pytest.mark.parametrize("seed", range(10))
def test_f_matches_distance_transform(seed):
    rng = np.random.default_rng(seed)
    low = rng.random((2, 6, 8)) > 0.5
    t, p = (np.kron(x, np.ones((7, 7), bool)) for x in low)
    p = np.roll(p, int(rng.integers(-3, 4)), axis=1)
    radius = bound_radius(t.shape)
    assert frame_f(t, p) == pytest.approx(brute_f(t, p, radius))


def test_sequence_statistics_as_davis():
    mean, recall, decay = sequence_statistics(np.arange(8) / 7)
    # DAVIS bins for 8 frames: [0:3], [2:5], [4:6], [5:8] -> decay = mean(0,1,2)/7 - mean(5,6,7)/7
    assert mean == pytest.approx(0.5) and recall == 0.5 and decay == pytest.approx(1 / 7 - 6 / 7)
    assert sequence_statistics([]) == (None, None, None)


def ids(h, w, *objects):
    out = np.zeros((h, w), np.int64)
    for value, mask in objects:
        out[mask] = value
    return out


def test_evaluator_streams_frames_and_objects():
    h = w = 16
    a, b = square(h, w, 2, 2, 8, 8), square(h, w, 9, 9, 15, 15)
    shifted = square(h, w, 2, 3, 8, 9)                     # J = 30 / 42
    ev = VideoObjectEvaluator(bound_th=1)
    assert isinstance(ev, Evaluator)
    frames = [  # (frame, truth, prediction); given out of order
        (2, ids(h, w, (1, a), (2, b)), ids(h, w, (1, shifted), (2, b), (7, square(h, w, 0, 14, 2, 16)))),
        (0, ids(h, w, (1, a), (2, b)), ids(h, w)),          # first frame: skipped
        (1, ids(h, w, (1, a)), ids(h, w, (1, a))),          # object 2 absent from both: J = F = 1
        (3, ids(h, w, (1, a), (2, b)), ids(h, w)),          # last frame: skipped
    ]
    for frame, t, p in frames:
        ev.process({"video": "v", "frame": frame, "object_ids": t}, {"object_ids": p})
    out = ev.evaluate()
    obj = {r["object"]: r for r in out["per_object"]}
    assert set(obj) == {1, 2}                               # id 7 exists only in the prediction: not an object
    assert obj[1]["j_mean"] == pytest.approx((1 + 30 / 42) / 2) and obj[1]["num_frames"] == 2
    assert obj[2]["j_mean"] == 1.0 and obj[2]["f_mean"] == 1.0
    assert obj[1]["j_recall"] == 1.0
    assert out["j_mean"] == pytest.approx((obj[1]["j_mean"] + 1.0) / 2)
    assert out["j_and_f_mean"] == pytest.approx((out["j_mean"] + out["f_mean"]) / 2)
    assert out["per_video"]["v"]["j_mean"] == pytest.approx(out["j_mean"])
    keep_all = VideoObjectEvaluator(bound_th=1, skip_first_last=False)
    for frame, t, p in frames:
        keep_all.process({"video": "v", "frame": frame, "object_ids": t}, {"object_ids": p})
    everything = {r["object"]: r for r in keep_all.evaluate()["per_object"]}
    assert everything[1]["j_mean"] == pytest.approx((0 + 1 + 30 / 42 + 0) / 4) and everything[1]["num_frames"] == 4


def test_means_are_over_objects_of_all_videos():
    h = w = 12
    a = square(h, w, 2, 2, 8, 8)
    ev = VideoObjectEvaluator(skip_first_last=False)
    ev.process({"video": "x", "frame": 0, "object_ids": ids(h, w, (1, a))}, {"object_ids": ids(h, w, (1, a))})
    ev.process({"video": "y", "frame": 0, "object_ids": ids(h, w, (1, a), (2, ~a))}, {"object_ids": ids(h, w)})
    out = ev.evaluate()
    assert out["num_objects"] == 3 and out["num_videos"] == 2
    assert out["j_mean"] == pytest.approx(1 / 3)            # objects score 1, 0, 0
    assert out["per_video"]["x"]["j_and_f_mean"] == 1.0 and out["per_video"]["y"]["j_mean"] == 0.0


def test_void_pixels_are_ignored():
    h = w = 12
    a = square(h, w, 2, 2, 8, 8)
    truth = ids(h, w, (1, a), (255, square(h, w, 2, 8, 8, 10)))
    ev = VideoObjectEvaluator(skip_first_last=False)
    ev.process({"video": "v", "frame": 0, "object_ids": truth}, {"object_ids": ids(h, w, (1, square(h, w, 2, 2, 8, 10)))})
    out = ev.evaluate()
    assert out["num_objects"] == 1 and out["j_mean"] == 1.0 and out["f_mean"] == 1.0


def test_bad_input():
    ev = VideoObjectEvaluator()
    t = {"video": "v", "frame": 0, "object_ids": np.zeros((4, 4), np.int64)}
    ev.process(t, {"object_ids": np.zeros((4, 4), np.int64)})
    with pytest.raises(ValueError, match="already processed"):
        ev.process(t, {"object_ids": np.zeros((4, 4), np.int64)})
    with pytest.raises(ValueError, match="integer"):
        ev.process({**t, "frame": 1}, {"object_ids": np.zeros((4, 4), np.float32)})
    with pytest.raises(KeyError, match="video"):
        ev.process({"frame": 1, "object_ids": t["object_ids"]}, {"object_ids": t["object_ids"]})
