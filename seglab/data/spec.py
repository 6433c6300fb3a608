"""What every dataset format hands to the rest of seglab: image/mask pairs plus the class table."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from seglab.data.io import DataError


@dataclass
class ClassTable:
    names: list[str]
    colors: list[tuple[int, int, int]]
    ignore_index: int = 255

    @property
    def num_classes(self) -> int:
        return len(self.names)

    def to_dict(self) -> dict:
        return {"names": list(self.names), "colors": [list(c) for c in self.colors], "ignore_index": self.ignore_index}

    @classmethod
    def from_dict(cls, d: dict) -> "ClassTable":
        return cls(list(d["names"]), [tuple(c) for c in d["colors"]], int(d["ignore_index"]))


@dataclass
class SplitSpec:
    """One split of a dataset: the pairs in order, the class table and the raw-value -> class-id map."""

    name: str
    pairs: list[tuple[Path, Path]]
    classes: ClassTable
    lut: np.ndarray  # int16[256]: raw mask value -> class id, ignore_index, or -1 (invalid)
    root: Path = field(default_factory=Path)
    mask_colors: dict | None = None  # colour masks (RGB): {(r, g, b): raw value}; None = masks hold values
    skipped: list[tuple[Path, str]] = field(default_factory=list)  # skip_bad=true: (file, reason) left out
    notes: list[str] = field(default_factory=list)  # one-line facts train and verify print (how masks were read)
    # (image, mask) -> raw values uint8 [H, W] for formats whose masks are not label images (instance layouts,
    # seglab/data/semantic_from_instance.py); None = seglab.data.io.read_mask(mask, mask_colors)
    read_mask: Callable[[Path, Path], np.ndarray] | None = None


def keep_going(skip_bad: bool, skipped: list, path: Path, reason: str) -> None:
    """A bad file: raise a DataError naming it, or (skip_bad) note it in `skipped` and carry on."""
    if not skip_bad:
        raise DataError(f"{path}: {reason}")
    skipped.append((Path(path), reason))


def default_colors(n: int) -> list[tuple[int, int, int]]:
    """Distinct colours for n classes (the Pascal VOC bit-interleaved palette)."""
    colors = []
    for i in range(n):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        colors.append((r, g, b))
    return colors
