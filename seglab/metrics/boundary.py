"""Boundary F1 (BF) score, Csurka et al., BMVC 2013 (the "BF" column of SegNet's CamVid table).

For each image and each class c:
1. boundary pixels: a valid pixel of class c with a 4-neighbour of another *valid* label
   (done on the truth and on the prediction; the prediction is masked with the truth's
   ignore region first). Edges against ignored pixels and the image border are not boundaries,
   and no boundary pixel lies on an ignored pixel.
2. precision = share of predicted boundary pixels of c within ``theta`` (Euclidean, inclusive)
   of a true boundary pixel of c; recall = the converse; F1 = 2PR / (P + R).
   ``theta = tolerance * image diagonal`` (default 0.75 %).
3. classes in neither truth nor prediction are skipped; a class in only one of them scores 0;
   a class in both with no boundary pixel in either (it fills the valid area) scores 1, with
   boundary pixels in only one of them 0.
The image's BF is the mean over the classes scored; the reported BF is the mean over images
(images with no valid pixel are skipped); ``bf_per_class[c]`` is the mean over the images
where c was scored.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from .distributed import all_reduce_sum
from .scores import to_python

VOID = -1
NONE = -2  # "no boundary here" in the boundary label maps (never equal to a class)


def boundary_mask(labels: np.ndarray) -> np.ndarray:
    """Boundary pixels of a label map ``[H,W]`` whose ignored pixels are VOID (4-connectivity)."""
    valid = labels != VOID
    out = np.zeros(labels.shape, dtype=bool)
    for a, b in (((slice(None), slice(1, None)), (slice(None), slice(None, -1))),
                 ((slice(1, None), slice(None)), (slice(None, -1), slice(None)))):
        edge = (labels[a] != labels[b]) & valid[a] & valid[b]
        out[a] |= edge
        out[b] |= edge
    return out


def disk_offsets(radius: float) -> np.ndarray:
    """Integer offsets ``[K, 2]`` with Euclidean length <= radius, nearest first."""
    r = int(math.floor(radius))
    dy, dx = np.mgrid[-r:r + 1, -r:r + 1]
    d2 = (dy * dy + dx * dx).ravel()
    keep = d2 <= radius * radius + 1e-9
    order = np.argsort(d2[keep], kind="stable")
    return np.stack([dy.ravel()[keep][order], dx.ravel()[keep][order]], axis=1)


def _matched(points: np.ndarray, labels: np.ndarray, ref: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """For each point, is there a pixel of ``ref`` (padded boundary label map) with its label at an offset?

    Points are flat indices into the padded map; offsets are tried nearest first and matched
    points leave the search, so well-aligned boundaries cost only a few passes.
    """
    ref = ref.ravel()
    matched = np.zeros(len(points), dtype=bool)
    active = np.arange(len(points))
    for off in offsets:
        hit = ref[points[active] + off] == labels[active]
        matched[active[hit]] = True
        active = active[~hit]
        if active.size == 0:
            break
    return matched


def image_boundary_f1(pred: np.ndarray, target: np.ndarray, num_classes: int, ignore_index: int | None = 255,
                      tolerance: float = 0.0075) -> np.ndarray:
    """Per-class BF of one image ``[H,W]`` -> float array ``[C]``, NaN for classes not scored."""
    target = target.astype(np.int64)
    valid = np.ones(target.shape, bool) if ignore_index is None else target != ignore_index
    t = np.where(valid, target, VOID)
    p = np.where(valid, pred.astype(np.int64), VOID)
    for name, x in (("target", t), ("pred", p)):
        if x[valid].size and (x[valid].min() < 0 or x[valid].max() >= num_classes):
            raise ValueError(f"{name} has labels outside [0, {num_classes}) on valid pixels")
    scores = np.full(num_classes, np.nan)
    if not valid.any():
        return scores
    in_t = np.bincount(t[valid], minlength=num_classes) > 0
    in_p = np.bincount(p[valid], minlength=num_classes) > 0
    radius = tolerance * math.hypot(*target.shape)
    offsets = disk_offsets(radius)
    pad = int(math.floor(radius))
    width = target.shape[1] + 2 * pad
    flat_offsets = offsets[:, 0] * width + offsets[:, 1]
    maps, points, labels = [], [], []
    for x in (t, p):
        ys, xs = np.nonzero(boundary_mask(x))
        padded = np.full((x.shape[0] + 2 * pad, width), NONE, dtype=np.int32)
        padded[ys + pad, xs + pad] = x[ys, xs]
        maps.append(padded)
        points.append((ys + pad) * width + xs + pad)
        labels.append(x[ys, xs].astype(np.int32))
    # recall: truth boundary matched by prediction boundary; precision: the converse
    hit_t = _matched(points[0], labels[0], maps[1], flat_offsets)
    hit_p = _matched(points[1], labels[1], maps[0], flat_offsets)
    n_t = np.bincount(labels[0], minlength=num_classes)
    n_p = np.bincount(labels[1], minlength=num_classes)
    recall = np.bincount(labels[0][hit_t], minlength=num_classes) / np.maximum(n_t, 1)
    precision = np.bincount(labels[1][hit_p], minlength=num_classes) / np.maximum(n_p, 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    both = in_t & in_p
    f1 = np.where((n_t == 0) & (n_p == 0), 1.0, np.where((n_t == 0) | (n_p == 0), 0.0, f1))
    scores[in_t | in_p] = 0.0
    scores[both] = f1[both]
    return scores


class BoundaryF1:
    """Streaming Boundary F1: ``update(pred, target)`` per batch of labels, ``compute()`` at the end."""

    def __init__(self, num_classes: int, ignore_index: int | None = 255, tolerance: float = 0.0075):
        if not 0 < tolerance < 1:
            raise ValueError(f"tolerance is a fraction of the image diagonal in (0, 1), got {tolerance}")
        self.num_classes, self.ignore_index, self.tolerance = num_classes, ignore_index, tolerance
        self.reset()

    def reset(self) -> None:
        self.image_sum = torch.zeros((), dtype=torch.float64)
        self.num_images = torch.zeros((), dtype=torch.int64)
        self.class_sum = torch.zeros(self.num_classes, dtype=torch.float64)
        self.class_count = torch.zeros(self.num_classes, dtype=torch.int64)

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        """Add integer labels ``[N,H,W]`` or ``[H,W]`` (tensors or numpy arrays)."""
        pred, target = np.asarray(torch.as_tensor(pred).cpu()), np.asarray(torch.as_tensor(target).cpu())
        if pred.shape != target.shape:
            raise ValueError(f"pred and target must have the same shape, got {pred.shape} and {target.shape}")
        for p, t in zip(pred.reshape(-1, *pred.shape[-2:]), target.reshape(-1, *target.shape[-2:])):
            scores = image_boundary_f1(p, t, self.num_classes, self.ignore_index, self.tolerance)
            scored = ~np.isnan(scores)
            if scored.any():
                self.image_sum += float(scores[scored].mean())
                self.num_images += 1
                self.class_sum += torch.from_numpy(np.where(scored, scores, 0.0))
                self.class_count += torch.from_numpy(scored.astype(np.int64))

    def merge(self, other: "BoundaryF1") -> "BoundaryF1":
        if (other.num_classes, other.ignore_index, other.tolerance) != (self.num_classes, self.ignore_index, self.tolerance):
            raise ValueError("can only merge BoundaryF1 with the same num_classes, ignore_index and tolerance")
        self.image_sum += other.image_sum
        self.num_images += other.num_images
        self.class_sum += other.class_sum
        self.class_count += other.class_count
        return self

    def all_reduce(self) -> None:
        """Sum the state over all processes when torch.distributed is initialised; no-op otherwise."""
        for name in ("image_sum", "num_images", "class_sum", "class_count"):
            setattr(self, name, all_reduce_sum(getattr(self, name)))

    def compute(self) -> dict:
        """``{"bf", "bf_per_class", "num_images", "tolerance"}``; undefined values are None."""
        n = self.class_count
        per_class = torch.where(n > 0, self.class_sum / n.clamp_min(1), torch.full_like(self.class_sum, math.nan))
        bf = float(self.image_sum / self.num_images) if int(self.num_images) else None
        return {"bf": bf, "bf_per_class": to_python(per_class), "num_images": int(self.num_images),
                "tolerance": self.tolerance}
