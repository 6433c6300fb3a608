"""Colour masks and overlays as uint8 RGB arrays."""

from __future__ import annotations

import numpy as np


def colorize(labels: np.ndarray, colors: list, ignore_index: int = 255) -> np.ndarray:
    """Class ids [H, W] -> RGB [H, W, 3]; ignored pixels are white."""
    palette = np.full((256, 3), 255, dtype=np.uint8)
    palette[: len(colors)] = np.asarray(colors, dtype=np.uint8)
    if 0 <= ignore_index < 256 and ignore_index >= len(colors):
        palette[ignore_index] = 255
    return palette[labels]


def overlay(image: np.ndarray, labels: np.ndarray, colors: list, ignore_index: int = 255, alpha: float = 0.5,
            rows_per_chunk: int = 512) -> np.ndarray:
    """Blend the colour mask over the image [H, W, 3]; ignored pixels show the image unchanged.

    Computed `rows_per_chunk` rows at a time, so a very large image needs little float scratch memory."""
    out = np.empty_like(image, dtype=np.uint8)
    for top in range(0, image.shape[0], rows_per_chunk):
        rows = slice(top, top + rows_per_chunk)
        part, ids = image[rows], labels[rows]
        colour = colorize(ids, colors, ignore_index).astype(np.float32)
        blend = part.astype(np.float32) * (1 - alpha) + colour * alpha
        ignored = ids == ignore_index
        blend[ignored] = part[ignored]
        out[rows] = blend.round().clip(0, 255).astype(np.uint8)
    return out


def side_by_side(*panels: np.ndarray, gap: int = 4) -> np.ndarray:
    """Panels of equal height next to each other with a white gap."""
    height = panels[0].shape[0]
    spacer = np.full((height, gap, 3), 255, dtype=np.uint8)
    parts = []
    for panel in panels:
        parts += [panel, spacer]
    return np.concatenate(parts[:-1], axis=1)
