"""A clip whose truth is known and a promptable backend with real, simple behaviour, for the video view's tests.

The clip: a red disc on grey that moves right on frames 0-1, then jumps to the lower right (a cut) on
frame 2 and moves on. Tracking from frame 0 follows it to frame 1 and loses it at the jump: the
frame-1 mask's inner point falls on the background; a positive click on frame 2 finds it again.

`SeedFillBackend`: the object is the connected region of pixels within `tolerance` (RGB distance) of
the colour around the first positive point, minus the regions of the negative points; with no positive
point, the colour at the box centre. A region touching the image border is the background: no object
(empty mask). Boxes and mask inputs are otherwise ignored. Score 1; low-res logits = the mask resized.
"""
from __future__ import annotations

import threading
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage as ndi

from seglab.inference.video import OverlayWriter
from seglab.prompt.backend import LOW_RES, ImageEmbedding

SIZE = 64  # frames are SIZE x SIZE
RADIUS = 9
GREY, RED = (120, 120, 120), (220, 30, 30)


def centre(frame: int) -> tuple[int, int]:
    """(x, y) of the disc on `frame`: (16, 20) moving 3 px right, then (40, 44) moving 2 px right from frame 2."""
    return (16 + 3 * frame, 20) if frame < 2 else (40 + 2 * (frame - 2), 44)


def truth(frame: int) -> np.ndarray:
    yy, xx = np.mgrid[:SIZE, :SIZE]
    x, y = centre(frame)
    return (xx - x) ** 2 + (yy - y) ** 2 <= RADIUS ** 2


def frame_image(frame: int) -> np.ndarray:
    image = np.full((SIZE, SIZE, 3), GREY, np.uint8)
    image[truth(frame)] = RED
    return image


def write_clip(path: Path, frames: int = 6) -> Path:
    """An mp4 of the clip (the project's own writer: H.264 or MPEG-4 Part 2, lossy)."""
    writer = OverlayWriter(path, Fraction(10), SIZE, SIZE)
    for f in range(frames):
        writer.write(frame_image(f))
    writer.close()
    return path


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


class SeedFillBackend:
    name = "seed_fill_test"
    device = torch.device("cpu")

    def __init__(self, tolerance: float = 70.0, gate: threading.Event | None = None):
        self.tolerance = tolerance
        self.gate = gate  # when given, embed waits for it (a propagation that is still running, on demand)
        self.embedded = 0

    def embed(self, image: np.ndarray) -> ImageEmbedding:
        if self.gate is not None:
            assert self.gate.wait(30), "the test never opened the gate"
        self.embedded += 1
        return ImageEmbedding(image.astype(np.float32), image.shape[:2], image.shape[:2])

    def region(self, image: np.ndarray, x: float, y: float) -> np.ndarray:
        height, width = image.shape[:2]
        col, row = min(int(x), width - 1), min(int(y), height - 1)
        ref = image[max(row - 1, 0):row + 2, max(col - 1, 0):col + 2].reshape(-1, 3).mean(0)
        parts, _ = ndi.label(np.linalg.norm(image - ref, axis=2) < self.tolerance)
        region = parts == parts[row, col]
        border = region[0].any() or region[-1].any() or region[:, 0].any() or region[:, -1].any()
        return region if not border else np.zeros_like(region)

    def one_mask(self, image, points, labels, box) -> np.ndarray:
        pairs = list(zip(points.tolist(), labels.tolist())) if points is not None else []
        seeds = [p for p, label in pairs if label == 1]
        if not seeds and box is not None:
            x0, y0, x1, y1 = box.tolist()
            seeds = [((x0 + x1) / 2, (y0 + y1) / 2)]
        mask = self.region(image, *seeds[0]) if seeds else np.zeros(image.shape[:2], bool)
        for point, label in pairs:
            if label == 0:
                mask &= ~self.region(image, *point)
        return mask

    def decode(self, embedding, points, labels, boxes, mask_input, multimask):
        image = embedding.features
        batch = next(t.shape[0] for t in (points, boxes, mask_input) if t is not None)
        masks = np.stack([self.one_mask(image, None if points is None else points[b].cpu(),
                                        None if labels is None else labels[b].cpu(),
                                        None if boxes is None else boxes[b].cpu()) for b in range(batch)])
        candidates = 3 if multimask else 1
        logits = torch.from_numpy(np.where(masks, 8.0, -8.0).astype(np.float32))[:, None].repeat(1, candidates, 1, 1)
        low_res = F.interpolate(logits, (LOW_RES, LOW_RES), mode="bilinear", align_corners=False)
        return logits, torch.ones(batch, candidates), low_res
