"""Object-size scaling (`object_size=`): each image resized so that its median object is `object_size` pixels across.

Resizing every image's longer side to one size makes the objects' size in the model's view depend on the
image's pixel count: on DSB2018 a 256x256 image is enlarged 2x (nuclei ~26 px across) and a 1024x1024
brightfield one halved (nuclei ~9 px, the smallest 3-6). With `object_size`, the scale of an image is
`object_size / d`, where d is the median *equivalent diameter* (2 sqrt(area / pi)) of its objects:
- training: d from the truth, the scale jittered by a factor in [1 / JITTER, JITTER] (log-uniform, seeded,
  so the model also sees objects somewhat off the target size, as it will when the scale is estimated), and
  a random window of at most `size` x `size` pixels at that scale cut out (at the source resolution first,
  then resized, so a large image is never blown up whole); training-time validation: the whole image at
  the truth's scale, no jitter;
- inference (seglab/inference/instance_scale.py): d measured on a first pass of the model, then the
  image predicted again at the scale it gives.
The scale is clipped to [MIN_SCALE, MAX_SCALE]; an image without objects keeps the longer-side rule.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image

JITTER = 1.25  # training scales are object_size / d times a factor in [1 / JITTER, JITTER]
MIN_SCALE, MAX_SCALE = 1 / 8, 8.0
OBJECT_SIZE_KEY = "object_size"  # preprocess[OBJECT_SIZE_KEY] of a checkpoint trained this way


def median_diameter(areas: np.ndarray) -> float | None:
    """The median equivalent diameter (2 sqrt(area / pi)) of objects of `areas` pixels; None without any."""
    areas = np.asarray(areas, np.float64)
    areas = areas[areas > 0]
    return float(np.median(2.0 * np.sqrt(areas / math.pi))) if len(areas) else None


def object_scale(diameter: float, object_size: float) -> float:
    """Pixels of the model's view per source pixel that make a `diameter`-pixel object `object_size` across."""
    return float(np.clip(object_size / diameter, MIN_SCALE, MAX_SCALE))


def scaled_size(height: int, width: int, scale: float) -> tuple[int, int]:
    return max(1, round(height * scale)), max(1, round(width * scale))


def rescaled(pixels: np.ndarray, scale: float) -> torch.Tensor:
    """RGB uint8 [h, w, 3] -> uint8 [3, h', w'] at `scale` (PIL bilinear, as `load_image` resizes)."""
    if scale != 1.0:
        height, width = scaled_size(*pixels.shape[:2], scale)
        pixels = np.asarray(Image.fromarray(pixels).resize((width, height), Image.BILINEAR))
    return torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1)))


def training_window(height: int, width: int, scale: float, size: int,
                    rng: np.random.Generator | None) -> tuple[int, int, int, int]:
    """(y0, x0, y1, x1) in source pixels: the whole image when `rng` is None, else a random window that is at
    most `size` pixels each way at `scale`."""
    if rng is None:
        return 0, 0, height, width
    h, w = min(height, max(1, math.floor(size / scale))), min(width, max(1, math.floor(size / scale)))
    y0, x0 = int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1))
    return y0, x0, y0 + h, x0 + w


def scale_for(masks: np.ndarray, object_size: float, size: int, rng: np.random.Generator | None) -> float:
    """The scale of an image with instance masks [N, H, W] (crowd ones left out by the caller): the truth's,
    jittered when `rng` is given; the longer-side rule (`size` / the longer side) for an image without objects."""
    diameter = median_diameter(masks.reshape(len(masks), -1).sum(axis=1)) if len(masks) else None
    if diameter is None:
        return size / max(masks.shape[-2:])
    scale = object_scale(diameter, object_size)
    if rng is not None:
        scale *= JITTER ** rng.uniform(-1.0, 1.0)
    return scale
