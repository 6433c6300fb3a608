"""A torch Dataset over an InstanceSplit, in the form torchvision's detection models take.

Items are `(image, target, index)`:
  image   uint8 [3, H, W] (normalisation happens on the device, as for semantic training)
  target  {"boxes": float32 [N, 4] xyxy in pixel edges (x2 = last column + 1),
           "labels": int64 [N], 1-based: label k is classes[k - 1], because torchvision's detection
                     models reserve 0 for the background,
           "masks": uint8 [N, H, W] (0 / 1), "iscrowd": int64 [N] (0 / 1), "area": float32 [N] (mask pixels),
           "image_id": int (COCO's id; the position in the sorted listing otherwise)}
`collate` keeps lists (images differ in size), as torchvision's detection references do.

Resize policy: the image is resized so its longer side is `size` (aspect kept; bilinear), its masks
with it (nearest); `size=None` keeps the image's own size. With `object_size`, the image is instead
resized so its median object is `object_size` pixels across, and a training sample is a window of at
most `size` x `size` pixels of it (seglab/data/instance/object_size.py). Instances whose mask vanishes at the new
size (or under augmentation) are dropped, and boxes always come from the masks, so a box and its mask
agree exactly. Augmentation: a preset of seglab.data.instance.augment, applied when the key is
`(index, seed)` (as EpochBatchSampler yields): the same (index, seed) gives the same sample.
"""

from __future__ import annotations

import dataclasses
import sys

import numpy as np
import torch
from torch.utils.data import Dataset

from seglab.data.dataset import load_image
from seglab.data.io import read_image
from seglab.data.instance.augment import augment_instances, boxes_from_masks, preset_name
from seglab.data.instance.object_size import rescaled, scale_for, training_window
from seglab.data.instance.spec import InstanceSplit
from seglab.data.io import DataError


