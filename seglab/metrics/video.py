"""Video object segmentation: DAVIS region similarity J and boundary F-measure F, streamed per frame.

Definitions follow the DAVIS benchmark (Perazzi et al., CVPR 2016; Pont-Tuset et al. 2017) as
its official ``davis2017-evaluation`` code computes them, for one object on one frame:
- J = |truth & pred| / |truth | pred| over non-void pixels; 1 when both are empty.
- F: one-pixel boundary maps of truth and prediction (void pixels set to background first): a
  pixel is a boundary pixel when it differs from its east, south or south-east neighbour inside
  the image. A boundary pixel is matched when the other map has a boundary pixel within
  ``bound_pix`` (Euclidean, inclusive, i.e. dilation by a disk), ``bound_pix = ceil(bound_th *
  image diagonal)`` for ``bound_th < 1`` (default 0.008), else ``bound_th`` pixels. P = matched
  predicted / predicted boundary pixels, R = matched true / true boundary pixels,
  F = 2PR / (P + R) (0 if P + R = 0); 1 when neither map has a boundary pixel, 0 when only one has.
Per object over its frames: mean, recall (share of frames > 0.5) and decay (mean of the first
quarter minus mean of the last quarter, DAVIS's four overlapping bins). The reported means are
over all objects of all videos; J&F = (J mean + F mean) / 2. ``skip_first_last=True`` (default, as
davis2017-evaluation) leaves each video's first and last processed frame out.
"""
from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np
import torch

from .boundary import NONE, _matched, disk_offsets
from .evaluator import require


def davis_boundary(mask: np.ndarray) -> np.ndarray:
    """One-pixel boundary map of a bool mask: differs from its E, S or SE neighbour (inside the image)."""
    m = np.asarray(mask, bool)
    b = np.zeros(m.shape, bool)
    b[:, :-1] |= m[:, :-1] != m[:, 1:]
    b[:-1, :] |= m[:-1, :] != m[1:, :]
    b[:-1, :-1] |= m[:-1, :-1] != m[1:, 1:]
    return b


def bound_radius(shape: tuple[int, int], bound_th: float = 0.008) -> float:
    """DAVIS's tolerance in pixels: ``bound_th`` itself when >= 1, else ceil(bound_th * diagonal)."""
    return float(bound_th) if bound_th >= 1 else float(math.ceil(bound_th * math.hypot(*shape)))


def _count_within(points: np.ndarray, ref: np.ndarray, radius: float) -> int:
    """How many True pixels of ``points`` have a True pixel of ``ref`` within ``radius`` (both [H,W] bool)."""
    if not points.any() or not ref.any():
        return 0
    pad = int(math.floor(radius))
    width = ref.shape[1] + 2 * pad
    padded = np.full((ref.shape[0] + 2 * pad, width), NONE, dtype=np.int32)
    padded[pad:pad + ref.shape[0], pad:pad + ref.shape[1]][ref] = 0
    ys, xs = np.nonzero(points)
    offsets = disk_offsets(radius)
    flat = offsets[:, 0] * width + offsets[:, 1]
    return int(_matched((ys + pad) * width + xs + pad, np.zeros(len(ys), np.int32), padded, flat).sum())


def frame_j(truth: np.ndarray, pred: np.ndarray, void: np.ndarray | None = None) -> float:
    keep = np.ones(truth.shape, bool) if void is None else ~void
    union = int(((truth | pred) & keep).sum())
    return 1.0 if union == 0 else int((truth & pred & keep).sum()) / union


def frame_f(truth: np.ndarray, pred: np.ndarray, void: np.ndarray | None = None, bound_th: float = 0.008) -> float:
    if void is not None:
        truth, pred = truth & ~void, pred & ~void
    bt, bp = davis_boundary(truth), davis_boundary(pred)
    n_t, n_p = int(bt.sum()), int(bp.sum())
    if n_t == 0 and n_p == 0:
        return 1.0
    if n_t == 0 or n_p == 0:
        return 0.0
    radius = bound_radius(truth.shape, bound_th)
    precision = _count_within(bp, bt, radius) / n_p
    recall = _count_within(bt, bp, radius) / n_t
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def sequence_statistics(values: np.ndarray) -> tuple[float | None, float | None, float | None]:
    """(mean, recall = share > 0.5, decay) of one object's per-frame values, as DAVIS's ``db_statistics``."""
    values = np.asarray(values, np.float64)
    if values.size == 0:
        return None, None, None
    edges = np.round(np.linspace(1, len(values), 5) + 1e-10).astype(np.int64) - 1
    first, last = values[edges[0]:edges[1] + 1], values[edges[3]:edges[4] + 1]
    return float(values.mean()), float((values > 0.5).mean()), float(first.mean() - last.mean())


