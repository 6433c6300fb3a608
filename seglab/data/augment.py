"""Paired image + mask augmentation on torchvision.transforms.v2, a pure function of a per-sample seed.

Presets (`augment_preset=`; `augment=false` means none):
  none    the sample as decoded (stretched to the training size)
  flip    horizontal flip only: the training pixels keep the evaluation framing. Best for short CPU
          budgets (a few thousand samples), where cropping costs more accuracy than it buys
  flips   horizontal and vertical flips: for images with no up (microscopy, aerial, satellite)
  light   random resized crop (area 50-100%, aspect 3/4-4/3 of the training size's) back to the training
          size, horizontal flip
  strong  random resized crop (area 25-100%), horizontal flip, then with probability 1/2 a random
          affine (rotation +-15 degrees, zoom out to 75%; the uncovered border is 0 in the image and the
          ignore index in the mask), colour jitter (brightness, contrast, saturation 0.3; no hue: it
          costs more than everything else together)
  microscopy  as light with both flips, then the stain steps of `microscopy_colours`: grey (p 0.25), inverted
          (p 0.25: bright nuclei on dark become dark on bright, as in brightfield and stained tissue),
          colour jitter (brightness, contrast, saturation 0.2, hue 0.05)
With patch training (`resize=crop`, seglab/data/patches.py) the sample is already a window at native
resolution, so the presets run without their random resized crop (which would change the scale):
light is then a flip, strong a flip plus the affine and colour steps.
Masks are `tv_tensors.Mask`, so every geometric step uses nearest neighbour for them and no new
label values appear. The eval preset is the plain decode + stretch to the training size (no
augmentation); validation and prediction see exactly those pixels.

Determinism: the pipeline draws from torch's global CPU generator, so `augment_pair` forks that
generator's state, seeds it with the sample's seed, runs the pipeline and restores the state. The
result depends only on (sample, seed, preset): not on worker processes, ranks or where a run resumed.
"""

from __future__ import annotations

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from seglab.data.size import as_hw


def _none(size, ignore_index: int, crop: bool = True):
    return None


def _flip(size, ignore_index: int, crop: bool = True) -> v2.Transform:
    return v2.RandomHorizontalFlip()


def _flips(size, ignore_index: int, crop: bool = True) -> v2.Transform:
    return v2.Compose([v2.RandomHorizontalFlip(), v2.RandomVerticalFlip()])


def _crop(size, scale: tuple[float, float]) -> v2.Transform:
    """Random crop of `scale` of the area, its aspect within 3/4-4/3 of the training size's, resized to it."""
    height, width = as_hw(size)
    aspect = width / height
    return v2.RandomResizedCrop((height, width), scale=scale, ratio=(aspect * 3 / 4, aspect * 4 / 3), antialias=True)


def _light(size, ignore_index: int, crop: bool = True) -> v2.Transform:
    return v2.Compose([
        *([_crop(size, (0.5, 1.0))] if crop else []),
        v2.RandomHorizontalFlip(),
    ])


def _strong(size, ignore_index: int, crop: bool = True) -> v2.Transform:
    fill = {tv_tensors.Image: 0, tv_tensors.Mask: ignore_index}
    return v2.Compose([
        *([_crop(size, (0.25, 1.0))] if crop else []),
        v2.RandomHorizontalFlip(),
        v2.RandomApply([v2.RandomAffine(degrees=15, scale=(0.75, 1.0), fill=fill)], p=0.5),
        v2.ColorJitter(brightness=0.3, contrast=0.3, saturation=0.3),
    ])


def microscopy_colours() -> list[v2.Transform]:
    """One stain's images made to look like another's (fluorescence, brightfield, H&E); the same steps in
    the instance and panoptic presets (seglab/data/instance/augment.py)."""
    return [v2.RandomGrayscale(p=0.25), v2.RandomInvert(p=0.25),
            v2.ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2, hue=0.05)]


def _microscopy(size, ignore_index: int, crop: bool = True) -> v2.Transform:
    return v2.Compose([
        *([_crop(size, (0.5, 1.0))] if crop else []),
        v2.RandomHorizontalFlip(), v2.RandomVerticalFlip(),
        *microscopy_colours(),
    ])


PRESETS = {"none": _none, "flip": _flip, "flips": _flips, "light": _light, "strong": _strong,
           "microscopy": _microscopy}


def preset_name(augment, presets: dict = PRESETS, what: str = "augmentation preset") -> str:
    """`augment` as a dataset takes it: a preset name of `presets`, or True (light) / False (none)."""
    if augment is True:
        return "light"
    if augment is False or augment is None:
        return "none"
    name = str(augment).lower()
    if name not in presets:
        raise KeyError(f"unknown {what} '{augment}'. Valid presets: {', '.join(presets)}")
    return name


def build_augment(augment, size, ignore_index: int = 255, resize_crop: bool = True) -> v2.Transform | None:
    """The training pipeline for a preset name (or True / False); None when it does nothing.

    resize_crop=False (patch training) leaves out the presets' random resized crop."""
    return PRESETS[preset_name(augment)](size, ignore_index, resize_crop)


def augment_pair(transform: v2.Transform, image: torch.Tensor, mask: torch.Tensor,
                 seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """image uint8 [3, H, W], mask uint8 [H, W] -> augmented pair; same seed, same result.

    The global CPU generator is seeded inside a fork and restored afterwards, so callers' random
    streams are untouched (CUDA generators are neither read nor changed). The pipeline runs on one
    thread: on small tensors a busy intra-op pool costs up to 10x (measured on 2 shared cores)."""
    threads = torch.get_num_threads()
    if threads > 1:  # 128x128 ops gain nothing from a thread pool, and lose a lot when cores are busy
        torch.set_num_threads(1)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(int(seed))
            out_image, out_mask = transform(tv_tensors.Image(image), tv_tensors.Mask(mask))
    finally:
        if threads > 1:
            torch.set_num_threads(threads)
    return out_image.as_subclass(torch.Tensor).contiguous(), out_mask.as_subclass(torch.Tensor).contiguous()
