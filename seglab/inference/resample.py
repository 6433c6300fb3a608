"""Scores at the training scale resized to an image's own size, in row bands of bounded memory.

A stretch model's probabilities come out at the training size (say 3 x 224 x 224, small); the image
may be 8000 x 8000. Resizing them in one piece would build C x H x W float32 values (768 MB for three
classes); `resized_bands` builds at most `band_pixels` output pixels at a time instead and hands each
band to the caller (seglab.inference.tiling.assemble turns bands into labels and probabilities).

The interpolation is bilinear with half-pixel centres (`align_corners=False`), the same as
`F.interpolate(..., mode="bilinear")` in one piece, done separably: the rows a band needs are
interpolated first, at the small width, then the band is widened. Every output row is computed the
same way whatever the band size, so the result does not depend on `band_pixels`.
"""

from __future__ import annotations

from typing import Iterator

import torch
import torch.nn.functional as F

BAND_PIXELS = 1 << 21  # 2 M output pixels per band: C x 8 MB of float32


def source_rows(first: int, count: int, source: int, target: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For target rows first..first+count-1: the two source rows each blends and the weight of the second."""
    rows = torch.arange(first, first + count, dtype=torch.float64)
    position = ((rows + 0.5) * (source / target) - 0.5).clamp_min(0)
    low = position.floor().long().clamp_max(source - 1)
    high = (low + 1).clamp_max(source - 1)
    return low, high, (position - low).float()


def resized_bands(scores: torch.Tensor, size: tuple[int, int],
                  band_pixels: int = BAND_PIXELS) -> Iterator[tuple[int, torch.Tensor]]:
    """Yield (first row, scores [C, rows, W]) bands of `scores` [C, h, w] resized to `size` (H, W)."""
    scores = scores.float()
    _, h, w = scores.shape
    height, width = size
    rows = max(1, band_pixels // max(1, width))
    for top in range(0, height, rows):
        count = min(rows, height - top)
        if h == height:
            band = scores[:, top:top + count]
        else:
            low, high, weight = source_rows(top, count, h, height)
            band = torch.lerp(scores[:, low], scores[:, high], weight[:, None])
        if w != width:  # the rows are final: a bilinear resize of the width alone
            band = F.interpolate(band[None], size=(count, width), mode="bilinear", align_corners=False)[0]
        yield top, band
