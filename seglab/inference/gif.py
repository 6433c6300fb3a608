"""A small animated GIF of overlay frames (for docs and issue threads): every `step`-th frame, the longer
side at most `size` px, written once at close (frames are kept downscaled, so memory stays small)."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image


class GifWriter:
    def __init__(self, path: Path, rate: Fraction, size: int, step: int = 1):
        if size < 16:
            raise ValueError(f"a GIF side must be at least 16 px (got {size})")
        self.path, self.size, self.step = Path(path), int(size), max(1, int(step))
        self.duration_ms = max(20, round(1000 * self.step / float(rate or 25)))
        self.frames: list[Image.Image] = []
        self.seen = 0

    def write(self, rgb: np.ndarray) -> None:
        keep = self.seen % self.step == 0
        self.seen += 1
        if not keep:
            return
        image = Image.fromarray(np.ascontiguousarray(rgb))
        scale = self.size / max(image.size)
        if scale < 1:
            image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                                 Image.BILINEAR)
        self.frames.append(image.quantize(colors=128, method=Image.Quantize.MEDIANCUT))

    def close(self) -> None:
        if not self.frames:
            return
        temporary = self.path.with_suffix(".gif.part")
        self.frames[0].save(temporary, format="GIF", save_all=True, append_images=self.frames[1:],
                            duration=self.duration_ms, loop=0, optimize=True)
        temporary.replace(self.path)
