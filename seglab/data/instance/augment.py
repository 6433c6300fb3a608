"""Paired augmentation of an image, its boxes and its instance masks (torchvision.transforms.v2), seeded.

Presets (`augment=`; True means light, False none):
  none    the sample as decoded and resized
  flip    horizontal flip
  flips   horizontal and vertical flips (no up in the image: nuclei, cells, aerial views)
  light   random resized crop (area 50-100%, aspect within 3/4-4/3 of the image's) back to the sample's
          size (scale jitter + random crop), horizontal flip
  strong  as light with area 25-100%, then colour jitter (brightness, contrast, saturation 0.3)
  microscopy  as light, both flips, then grey (p 0.25), inverted (p 0.25: bright nuclei on dark become dark
          on bright, as in brightfield and stained tissue) and colour jitter (brightness, contrast,
          saturation 0.2, hue 0.05): one stain's images teach the model the others' look
          (seglab.data.augment.microscopy_colours)
With object_size (seglab/data/instance/object_size.py) the random resized crops are left out: the sample is
already a random window at a jittered scale.
The image, the masks (`tv_tensors.Mask`: nearest neighbour, so masks stay binary) and the boxes
(`tv_tensors.BoundingBoxes`, so box-aware transforms such as RandomIoUCrop can be added) go through
the same transform. Afterwards the boxes are re-derived from the transformed masks (the tight box
of each mask, never looser than it), and instances whose mask became empty are dropped.

Determinism: as seglab.data.augment, the pipeline runs inside a fork of torch's global CPU
generator seeded with the sample's seed, so the result depends only on (sample, seed, preset).
"""

from __future__ import annotations

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from seglab.data.instance.spec import boxes_of
from seglab.data import augment as semantic_augment


def _none(height: int, width: int, crop: bool = True):
    return None


def _flip(height: int, width: int, crop: bool = True) -> v2.Transform:
    return v2.RandomHorizontalFlip()


def _flips(height: int, width: int, crop: bool = True) -> v2.Transform:
    return v2.Compose([v2.RandomHorizontalFlip(), v2.RandomVerticalFlip()])


def _crop(height: int, width: int, scale: tuple[float, float]) -> v2.Transform:
    aspect = width / height
    return v2.RandomResizedCrop((height, width), scale=scale, ratio=(aspect * 3 / 4, aspect * 4 / 3), antialias=True)


def _crops(height: int, width: int, scale: tuple[float, float], crop: bool) -> list[v2.Transform]:
    return [_crop(height, width, scale)] if crop else []


def _light(height: int, width: int, crop: bool = True) -> v2.Transform:
    return v2.Compose([*_crops(height, width, (0.5, 1.0), crop), v2.RandomHorizontalFlip()])


def _strong(height: int, width: int, crop: bool = True) -> v2.Transform:
    return v2.Compose([*_crops(height, width, (0.25, 1.0), crop), v2.RandomHorizontalFlip(),
                       v2.ColorJitter(brightness=0.3, contrast=0.3, saturation=0.3)])


def _microscopy(height: int, width: int, crop: bool = True) -> v2.Transform:
    return v2.Compose([*_crops(height, width, (0.5, 1.0), crop), v2.RandomHorizontalFlip(), v2.RandomVerticalFlip(),
                       *semantic_augment.microscopy_colours()])


PRESETS = {"none": _none, "flip": _flip, "flips": _flips, "light": _light, "strong": _strong,
           "microscopy": _microscopy}
COLOUR_PRESETS = ("strong", "microscopy")  # presets that change colours (the others move pixels only)
VERTICAL_FLIP_PRESETS = ("flips", "microscopy")  # presets that show images upside down (instance tta's views)


def preset_name(augment) -> str:
    return semantic_augment.preset_name(augment, PRESETS, "instance augmentation preset")


def boxes_from_masks(masks: torch.Tensor) -> torch.Tensor:
    """xyxy float32 [N, 4] of CPU masks [N, H, W] in pixel edges (x2 = last column + 1); zeros when empty.

    Computed in NumPy (seglab.data.instance.spec.boxes_of): on small masks torch's reductions cost
    10-20 ms each when the intra-op thread pool competes for busy cores."""
    return torch.from_numpy(boxes_of(masks.numpy().astype(bool)))


def augment_instances(preset: str, image: torch.Tensor, masks: torch.Tensor, seed: int,
                      crop: bool = True) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """image uint8 [3, H, W], masks uint8 [N, H, W] -> (image, masks, kept) where `kept` indexes the
    input instances still present; same (inputs, preset, seed), same result. crop=False leaves the preset's
    random resized crop out (object_size samples are already windows at a jittered scale)."""
    height, width = image.shape[-2:]
    transform = PRESETS[preset](height, width, crop)
    if transform is None:
        return image, masks, torch.arange(masks.shape[0])
    boxes = tv_tensors.BoundingBoxes(boxes_from_masks(masks), format="XYXY", canvas_size=(height, width))
    threads = torch.get_num_threads()
    if threads > 1:  # small tensors: a busy intra-op pool costs more than it gives (seglab.data.augment)
        torch.set_num_threads(1)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(int(seed))
            out_image, out_masks, _ = transform(tv_tensors.Image(image), tv_tensors.Mask(masks), boxes)
    finally:
        if threads > 1:
            torch.set_num_threads(threads)
    out_masks = out_masks.as_subclass(torch.Tensor)
    kept = torch.nonzero(out_masks.flatten(1).any(dim=1)).flatten()
    return out_image.as_subclass(torch.Tensor).contiguous(), out_masks.index_select(0, kept), kept