def resized_size(height: int, width: int, size: int | None) -> tuple[int, int]:
    """(height, width) with the longer side `size`, aspect kept (each side at least 1)."""
    if not size:
        return height, width
    scale = size / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def resize_masks(masks: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """uint8 [N, h, w] -> uint8 [N, height, width], nearest (pixel centres, so flips commute with it)."""
    if masks.shape[-2:] == (height, width):
        return masks
    if masks.shape[0] == 0:
        return masks.new_zeros((0, height, width))
    return torch.nn.functional.interpolate(masks[None], size=(height, width), mode="nearest-exact")[0]


class InstanceDataset(Dataset):
    """augment: none | flip | flips | light | strong | microscopy (seglab.data.instance.augment), or True (light) /
    False (none). object_size: None (the longer-side rule) or the median object diameter images are scaled to."""

    def __init__(self, split: InstanceSplit, size: int | None, augment: bool | str = False, cache: bool = False,
                 skip_bad: bool = False, object_size: float | None = None):
        if object_size is not None and not size:
            raise ValueError("object_size needs a training size: the largest window a sample shows")
        self.split, self.size, self.cache, self.skip_bad, self.object_size = split, size, cache, skip_bad, object_size
        self.preset = preset_name(augment)
        self.skipped = list(split.skipped)
        self._cached: list[tuple | None] = [None] * len(split.items)

    def __len__(self) -> int:
        return len(self.split.items)

    def sample(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(image uint8 [3, H, W], masks uint8 [N, H, W], labels int64 [N] 0-based, iscrowd bool [N]) at the
        training size, before augmentation; empty masks left out."""
        cached = self._cached[index]
        if cached is not None:
            return cached
        item = self.split.items[index]
        instances = item.load()
        height, width = resized_size(*instances.size, self.size)
        image = torch.from_numpy(load_image(item.image, (height, width)))
        masks = resize_masks(torch.from_numpy(instances.masks.astype(np.uint8)), height, width)
        kept = torch.nonzero(masks.flatten(1).any(dim=1)).flatten()  # empty masks (vanished at this size) out
        # index_select, not masks[kept]: advanced indexing wakes the intra-op pool (~30 ms on busy cores)
        result = (image, masks.index_select(0, kept), torch.from_numpy(instances.labels).index_select(0, kept),
                  torch.from_numpy(instances.iscrowd).index_select(0, kept))
        if self.cache:
            self._cached[index] = result
        return result

    def native(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(RGB uint8 [H, W, 3], masks bool [N, H, W], labels [N] 0-based, iscrowd bool [N]) at the image's own
        size, as decoded for `object_size` scaling (cached with `cache`)."""
        cached = self._cached[index]
        if cached is not None:
            return cached
        item = self.split.items[index]
        instances = item.load()
        result = (np.asarray(read_image(item.image)), instances.masks, instances.labels, instances.iscrowd)
        if self.cache:
            self._cached[index] = result
        return result

    def truth_scale(self, index: int) -> float:
        """The scale of item `index` from its truth, without jitter (training-time validation predicts at it)."""
        _, masks, _, iscrowd = self.native(index)
        return scale_for(masks[~iscrowd.astype(bool)], self.object_size, self.size, None)

    def scaled_sample(self, index: int, seed: int | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """As `sample`, at the image's object scale: with a seed, a jittered scale and a random window of at most
        size x size pixels; without, the whole image at the truth's scale (training-time validation)."""
        pixels, masks, labels, iscrowd = self.native(index)
        rng = np.random.default_rng(seed) if seed is not None else None
        scale = scale_for(masks[~iscrowd.astype(bool)], self.object_size, self.size, rng)
        y0, x0, y1, x1 = training_window(*pixels.shape[:2], scale, self.size, rng)
        image = rescaled(np.ascontiguousarray(pixels[y0:y1, x0:x1]), scale)
        crop = torch.from_numpy(np.ascontiguousarray(masks[:, y0:y1, x0:x1]).astype(np.uint8))
        crop = resize_masks(crop, *image.shape[-2:])
        kept = torch.nonzero(crop.flatten(1).any(dim=1)).flatten()
        return (image, crop.index_select(0, kept), torch.from_numpy(labels).index_select(0, kept),
                torch.from_numpy(iscrowd).index_select(0, kept))

    def __getitem__(self, key):
        """key: an index, or (index, augmentation seed) from EpochBatchSampler."""
        index, seed = key if isinstance(key, tuple) else (key, None)
        image, masks, labels, iscrowd = self.scaled_sample(index, seed) if self.object_size else self.sample(index)
        if seed is not None and self.preset != "none":
            image, masks, kept = augment_instances(self.preset, image, masks, seed, crop=not self.object_size)
            labels, iscrowd = labels.index_select(0, kept), iscrowd.index_select(0, kept)
        target = {
            "boxes": boxes_from_masks(masks),
            "labels": labels.long() + 1,  # 1-based: 0 is the background of torchvision's detection models
            "masks": masks,
            "iscrowd": iscrowd.long(),
            "area": masks.flatten(1).sum(dim=1).float() if masks.shape[0] else torch.zeros(0),
            "image_id": int(self.split.items[index].image_id),
        }
        return image, target, index

    def preload(self) -> "InstanceDataset":
        """Decode every item now; with skip_bad, the items that fail are left out and listed in `skipped`."""
        if not (self.cache or self.skip_bad):
            return self
        good, bad = [], []
        for index, item in enumerate(self.split.items):
            try:
                self.native(index) if self.object_size else self.sample(index)
                good.append(index)
            except DataError as e:
                if not self.skip_bad:
                    raise
                bad.append(_file_and_reason(item, str(e)))
        if bad and not good:
            raise DataError(f"{self.split.root}: every item of split '{self.split.name}' is bad ({len(bad)}); "
                            f"the first: {bad[0][1]}")
        if bad:
            print(f"skip_bad: left out {len(bad)} bad image(s) of split '{self.split.name}', e.g. {bad[0][1]}",
                  file=sys.stderr)
        self.skipped += bad
        self.split = dataclasses.replace(self.split, items=[self.split.items[i] for i in good], skipped=self.skipped)
        self._cached = [self._cached[i] for i in good]
        return self


def _file_and_reason(item, message: str) -> tuple:
    for path in (item.annotation_file, item.image):
        if path is not None and message.startswith(f"{path}: "):
            return path, message.removeprefix(f"{path}: ")
    return item.image, message


def collate(batch: list) -> tuple[list[torch.Tensor], list[dict], list[int]]:
    """(images, targets, indices) as lists: what torchvision's detection models take."""
    images, targets, indices = zip(*batch) if batch else ((), (), ())
    return list(images), list(targets), list(indices)
