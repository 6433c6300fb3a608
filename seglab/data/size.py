"""Training sizes: one int (square, S x S) or a height and width (`imgsz=256x352`, `imgsz: [256, 352]`).

Street scenes such as CamVid (360x480) or Cityscapes (1024x2048) are wider than tall; a rectangular
training size keeps their aspect ratio instead of stretching them to a square, which thins vertical
structures (poles, pedestrians) further.
"""

from __future__ import annotations

import re

SIZE_TEXT = re.compile(r"^\s*(\d+)\s*(?:[x,]\s*(\d+)\s*)?$")  # "256", "256x352", "256,352"


def as_hw(size) -> tuple[int, int]:
    """(height, width) from an int S, an (H, W) pair or the text "HxW"; ValueError for anything else."""
    if isinstance(size, bool):
        raise ValueError("not an image size: expected S, [H, W] or HxW")
    if isinstance(size, int):
        hw = (size, size)
    elif isinstance(size, str):
        match = SIZE_TEXT.match(size)
        if not match:
            raise ValueError("not an image size: expected S or HxW, e.g. 256 or 256x352")
        hw = (int(match.group(1)), int(match.group(2) or match.group(1)))
    elif isinstance(size, (list, tuple)) and len(size) == 2 and all(
            isinstance(v, int) and not isinstance(v, bool) for v in size):
        hw = (int(size[0]), int(size[1]))
    else:
        raise ValueError("not an image size: expected S, [H, W] or HxW")
    if min(hw) < 1:
        raise ValueError("height and width must be at least 1")
    return hw


def canonical(size) -> int | list[int]:
    """The config's form of a size: an int when square, [H, W] when not."""
    height, width = as_hw(size)
    return height if height == width else [height, width]


def size_text(size) -> str:
    """'256x352' (height x width), as printed and used in file names."""
    height, width = as_hw(size)
    return f"{height}x{width}"
