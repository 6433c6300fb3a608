"""Patch training (`resize=crop`): fixed-size windows of full-resolution pairs, the nnU-Net / remote-sensing way.

`patch(image, mask, size, seed, ignore_index)` cuts a `size` (S or (H, W)) window out of a pair at its
own resolution, so the model learns objects at the scale they have in the files, and inference tiles
at that same scale. The window's position is drawn from a generator seeded by the sample's seed
(the (index, seed) key of EpochBatchSampler, on a stream of its own, so it is not correlated with
the augmentation drawn from the same seed); without a seed it is the centre window (deterministic,
for evaluation-style access). A side shorter than the window is padded: image 0, mask the ignore
index, so the padding never counts in the loss; the image then sits at a random (or centred) offset.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from seglab.data.size import as_hw

PATCH_STREAM = 0x9A7C4  # a constant mixed into the seed: the patch position's own random stream


def _place(length: int, window: int, pick: Callable[[int], int]) -> tuple[int, int, int]:
    """(first source pixel, first window pixel, pixels copied) along one axis."""
    if length >= window:
        return pick(length - window), 0, window
    return 0, pick(window - length), length


def patch(image: torch.Tensor, mask: torch.Tensor, size, seed: int | None,
          ignore_index: int) -> tuple[torch.Tensor, torch.Tensor]:
    """image uint8 [3, H, W], mask uint8 [H, W] -> new tensors [3, h, w], [h, w] (`size` = (h, w) or S)."""
    height, width = as_hw(size)
    if seed is None:
        pick = lambda slack: slack // 2  # noqa: E731
    else:
        generator = np.random.default_rng([PATCH_STREAM, int(seed)])
        pick = lambda slack: int(generator.integers(0, slack + 1))  # noqa: E731
    sy, dy, ny = _place(mask.shape[0], height, pick)
    sx, dx, nx = _place(mask.shape[1], width, pick)
    out_image = image.new_zeros(image.shape[0], height, width)
    out_mask = mask.new_full((height, width), ignore_index)
    out_image[:, dy:dy + ny, dx:dx + nx] = image[:, sy:sy + ny, sx:sx + nx]
    out_mask[dy:dy + ny, dx:dx + nx] = mask[sy:sy + ny, sx:sx + nx]
    return out_image, out_mask