def _as_ids(x: Any, name: str) -> np.ndarray:
    arr = np.asarray(x.cpu()) if isinstance(x, torch.Tensor) else np.asarray(x)
    if arr.ndim != 2 or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name} must be an integer [H,W] object-id map (0 = background), got {arr.dtype} {arr.shape}")
    return arr.astype(np.int64)


def _mean(values) -> float | None:
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


class VideoObjectEvaluator:
    """Streaming DAVIS J&F: ``process`` one frame at a time, any number of videos, in any frame order.

    target: ``video`` (name), ``frame`` (index), ``object_ids`` int ``[H,W]`` (0 background,
    ``void_id`` void); prediction: ``object_ids`` int ``[H,W]``. The objects of a video are the ids
    that appear in its truth; on a frame where an object is in neither map it scores J = F = 1.
    Only two floats per object and frame are kept.
    """

    def __init__(self, bound_th: float = 0.008, skip_first_last: bool = True, void_id: int | None = 255):
        if bound_th <= 0:
            raise ValueError(f"bound_th must be > 0 (fraction of the diagonal if < 1, pixels otherwise), got {bound_th}")
        self.bound_th, self.skip_first_last, self.void_id = bound_th, skip_first_last, void_id
        self.reset()

    def reset(self) -> None:
        self.frames: dict[str, dict[int, dict[int, tuple[float, float]]]] = {}
        self.objects: dict[str, set[int]] = {}

    def process(self, target: Mapping[str, Any], prediction: Mapping[str, Any]) -> None:
        where = "VideoObjectEvaluator"
        video, frame = str(require(target, "video", f"{where} target")), int(require(target, "frame", f"{where} target"))
        truth = _as_ids(require(target, "object_ids", f"{where} target"), "target object_ids")
        pred = _as_ids(require(prediction, "object_ids", f"{where} prediction"), "prediction object_ids")
        if truth.shape != pred.shape:
            raise ValueError(f"video {video!r} frame {frame}: prediction is {pred.shape}, truth is {truth.shape}")
        if frame in self.frames.get(video, {}):
            raise ValueError(f"video {video!r} frame {frame} was already processed")
        void = truth == self.void_id if self.void_id is not None else None
        truth_objects = set(np.unique(truth).tolist()) - {0, self.void_id}
        scores = {}
        for obj in truth_objects | (set(np.unique(pred).tolist()) - {0, self.void_id}):
            t, p = truth == obj, pred == obj
            scores[obj] = (frame_j(t, p, void), frame_f(t, p, void, self.bound_th))
        self.frames.setdefault(video, {})[frame] = scores
        self.objects.setdefault(video, set()).update(truth_objects)

    def evaluate(self) -> dict:
        """``j_and_f_mean``, ``j_mean``, ``j_recall``, ``j_decay``, ``f_mean``, ``f_recall``, ``f_decay``,
        ``per_object`` (one row per video and object), ``per_video``, ``num_objects``, ``num_videos``."""
        rows = []
        for video in sorted(self.frames):
            order = sorted(self.frames[video])
            if self.skip_first_last:
                order = order[1:-1]
            for obj in sorted(self.objects[video]):
                j = [self.frames[video][f].get(obj, (1.0, 1.0))[0] for f in order]
                f = [self.frames[video][f].get(obj, (1.0, 1.0))[1] for f in order]
                row = {"video": video, "object": obj, "num_frames": len(order)}
                for name, values in (("j", j), ("f", f)):
                    row.update(zip((f"{name}_mean", f"{name}_recall", f"{name}_decay"), sequence_statistics(values)))
                row["j_and_f_mean"] = None if row["j_mean"] is None else (row["j_mean"] + row["f_mean"]) / 2
                rows.append(row)
        out = {k: _mean(r[k] for r in rows) for k in ("j_mean", "j_recall", "j_decay", "f_mean", "f_recall", "f_decay")}
        out["j_and_f_mean"] = None if out["j_mean"] is None else (out["j_mean"] + out["f_mean"]) / 2
        out["per_video"] = {}
        for video in sorted(self.frames):
            mine = [r for r in rows if r["video"] == video]
            jm, fm = _mean(r["j_mean"] for r in mine), _mean(r["f_mean"] for r in mine)
            out["per_video"][video] = {"j_mean": jm, "f_mean": fm,
                                       "j_and_f_mean": None if jm is None else (jm + fm) / 2}
        out.update({"per_object": rows, "num_objects": len(rows), "num_videos": len(self.frames),
                    "bound_th": self.bound_th, "skip_first_last": self.skip_first_last})
        return out
