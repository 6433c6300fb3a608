"""Stable instance ids across the frames of a video: each frame's instances matched to the previous frame's.

`InstanceTracks.update(prediction)` takes one frame's instances (an `InstancePrediction`: id map, scores best
first, labels) and gives every instance a track id:
- candidates are pairs (an instance of the previous frame, one of this frame) of the same class whose masks
  overlap with IoU >= `min_iou` (0.3);
- among them a one-to-one assignment maximising the summed IoU (Hungarian,
  scipy.optimize.linear_sum_assignment), solved per connected group of candidates, so a frame with
  thousands of instances (tiled inference) never builds a thousands x thousands matrix;
- a matched instance takes the track's id; any other starts a new track with the next unused id (ids are
  never reused); a track with no match in this frame ends (no re-identification after a gap).
The IoUs come from one joint count of the two id maps (the instances of a frame never overlap), so a frame
costs O(pixels) plus the small assignments. With `smooth` = a > 0 a matched track's score is the exponential
moving average a x its previous score + (1 - a) x this frame's; a new track starts at its own score.
Memory: the previous frame's id map and one id, score and label per live track, whatever the video length.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from seglab.inference.instance import InstancePrediction

MIN_IOU = 0.3


@dataclass
class TrackedFrame:
    """One frame's instances with their tracks: `ids` int32 [H, W] holds track ids (0 background);
    `track_ids`, `scores` (smoothed) and `labels` are per instance, in the prediction's order."""

    ids: np.ndarray
    track_ids: np.ndarray
    scores: np.ndarray
    labels: np.ndarray

    def drawn(self, min_score: float) -> TrackedFrame:
        """The instances whose (smoothed) score is >= min_score; the others become background."""
        keep = self.scores >= min_score
        ids = np.where(np.isin(self.ids, self.track_ids[keep]), self.ids, 0).astype(self.ids.dtype)
        return TrackedFrame(ids, self.track_ids[keep], self.scores[keep], self.labels[keep])

    def as_prediction(self) -> InstancePrediction:
        """The same instances as an `InstancePrediction` (ids 1..M in this frame's order), for drawing."""
        order = np.argsort(self.track_ids)
        where = np.searchsorted(self.track_ids[order], self.ids).clip(0, max(len(order) - 1, 0))
        ids = np.where(self.ids > 0, order[where] + 1 if len(order) else 0, 0).astype(np.int32)
        return InstancePrediction(ids, self.scores, self.labels)


def overlaps(previous: np.ndarray, current: np.ndarray, n_previous: int, n_current: int):
    """(previous index, current index, IoU) of every pair of instances sharing pixels; 0-based indices of
    the instances 1..n of two non-overlapping id maps of the same size."""
    both = (previous > 0) & (current > 0)
    pairs, inter = np.unique(previous[both].astype(np.int64) * (n_current + 1) + current[both], return_counts=True)
    rows, cols = np.divmod(pairs, n_current + 1)
    area_previous = np.bincount(previous.ravel(), minlength=n_previous + 1)
    area_current = np.bincount(current.ravel(), minlength=n_current + 1)
    ious = inter / (area_previous[rows] + area_current[cols] - inter)
    return rows - 1, cols - 1, ious


def assign(rows: np.ndarray, cols: np.ndarray, ious: np.ndarray, n_rows: int, n_cols: int) -> np.ndarray:
    """int64 [n_cols]: the row each column is matched to (-1: none), maximising the summed IoU of the
    candidate pairs (rows[k], cols[k]); one Hungarian assignment per connected group of candidates."""
    matched = np.full(n_cols, -1, np.int64)
    if not len(rows):
        return matched
    graph = coo_matrix((np.ones(len(rows)), (rows, n_rows + cols)), shape=(n_rows + n_cols,) * 2)
    _, group = connected_components(graph, directed=False)
    pair_group = group[rows]
    for g in np.unique(pair_group):
        mine = pair_group == g
        r, c = np.unique(rows[mine], return_inverse=True), np.unique(cols[mine], return_inverse=True)
        score = np.zeros((len(r[0]), len(c[0])))
        score[r[1], c[1]] = ious[mine]
        picked_rows, picked_cols = linear_sum_assignment(score, maximize=True)
        real = score[picked_rows, picked_cols] > 0  # a pair that is no candidate is no match
        matched[c[0][picked_cols[real]]] = r[0][picked_rows[real]]
    return matched


class InstanceTracks:
    """The tracks alive after the last frame given to `update` (see the module docstring)."""

    def __init__(self, smooth: float = 0.0, min_iou: float = MIN_IOU):
        if not 0 <= smooth < 1:
            raise ValueError(f"smooth={smooth}: expected a fraction in [0, 1) (0 = no score smoothing)")
        self.smooth, self.min_iou = smooth, min_iou
        self.next_id = 1
        self.previous: np.ndarray | None = None  # the last frame's id map (instance indices 1..n, not track ids)
        self.track_ids = np.zeros(0, np.int64)
        self.scores = np.zeros(0, np.float32)
        self.labels = np.zeros(0, np.int64)

    def update(self, prediction: InstancePrediction) -> TrackedFrame:
        n = len(prediction)
        matched = np.full(n, -1, np.int64)
        if self.previous is not None and self.previous.shape == prediction.ids.shape and n and len(self.track_ids):
            rows, cols, ious = overlaps(self.previous, prediction.ids, len(self.track_ids), n)
            keep = (ious >= self.min_iou) & (self.labels[rows] == prediction.labels[cols])
            matched = assign(rows[keep], cols[keep], ious[keep], len(self.track_ids), n)
        old = matched >= 0
        track_ids = np.empty(n, np.int64)
        track_ids[old] = self.track_ids[matched[old]]
        track_ids[~old] = np.arange(self.next_id, self.next_id + int((~old).sum()))
        self.next_id += int((~old).sum())
        scores = np.asarray(prediction.scores, np.float32).copy()
        scores[old] = self.smooth * self.scores[matched[old]] + (1 - self.smooth) * scores[old]
        self.previous, self.track_ids, self.scores = prediction.ids, track_ids, scores
        self.labels = np.asarray(prediction.labels, np.int64)
        lookup = np.concatenate([[0], track_ids]).astype(np.int32)  # instance index -> track id
        return TrackedFrame(lookup[prediction.ids], track_ids, scores, self.labels)
