"""Sliding-window inference in bounded memory: tiles, blending windows, row bands.

Tiles of `tile` pixels (S for S x S, or (height, width)) overlap by `overlap` (a fraction of the
tile); their starts are spread evenly so the last tile ends at the image edge. Each tile's
probabilities are weighted by a window (constant, or a Gaussian that trusts tile centres more than
edges) and summed, then divided by the summed weights.

Memory: tiles are taken one row of tiles at a time. The weighted sums live in a buffer of
(C + 1) x tile x W float32 values (W = image width) that slides down the image; rows no later tile
touches are handed to the caller as a finished band and the buffer moves on. Peak memory beyond the
input image and the caller's outputs is that buffer, one finished band (at most the same size) and
one batch of tiles (plus the model's activations for it), whatever the image height.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
import torch

from seglab.data.size import as_hw

BLENDS = ("gaussian", "constant")


def tile_starts(length: int, tile: int, overlap: float) -> list[int]:
    """Starts of tiles of `tile` pixels covering [0, length), overlapping by at least `overlap` * tile."""
    if length <= tile:
        return [0]
    stride = max(1, int(tile * (1 - overlap)))
    count = math.ceil((length - tile) / stride) + 1
    return [round(i * (length - tile) / (count - 1)) for i in range(count)]


def blend_window(height: int, width: int, blend: str) -> torch.Tensor:
    """Weights [height, width]: ones, or a Gaussian (sigma = size / 8, peak 1, floor 1e-3)."""
    if blend not in BLENDS:
        raise ValueError(f"blend={blend!r}: expected one of {', '.join(BLENDS)}")
    if blend == "constant":
        return torch.ones(height, width)

    def bump(n: int) -> torch.Tensor:
        x = torch.arange(n, dtype=torch.float64) - (n - 1) / 2
        return torch.exp(-0.5 * (x / (n / 8)) ** 2)

    return torch.outer(bump(height), bump(width)).clamp_min(1e-3).float()


@dataclass
class TileStats:
    tiles: int = 0
    bands: int = 0
    buffer_bytes: int = 0  # the sliding accumulator (sums + weights)
    peak_band_bytes: int = 0  # the largest finished band handed out
    peak_batch_bytes: int = 0  # the largest batch of tile probabilities


def tiled_bands(image: torch.Tensor, tile_probs: Callable[[torch.Tensor], torch.Tensor], num_classes: int,
                tile, overlap: float = 0.25, blend: str = "gaussian", batch: int = 8,
                stats: TileStats | None = None) -> Iterator[tuple[int, torch.Tensor]]:
    """Yield (first row, probabilities [C, rows, W]) bands covering the image top to bottom.

    `image` is uint8 [3, H, W] (any device); `tile` is S or (height, width); `tile_probs` maps a
    uint8 batch [N, 3, h, w] to probabilities [N, C, h, w] (normalisation, TTA and the model live there).
    """
    if not 0 <= overlap < 1:
        raise ValueError(f"overlap={overlap}: expected a fraction in [0, 1)")
    _, height, width = image.shape
    tile_height, tile_width = as_hw(tile)
    th, tw = min(tile_height, height), min(tile_width, width)
    ys, xs = tile_starts(height, th, overlap), tile_starts(width, tw, overlap)
    window = blend_window(th, tw, blend)
    sums = torch.zeros(num_classes, th, width)
    weights = torch.zeros(th, width)
    stats = stats if stats is not None else TileStats()
    stats.buffer_bytes = (sums.numel() + weights.numel()) * 4
    for row, top in enumerate(ys):
        for first in range(0, len(xs), batch):
            columns = xs[first:first + batch]
            crops = torch.stack([image[:, top:top + th, x:x + tw] for x in columns])
            probs = tile_probs(crops).float().cpu()
            stats.tiles += len(columns)
            stats.peak_batch_bytes = max(stats.peak_batch_bytes, probs.numel() * 4)
            for x, p in zip(columns, probs):
                sums[:, :, x:x + tw] += p * window
                weights[:, x:x + tw] += window
        done = (ys[row + 1] if row + 1 < len(ys) else height) - top
        band = sums[:, :done] / weights[:done]
        stats.bands += 1
        stats.peak_band_bytes = max(stats.peak_band_bytes, band.numel() * 4)
        yield top, band
        keep = th - done  # rows the next tile row also covers: slide them to the top
        sums[:, :keep] = sums[:, done:].clone()
        weights[:keep] = weights[done:].clone()
        sums[:, keep:] = 0
        weights[keep:] = 0


def assemble(bands: Iterator[tuple[int, torch.Tensor]], height: int, width: int,
             probs_out: np.ndarray | None = None) -> np.ndarray:
    """Class ids uint8 [H, W] from streamed bands; probabilities also written into `probs_out` [C, H, W]."""
    labels = np.empty((height, width), dtype=np.uint8)
    for top, band in bands:
        rows = band.shape[1]
        labels[top:top + rows] = band.argmax(0).to(torch.uint8).numpy()
        if probs_out is not None:
            probs_out[:, top:top + rows] = band.numpy().astype(probs_out.dtype)
    return labels
