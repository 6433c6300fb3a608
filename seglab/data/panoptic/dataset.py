"""A torch Dataset over a PanopticSplit: items `(image uint8 [3, H, W], target, index)` with target the canonical
panoptic form {"segment_ids": int64 [H, W] (0 void; ids 1..S), "segments": [{"id", "category_id", "iscrowd"}]}.

Resize policy (as InstanceDataset): the image is resized so its longer side is `size` (aspect kept; bilinear,
`load_image`), its segment ids with it (nearest, pixel centres: `resize_ids`); segments that vanish are dropped
and ids renumbered 1..S. Augmentation: the presets of seglab.data.instance.augment (none | flip | flips | light |
strong) through torchvision.transforms.v2 on the image and the id map (`tv_tensors.Mask`: nearest), applied
when the key is `(index, seed)` (EpochBatchSampler): the same (index, seed) gives the same sample.
An image whose truth has a problem (seglab.data.panoptic.spec.SEVERITY) is a DataError naming the file;
with skip_bad, `preload` leaves it out and lists it.
"""

from __future__ import annotations

import dataclasses
import sys

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision import tv_tensors

from seglab.data.dataset import load_image
from seglab.data.instance.augment import PRESETS, preset_name
from seglab.data.instance.dataset import resized_size
from seglab.data.io import DataError
from seglab.data.panoptic.spec import (
    PanopticSplit,
    PanopticTruth,
    compact,
    first_problem,
)


def nearest_indices(out_size: int, in_size: int) -> np.ndarray:
    """Source index of each output pixel for nearest resampling at pixel centres (torch's 'nearest-exact')."""
    return np.minimum(((np.arange(out_size) + 0.5) * (in_size / out_size)).astype(np.int64), in_size - 1)


def resize_ids(ids: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """An id map [h, w] -> [H, W] by nearest neighbour (pixel centres)."""
    height, width = size
    if ids.shape == (height, width):
        return ids
    return ids[nearest_indices(height, ids.shape[0])[:, None], nearest_indices(width, ids.shape[1])[None, :]]


def checked(truth: PanopticTruth) -> PanopticTruth:
    """The truth, or a DataError with its first problem (warnings pass)."""
    problem = first_problem(truth)
    if problem:
        raise DataError(problem)
    return truth


def augment_panoptic(preset: str, image: torch.Tensor, segment_ids: torch.Tensor, seed: int
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """image uint8 [3, H, W], ids int64 [H, W] through one seeded v2 pipeline of `preset`."""
    transform = PRESETS[preset](*image.shape[-2:])
    if transform is None:
        return image, segment_ids
    threads = torch.get_num_threads()
    if threads > 1:  # small tensors: a busy intra-op pool costs more than it gives (seglab.data.augment)
        torch.set_num_threads(1)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(int(seed))
            out_image, out_ids = transform(tv_tensors.Image(image), tv_tensors.Mask(segment_ids[None]))
    finally:
        if threads > 1:
            torch.set_num_threads(threads)
    return out_image.as_subclass(torch.Tensor).contiguous(), out_ids.as_subclass(torch.Tensor)[0].contiguous()


class PanopticDataset(Dataset):
    def __init__(self, split: PanopticSplit, size: int | None, augment: bool | str = False, cache: bool = False,
                 skip_bad: bool = False):
        self.split, self.size, self.cache, self.skip_bad = split, size, cache, skip_bad
        self.preset = preset_name(augment)
        self.skipped = list(split.skipped)
        self._cached: list[tuple | None] = [None] * len(split.items)

    def __len__(self) -> int:
        return len(self.split.items)

    def sample(self, index: int) -> tuple[torch.Tensor, np.ndarray, list[dict]]:
        """(image uint8 [3, h, w], ids int64 [h, w] 1..S, segments) at the training size, before augmentation."""
        cached = self._cached[index]
        if cached is not None:
            return cached
        item = self.split.items[index]
        truth = checked(item.load())
        height, width = resized_size(*truth.size, self.size)
        image = torch.from_numpy(load_image(item.image, (height, width)))
        ids, segments = compact(resize_ids(truth.segment_ids, (height, width)), truth.segments)
        result = (image, ids, segments)
        if self.cache:
            self._cached[index] = result
        return result

    def __getitem__(self, key):
        """key: an index, or (index, augmentation seed) from EpochBatchSampler."""
        index, seed = key if isinstance(key, tuple) else (key, None)
        image, ids, segments = self.sample(index)
        if seed is not None and self.preset != "none":
            image, moved = augment_panoptic(self.preset, image, torch.from_numpy(ids), seed)
            ids, segments = compact(moved.numpy(), segments)
        return image, {"segment_ids": torch.from_numpy(np.ascontiguousarray(ids)), "segments": segments}, index

    def preload(self) -> PanopticDataset:
        """Decode every item now (cache or skip_bad); with skip_bad, failing items are left out and listed."""
        if not (self.cache or self.skip_bad):
            return self
        good, bad = [], []
        for index, item in enumerate(self.split.items):
            try:
                self.sample(index)
                good.append(index)
            except DataError as e:
                if not self.skip_bad:
                    raise
                bad.append((item.annotation_file or item.image, str(e)))
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


def collate(batch: list) -> tuple[list[torch.Tensor], list[dict], list[int]]:
    """(images, targets, indices) as lists: images differ in size."""
    images, targets, indices = zip(*batch) if batch else ((), (), ())
    return list(images), list(targets), list(indices)
