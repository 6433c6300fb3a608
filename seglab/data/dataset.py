"""A torch Dataset over a SplitSpec: decode, resize to the training size, optionally cache and augment.

Items are (image uint8 [3, S, S], mask int64 [S, S], index). Normalisation happens on the device in
the training step, so samples stay small (uint8) in RAM and in worker queues. Resize policy:
"stretch" to S x S (bilinear for images, nearest for masks); predictions are resized back to each
image's own size.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import Dataset

from seglab.data.io import DataError, image_size, map_labels, read_image, read_mask
from seglab.data.spec import SplitSpec


def load_image(path, size: int | None) -> np.ndarray:
    """The model's view of an image: decoded RGB, stretched to size x size, uint8 [3, H, W].

    Training, validation and prediction all call this, so they see identical pixels."""
    image = read_image(path, draft_size=2 * size if size else None)
    if size:
        image = image.resize((size, size), Image.BILINEAR)
    return np.ascontiguousarray(np.asarray(image).transpose(2, 0, 1))


def load_mask(spec: SplitSpec, index: int) -> np.ndarray:
    """Class ids of pair `index` at its image's own size (uint8 [H, W]); checks values and size."""
    image_path, mask_path = spec.pairs[index]
    labels = map_labels(read_mask(mask_path), spec.lut, mask_path, spec.classes.ignore_index)
    width, height = image_size(image_path)
    if labels.shape != (height, width):
        raise DataError(f"{mask_path}: mask is {labels.shape[1]}x{labels.shape[0]} but its image "
                        f"{image_path.name} is {width}x{height}")
    return labels


def load_pair(spec: SplitSpec, index: int, size: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Image and mask of pair `index`, both at size x size (None keeps the original size)."""
    image = load_image(spec.pairs[index][0], size)
    labels = load_mask(spec, index)
    if size:
        labels = np.array(Image.fromarray(labels).resize((size, size), Image.NEAREST))
    return image, labels


def random_scale_crop(image: torch.Tensor, mask: torch.Tensor, generator: torch.Generator,
                      min_scale: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    """Random crop (area fraction in [min_scale, 1], aspect in [3/4, 4/3]) resized back, and a random flip."""
    _, h, w = image.shape
    u = torch.rand(5, generator=generator).tolist()
    area = min_scale + (1.0 - min_scale) * u[0]
    aspect = float(np.exp(np.log(3 / 4) + (np.log(4 / 3) - np.log(3 / 4)) * u[1]))
    ch = min(h, max(1, round(h * (area / aspect) ** 0.5)))
    cw = min(w, max(1, round(w * (area * aspect) ** 0.5)))
    y = min(h - ch, int(u[2] * (h - ch + 1)))
    x = min(w - cw, int(u[3] * (w - cw + 1)))
    image, mask = image[:, y:y + ch, x:x + cw], mask[y:y + ch, x:x + cw]
    if (ch, cw) != (h, w):
        image = F.interpolate(image[None].float(), size=(h, w), mode="bilinear", align_corners=False)[0]
        image = image.round_().clamp_(0, 255).to(torch.uint8)
        mask = F.interpolate(mask[None, None].float(), size=(h, w), mode="nearest")[0, 0].to(mask.dtype)
    if u[4] < 0.5:
        image, mask = image.flip(-1), mask.flip(-1)
    return image.contiguous(), mask.contiguous()


class SegmentationDataset(Dataset):
    def __init__(self, spec: SplitSpec, size: int, augment: bool = False, cache: bool = True):
        self.spec, self.size, self.augment, self.cache = spec, size, augment, cache
        self._cached: list[tuple[torch.Tensor, torch.Tensor] | None] = [None] * len(spec.pairs)

    def __len__(self) -> int:
        return len(self.spec.pairs)

    def _sample(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        item = self._cached[index]
        if item is None:
            image, mask = load_pair(self.spec, index, self.size)
            item = (torch.from_numpy(image), torch.from_numpy(mask))
            if self.cache:
                self._cached[index] = item
        return item

    def preload(self) -> "SegmentationDataset":
        """Decode everything now (before DataLoader workers fork, so they share the cache)."""
        if self.cache:
            for i in range(len(self)):
                self._sample(i)
        return self

    def __getitem__(self, key):
        """key: an index, or (index, augmentation seed) from EpochBatchSampler."""
        index, seed = key if isinstance(key, tuple) else (key, None)
        image, mask = self._sample(index)
        if self.augment and seed is not None:
            image, mask = random_scale_crop(image, mask, torch.Generator().manual_seed(seed))
        return image, mask.long(), index
