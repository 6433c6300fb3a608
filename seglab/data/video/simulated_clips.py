"""Training clips simulated from still images with object masks (no video masks needed).

An item is a clip of K frames made from one object of one image (the prompt data's sample,
seglab/data/prompt/dataset.py: the image on a square S x S canvas, the object's mask, ignored pixels):
- motion: a smooth random affine sequence (`sample_motion`): each clip draws a velocity of translation
  (up to `MAX_SHIFT` of S per frame), rotation, scale and shear, and every frame adds that velocity plus
  a little noise to the frame before's parameters, so the transform is cumulative and smooth; frame 0 is
  the image itself. Each frame is the canvas warped by its parameters (`apply_motion`, torchvision's
  affine: image bilinear, mask and ignore nearest; what comes into view from outside is ignored);
- photometric jitter: brightness and contrast per frame (within 10%);
- `given`: what a tracker is given as the frame before's mask: frame 0's truth for frame 0 (the anchor's
  mask), and for frame k > 0 a perturbed copy of frame k-1's truth (dilated, eroded or shifted
  by up to `MAX_MORPH` / `MAX_GIVEN_SHIFT` of the object's radius, or as it is).
Items are `(frames uint8 [K, 3, S, S], {"masks": uint8 [K, S, S], "ignore": bool [K, S, S],
"given": uint8 [K, S, S]}, index)`; with a key `(index, seed)` (EpochBatchSampler's) an item is a pure
function of the seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage
from torch.utils.data import Dataset
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from seglab.data.prompt.dataset import ObjectDataset
from seglab.data.prompt.objects import ObjectSplit

MAX_SHIFT = 0.05  # translation velocity, fraction of S per frame
MAX_ROTATION = 4.0  # degrees per frame
MAX_ZOOM = 0.04  # scale change per frame
MAX_SHEAR = 2.0  # degrees per frame
NOISE = 0.3  # per-frame noise, as a fraction of the velocity's range
PHOTOMETRIC = 0.1
MAX_MORPH = 0.3  # dilation / erosion of a given mask, at most this fraction of the object's radius
MAX_GIVEN_SHIFT = 0.3  # its shift, at most this fraction of the object's radius


@dataclass(frozen=True)
class Motion:
    """One frame's affine parameters (torchvision's `affine`: about the centre, degrees, pixels)."""

    angle: float = 0.0
    translate: tuple[float, float] = (0.0, 0.0)
    scale: float = 1.0
    shear: tuple[float, float] = (0.0, 0.0)


def sample_motion(rng: np.random.Generator, frames: int, size: int) -> list[Motion]:
    """A smooth random sequence of `frames` affine parameter sets, the first the identity."""
    velocity = np.array([rng.uniform(-MAX_ROTATION, MAX_ROTATION), *rng.uniform(-MAX_SHIFT, MAX_SHIFT, 2) * size,
                         rng.uniform(-MAX_ZOOM, MAX_ZOOM), *rng.uniform(-MAX_SHEAR, MAX_SHEAR, 2)])
    spread = NOISE * np.array([MAX_ROTATION, MAX_SHIFT * size, MAX_SHIFT * size, MAX_ZOOM, MAX_SHEAR, MAX_SHEAR])
    state, out = np.zeros(6), [Motion()]
    for _ in range(frames - 1):
        state = state + velocity + rng.uniform(-1, 1, 6) * spread
        out.append(Motion(float(state[0]), (float(state[1]), float(state[2])), float(np.exp(state[3])),
                          (float(state[4]), float(state[5]))))
    return out


def apply_motion(image: torch.Tensor, mask: torch.Tensor, ignore: torch.Tensor, motion: Motion):
    """image uint8 [3, S, S], mask uint8 [S, S], ignore bool [S, S] -> the same warped by one affine."""
    args = {"angle": motion.angle, "translate": list(motion.translate), "scale": motion.scale,
            "shear": list(motion.shear)}
    warped = TF.affine(image, interpolation=InterpolationMode.BILINEAR, fill=0, **args)
    warped_mask = TF.affine(mask[None], interpolation=InterpolationMode.NEAREST, fill=0, **args)[0]
    warped_ignore = TF.affine(ignore[None].to(torch.uint8), interpolation=InterpolationMode.NEAREST, fill=1, **args)[0]
    return warped, warped_mask, warped_ignore.bool()


def jitter(image: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    image = TF.adjust_brightness(image, 1 + rng.uniform(-PHOTOMETRIC, PHOTOMETRIC))
    return TF.adjust_contrast(image, 1 + rng.uniform(-PHOTOMETRIC, PHOTOMETRIC))


def perturbed(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A plausible wrong previous mask: dilated, eroded, shifted, or unchanged (bool [S, S])."""
    kind = rng.integers(4)
    radius = np.sqrt(mask.sum() / np.pi)
    amount = int(rng.integers(1, max(1, round(MAX_MORPH * radius)) + 1))
    if kind == 0:
        return ndimage.binary_dilation(mask, iterations=amount)
    if kind == 1:
        eroded = ndimage.binary_erosion(mask, iterations=amount)
        return eroded if eroded.any() else mask
    if kind == 2:
        shift = np.round(rng.uniform(-MAX_GIVEN_SHIFT, MAX_GIVEN_SHIFT, 2) * radius).astype(int)
        return ndimage.shift(mask, shift, order=0, mode="constant", cval=False)
    return mask


class SimulatedClips(Dataset):
    """Clips of `frames` frames over the images of ObjectSplits (each image once per epoch, one object each)."""

    def __init__(self, splits: list[ObjectSplit], size: int, frames: int = 3, augment: bool = True):
        if frames < 2:
            raise ValueError(f"a training clip needs at least 2 frames (an anchor and one to track), got {frames}")
        self.objects = ObjectDataset(splits, size, augment=augment)
        self.size, self.frames = int(size), int(frames)

    def __len__(self) -> int:
        return len(self.objects)

    def __getitem__(self, key):
        index, seed = key if isinstance(key, tuple) else (key, None)
        image, target, _ = self.objects[key]
        rng = np.random.default_rng((index if seed is None else seed, 1))  # the object draw uses `seed` itself
        mask, ignore = target["mask"], target["ignore"]
        frames, masks, ignores = [], [], []
        for motion in sample_motion(rng, self.frames, self.size):
            warped, warped_mask, warped_ignore = apply_motion(image, mask, ignore, motion)
            frames.append(jitter(warped, rng))
            masks.append(warped_mask)
            ignores.append(warped_ignore)
        truth = [m.numpy() > 0 for m in masks]
        given = [truth[0]] + [perturbed(t, rng) for t in truth[:-1]]
        return torch.stack(frames), {"masks": torch.stack(masks), "ignore": torch.stack(ignores),
                                     "given": torch.from_numpy(np.stack(given).astype(np.uint8))}, index


def collate(batch):
    clips, targets, indices = zip(*batch)
    return (torch.stack(clips), {key: torch.stack([t[key] for t in targets]) for key in targets[0]},
            torch.tensor(indices))
