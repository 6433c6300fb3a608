"""A torch Dataset over a SplitSpec: decode, resize to the training size, optionally cache and augment.

Items are (image uint8 [3, H, W], mask int64 [H, W], index) at the training size (an int S for
S x S, or (H, W); see seglab.data.size). Normalisation happens on the device in the training step,
so samples stay small (uint8) in RAM and in worker queues. Resize policy (`resize`, recorded in
the checkpoint as preprocess["resize"]):
- "stretch": each whole image stretched to H x W (bilinear for images, nearest for masks), cached at
  that size; predictions are resized back to each image's own size.
- "crop" (patch training): pairs are decoded and cached at native resolution and each item is an
  H x W window of it (seglab/data/patches.py): random per (index, seed), the centre without a seed;
  inference then tiles at native resolution.
With skip_bad=True, `preload` decodes every pair once and leaves out the ones that
fail, listing them in `skipped` as (file, reason).
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from seglab.data.augment import augment_pair, build_augment, preset_name
from seglab.data.io import DataError, exif_orientation, image_size, map_labels, read_image, read_mask
from seglab.data.patches import patch
from seglab.data.size import as_hw
from seglab.data.spec import SplitSpec

RESIZES = ("stretch", "crop")  # how training pixels relate to source pixels (see the module docstring)


def load_image(path, size) -> np.ndarray:
    """The model's view of an image: decoded RGB, stretched to the size (S or (H, W)), uint8 [3, H, W].

    Training, validation and prediction all call this, so they see identical pixels."""
    hw = as_hw(size) if size else None
    image = read_image(path, draft_size=2 * max(hw) if hw else None)
    if hw:
        image = image.resize((hw[1], hw[0]), Image.BILINEAR)
    return np.ascontiguousarray(np.asarray(image).transpose(2, 0, 1))


def load_mask(spec: SplitSpec, index: int) -> np.ndarray:
    """Class ids of pair `index` at its image's own size (uint8 [H, W]); checks values and size."""
    image_path, mask_path = spec.pairs[index]
    raw = spec.read_mask(image_path, mask_path) if spec.read_mask else read_mask(mask_path, spec.mask_colors)
    labels = map_labels(raw, spec.lut, mask_path, spec.classes.ignore_index)
    width, height = image_size(image_path)
    if labels.shape != (height, width):
        orientation = exif_orientation(image_path)
        note = (f" as displayed (its EXIF orientation {orientation} turns the stored {height}x{width}; the mask "
                f"must match the image as displayed)") if orientation in (5, 6, 7, 8) else ""
        raise DataError(f"{mask_path}: mask is {labels.shape[1]}x{labels.shape[0]} but its image "
                        f"{image_path.name} is {width}x{height}{note}")
    return labels


def load_pair(spec: SplitSpec, index: int, size) -> tuple[np.ndarray, np.ndarray]:
    """Image and mask of pair `index`, both at the size (S or (H, W); None keeps the original size)."""
    image = load_image(spec.pairs[index][0], size)
    labels = load_mask(spec, index)
    if size:
        height, width = as_hw(size)
        labels = np.array(Image.fromarray(labels).resize((width, height), Image.NEAREST))
    return image, labels


def pair_bytes(spec: SplitSpec, size, resize: str = "stretch") -> int:
    """RAM the decoded pairs of `spec` take in the cache (3 image bytes + 1 mask byte per pixel): at the
    training size for stretch, at each image's own size (read from the file headers) for crop."""
    if resize == "crop":
        return sum(4 * width * height for width, height in (image_size(image) for image, _ in spec.pairs))
    height, width = as_hw(size)
    return 4 * height * width * len(spec.pairs)


class SegmentationDataset(Dataset):
    """augment: a preset name of seglab.data.augment (none | light | strong), or True (light) / False (none).
    resize: stretch | crop (see the module docstring)."""

    def __init__(self, spec: SplitSpec, size, augment: bool | str = False, cache: bool = True,
                 skip_bad: bool = False, resize: str = "stretch"):
        if resize not in RESIZES:
            raise ValueError(f"resize={resize!r}: expected one of {', '.join(RESIZES)}")
        self.spec, self.size, self.cache, self.skip_bad, self.resize = spec, size, cache, skip_bad, resize
        self.native = resize == "crop"  # samples are cached at native resolution and cut into patches
        self.preset = preset_name(augment)
        self.transform = build_augment(self.preset, size, spec.classes.ignore_index, resize_crop=not self.native)
        self.augment = self.transform is not None
        self.skipped: list[tuple[Path, str]] = list(spec.skipped)
        self._cached: list[tuple[torch.Tensor, torch.Tensor] | None] = [None] * len(spec.pairs)

    def __len__(self) -> int:
        return len(self.spec.pairs)

    def sample(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Pair `index` as decoded (and cached): at the training size (stretch) or native (crop)."""
        item = self._cached[index]
        if item is None:
            image, mask = load_pair(self.spec, index, None if self.native else self.size)
            item = (torch.from_numpy(image), torch.from_numpy(mask))
            if self.cache:
                self._cached[index] = item
        return item

    def preload(self) -> "SegmentationDataset":
        """Decode everything now (before DataLoader workers fork, so they share the cache).

        With skip_bad, also without the cache: every pair is decoded once and the bad ones are left out."""
        if self.skip_bad:
            self._leave_out_bad_pairs()
        elif self.cache:
            for i in range(len(self)):
                self.sample(i)
        return self

    def _leave_out_bad_pairs(self) -> None:
        good, bad = [], []
        for index, (image, mask) in enumerate(self.spec.pairs):
            try:
                self.sample(index)
                good.append(index)
            except DataError as e:
                message = str(e)
                path = mask if message.startswith(f"{mask}: ") else image
                bad.append((path, message.removeprefix(f"{path}: ")))
        if bad and not good:
            raise DataError(f"{self.spec.root}: every pair of split '{self.spec.name}' is bad ({len(bad)}); "
                            f"the first: {bad[0][0]}: {bad[0][1]}")
        if bad:
            print(f"skip_bad: left out {len(bad)} bad pair(s) of split '{self.spec.name}', "
                  f"e.g. {bad[0][0]}: {bad[0][1]}", file=sys.stderr)
        self.skipped += bad
        self.spec = dataclasses.replace(self.spec, pairs=[self.spec.pairs[i] for i in good], skipped=self.skipped)
        self._cached = [self._cached[i] for i in good]

    def __getitem__(self, key):
        """key: an index, or (index, augmentation seed) from EpochBatchSampler."""
        index, seed = key if isinstance(key, tuple) else (key, None)
        image, mask = self.sample(index)
        if self.native:
            image, mask = patch(image, mask, self.size, seed, self.spec.classes.ignore_index)
        if self.transform is not None and seed is not None:
            image, mask = augment_pair(self.transform, image, mask, seed)
        return image, mask.long(), index


def write_skipped(run_dir: Path, *datasets: SegmentationDataset) -> Path | None:
    """<run_dir>/skipped.txt: one "file<TAB>reason" line per pair left out by skip_bad (None if nothing was)."""
    lines = {f"{path}\t{' '.join(reason.split())}": None for dataset in datasets for path, reason in dataset.skipped}
    if not lines:
        return None
    path = Path(run_dir) / "skipped.txt"
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return path
