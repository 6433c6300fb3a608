"""Masks on the wire and on disk: PNG bytes, COCO RLE, the overlay the page draws, instance-id maps.

The page gets, per state, one transparent RGBA overlay (every object in its colour, the object being
drawn brighter) and the current object's mask as COCO RLE; `mask.png` serves that mask as 0/255.
"""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

# object k (1-based) takes COLORS[(k - 1) % len(COLORS)]; the object being drawn is CURRENT
COLORS = np.array([[230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48], [145, 30, 180],
                   [70, 240, 240], [240, 50, 230], [210, 245, 60], [250, 190, 212], [0, 128, 128], [170, 110, 40]],
                  np.uint8)
CURRENT = np.array([30, 144, 255], np.uint8)
DONE_ALPHA, CURRENT_ALPHA = 110, 150


def png_bytes(array: np.ndarray) -> bytes:
    """uint8 [H, W] (L), [H, W, 3] (RGB) or [H, W, 4] (RGBA), or uint16 [H, W] (16-bit), as PNG."""
    buffer = io.BytesIO()
    image = Image.fromarray(array) if array.dtype != np.uint16 else Image.fromarray(array.astype(np.uint16), "I;16")
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def rle(mask: np.ndarray) -> dict:
    """COCO compressed RLE of a bool [H, W] mask ({"size": [H, W], "counts": str})."""
    encoded = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in encoded["size"]], "counts": encoded["counts"].decode("ascii")}


def rle_decode(encoded: dict) -> np.ndarray:
    return mask_utils.decode({"size": encoded["size"], "counts": encoded["counts"].encode("ascii")}).astype(bool)


def bbox(mask: np.ndarray) -> list[int]:
    """[x, y, width, height] of the mask's pixels (COCO's bbox), [0, 0, 0, 0] when empty."""
    ys, xs = np.nonzero(mask)
    if not len(ys):
        return [0, 0, 0, 0]
    return [int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)]


def instance_ids(masks: list[np.ndarray], shape: tuple[int, int]) -> np.ndarray:
    """Objects (bool [H, W], in the order drawn) -> id map [H, W] (0 background, k = the k-th object kept).

    An earlier object keeps its pixels where a later one overlaps it (an id map holds one id per
    pixel); an object left with no pixel is dropped, so ids stay 1..K without gaps."""
    ids = np.zeros(shape, np.int32)
    for mask in masks:
        free = mask & (ids == 0)
        if free.any():
            ids[free] = ids.max() + 1
    return ids


def overlay_rgba(done: list[np.ndarray], current: np.ndarray | None, shape: tuple[int, int]) -> np.ndarray:
    """RGBA [H, W, 4]: finished objects in their colours, the current one on top in CURRENT, else clear."""
    out = np.zeros((*shape, 4), np.uint8)
    for k, mask in enumerate(done):
        out[mask] = (*COLORS[k % len(COLORS)], DONE_ALPHA)
    if current is not None:
        out[current] = (*CURRENT, CURRENT_ALPHA)
    return out


def label_overlay(labels: np.ndarray, colors: np.ndarray, clear: tuple[int, ...] = (), alpha: int = DONE_ALPHA
                  ) -> np.ndarray:
    """Class or instance ids [H, W] -> RGBA [H, W, 4]: id i in colors[i] (needs len(colors) > every id),
    the ids in `clear` left transparent."""
    palette = np.zeros((len(colors), 4), np.uint8)
    palette[:, :3], palette[:, 3] = colors, alpha
    palette[list(clear), 3] = 0
    return palette[labels]


def instance_colors(count: int) -> np.ndarray:
    """[count + 1, 3]: id 0 (background) then each instance id's colour, as the objects drawn on the page."""
    return np.concatenate([np.zeros((1, 3), np.uint8), COLORS[np.arange(count) % len(COLORS)]])
