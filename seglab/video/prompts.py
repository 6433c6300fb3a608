"""One object's prompt on one frame, and the prompts a tracker derives from a mask.

A prompt is what `Tracker.add_prompt` takes: points (x, y pixels) with labels (1 foreground,
0 background), a box (x0, y0, x1, y1 pixels) and / or a mask (bool [H, W]). A mask prompt is the
object's mask on that frame, as given (SAM 2's add_new_mask does the same); points and boxes go to
the promptable model. `from_mask` turns a mask into the prompts the model can take (its box and the
foreground point farthest inside it), what the re-prompt baseline feeds the model frame after frame.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage


@dataclass
class Prompt:
    points: np.ndarray | None = None  # float32 [N, 2] (x, y)
    labels: np.ndarray | None = None  # int64 [N]
    box: np.ndarray | None = None  # float32 [4]
    mask: np.ndarray | None = None  # bool [H, W]

    @classmethod
    def make(cls, points=None, labels=None, box=None, mask=None, size: tuple[int, int] | None = None) -> "Prompt":
        """Checked arrays; `size` (H, W) of the frame the prompt is on."""
        if points is None and box is None and mask is None:
            raise ValueError("a prompt needs points (with labels), a box or a mask")
        if (points is None) != (labels is None):
            raise ValueError("points and labels go together: give both or neither")
        if points is not None:
            points = np.asarray(points, np.float32).reshape(-1, 2)
            labels = np.asarray(labels, np.int64).reshape(-1)
            if len(labels) != len(points):
                raise ValueError(f"{len(points)} points but {len(labels)} labels")
            if not np.isin(labels, (0, 1)).all():
                raise ValueError(f"point labels are 1 (foreground) or 0 (background), got {sorted(set(labels.tolist()))}")
        if box is not None:
            box = np.asarray(box, np.float32).reshape(-1)
            if box.shape != (4,) or box[2] <= box[0] or box[3] <= box[1]:
                raise ValueError(f"box must be [x0, y0, x1, y1] with x1 > x0 and y1 > y0, got {box.tolist()}")
        if mask is not None:
            mask = np.asarray(mask).astype(bool)
            if size is not None and mask.shape != tuple(size):
                raise ValueError(f"mask is {mask.shape[0]}x{mask.shape[1]} but the frame is {size[0]}x{size[1]}")
        return cls(points, labels, box, mask)


def mask_box(mask: np.ndarray) -> np.ndarray | None:
    """The mask's bounding box [x0, y0, x1, y1] (pixel edges), None for an empty mask."""
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    if not len(rows):
        return None
    return np.array([cols[0], rows[0], cols[-1] + 1, rows[-1] + 1], np.float32)


def inner_point(mask: np.ndarray) -> np.ndarray | None:
    """The mask pixel farthest from its border (x, y), None for an empty mask."""
    if not mask.any():
        return None
    distance = ndimage.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(distance)), mask.shape)
    return np.array([x + 0.5, y + 0.5], np.float32)


def from_mask(mask: np.ndarray) -> Prompt | None:
    """Box + inner foreground point of a mask (None when the mask is empty: the object is lost)."""
    box, point = mask_box(mask), inner_point(mask)
    if box is None:
        return None
    return Prompt(points=point[None], labels=np.ones(1, np.int64), box=box)
