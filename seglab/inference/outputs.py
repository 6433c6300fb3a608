"""Files `predict` writes per image: class ids, colour mask, overlay and (optionally) probabilities."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from seglab.data.spec import ClassTable
from seglab.inference.overlay import colorize, overlay

NAMES = "<name>.png class ids, <name>_color.png, <name>_overlay.png"


def write_masks(out: Path, stem: str, image: np.ndarray, labels: np.ndarray, classes: ClassTable) -> None:
    """<stem>.png (class ids, mode L), <stem>_color.png and <stem>_overlay.png, at the image's size."""
    Image.fromarray(labels).save(out / f"{stem}.png")
    Image.fromarray(colorize(labels, classes.colors, classes.ignore_index)).save(out / f"{stem}_color.png")
    Image.fromarray(overlay(image, labels, classes.colors, classes.ignore_index)).save(out / f"{stem}_overlay.png")


def probs_file(out: Path, stem: str, num_classes: int, height: int, width: int) -> np.ndarray:
    """<stem>_probs.npy opened for writing: float16 [C, H, W], filled in place (memory-mapped)."""
    return np.lib.format.open_memmap(out / f"{stem}_probs.npy", mode="w+", dtype=np.float16,
                                     shape=(num_classes, height, width))


def flush_probs(probs: np.ndarray | None) -> None:
    if isinstance(probs, np.memmap):
        probs.flush()
