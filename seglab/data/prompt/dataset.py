"""Training samples for promptable segmentation: one object of one image per item, on a square canvas.

Items are `(image uint8 [3, S, S], {"mask": uint8 [S, S], "ignore": bool [S, S]}, index)`: the image
resized so its longer side is S (aspect kept; bilinear, object ids nearest) and padded bottom / right
to S x S (image 0, padding ignored), which is the frame the prompt backends use (SAM's). The object is
drawn per item; with a key `(index, seed)` (as EpochBatchSampler yields) the draw and the augmentation
are a pure function of the seed:
- `augment=True`: a random window holding the object's centre (a zoom-in, side 40-100% of the
  image's) with probability 0.5, and a horizontal flip with probability 0.5.
Images and object maps are decoded once and kept in RAM with the longer side at most 2 S
(`CACHE_SCALE`), so zoom-ins keep detail; `ObjectSplit` images load lazily on first use.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from seglab.data.io import read_image
from seglab.data.prompt.objects import MIN_OBJECT_PIXELS, ObjectMap, ObjectSplit

CACHE_SCALE = 2.0
ZOOM_PROBABILITY = 0.5
ZOOM_RANGE = (0.4, 1.0)


def resize_hw(height: int, width: int, longer: int) -> tuple[int, int]:
    scale = longer / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def resized_view(image: np.ndarray, objects: ObjectMap, longer: int) -> tuple[np.ndarray, ObjectMap]:
    """Image uint8 [H, W, 3] and its objects with the longer side `longer` (bilinear / nearest)."""
    height, width = resize_hw(*image.shape[:2], longer)
    if (height, width) == image.shape[:2]:
        return image, objects
    pil = Image.fromarray(image).resize((width, height), Image.BILINEAR)
    ids = Image.fromarray(objects.ids).resize((width, height), Image.NEAREST)
    ignore = Image.fromarray(objects.ignore).resize((width, height), Image.NEAREST)
    return np.asarray(pil), ObjectMap(np.asarray(ids, np.int32), np.asarray(ignore, bool))


def square_canvas(image: np.ndarray, mask: np.ndarray, ignore: np.ndarray, size: int):
    """Pad bottom / right to size x size: image 0, mask 0, ignore True."""
    height, width = mask.shape
    canvas = np.zeros((size, size, 3), np.uint8)
    canvas[:height, :width] = image
    full_mask = np.zeros((size, size), np.uint8)
    full_mask[:height, :width] = mask
    full_ignore = np.ones((size, size), bool)
    full_ignore[:height, :width] = ignore
    return canvas, full_mask, full_ignore


class ObjectDataset(Dataset):
    """Items over the images of one or more ObjectSplits (each image once per epoch, one object each)."""

    def __init__(self, splits: list[ObjectSplit], size: int, augment: bool = False):
        self.size, self.augment = int(size), augment
        self.images = [(split, image) for split in splits for image in split.images]
        self._cache: list[tuple | None] = [None] * len(self.images)

    def __len__(self) -> int:
        return len(self.images)

    def cached(self, index: int) -> tuple[np.ndarray, ObjectMap, np.ndarray]:
        """(image [H, W, 3], objects, ids of the objects still >= MIN_OBJECT_PIXELS) at the cache size."""
        if self._cache[index] is None:
            _, item = self.images[index]
            image, objects = np.asarray(read_image(item.image)), item.load()
            longer = min(max(image.shape[:2]), round(CACHE_SCALE * self.size))
            image, objects = resized_view(image, objects, longer)
            areas = np.bincount(objects.ids.ravel(), minlength=objects.count + 1)
            self._cache[index] = (image, objects, np.flatnonzero(areas[1:] >= MIN_OBJECT_PIXELS) + 1)
        return self._cache[index]

    def __getitem__(self, key):
        index, seed = key if isinstance(key, tuple) else (key, None)
        rng = np.random.default_rng(seed if seed is not None else index)
        image, objects, ids = self.cached(index)
        if len(ids) == 0:  # no object: an all-ignored sample, which the loss skips
            mask, ignore = np.zeros(objects.ids.shape, bool), np.ones(objects.ids.shape, bool)
        else:
            mask, ignore = objects.mask(int(rng.choice(ids))), objects.ignore
        if self.augment and rng.random() < ZOOM_PROBABILITY:
            image, mask, ignore = zoom_window(image, mask, ignore, rng)
        if self.augment and rng.random() < 0.5:
            image, mask, ignore = image[:, ::-1], mask[:, ::-1], ignore[:, ::-1]
        view, view_objects = resized_view(np.ascontiguousarray(image), ObjectMap(np.ascontiguousarray(mask, np.int32),
                                                                                 np.ascontiguousarray(ignore)), self.size)
        canvas, mask, ignore = square_canvas(view, view_objects.ids > 0, view_objects.ignore, self.size)
        return torch.from_numpy(canvas.transpose(2, 0, 1).copy()), {"mask": torch.from_numpy(mask),
                                                                    "ignore": torch.from_numpy(ignore)}, index


def zoom_window(image: np.ndarray, mask: np.ndarray, ignore: np.ndarray, rng: np.random.Generator):
    """A random square-ish window (side a fraction of each image side) holding the object's centre."""
    height, width = mask.shape
    fraction = rng.uniform(*ZOOM_RANGE)
    h, w = max(8, round(height * fraction)), max(8, round(width * fraction))
    ys, xs = np.nonzero(mask)
    cy, cx = int(ys.mean()), int(xs.mean())
    y0 = int(np.clip(cy - rng.integers(0, h), 0, max(0, height - h)))
    x0 = int(np.clip(cx - rng.integers(0, w), 0, max(0, width - w)))
    window = (slice(y0, y0 + h), slice(x0, x0 + w))
    if mask[window].sum() < MIN_OBJECT_PIXELS:
        return image, mask, ignore
    return image[window], mask[window], ignore[window]


def collate(batch):
    images, targets, indices = zip(*batch)
    return (torch.stack(images), {key: torch.stack([t[key] for t in targets]) for key in targets[0]},
            torch.tensor(indices))
