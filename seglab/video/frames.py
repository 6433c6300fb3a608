"""The frames of a clip, read on demand: a folder of images or a video file, never all in memory.

A folder: its image files sorted by name (DAVIS `JPEGImages/480p/<seq>/00000.jpg ...`), each read
when asked for. A video file: decoded once, front to back, as far as the frames asked for so far;
each decoded frame is kept as a lossless PNG (compression level 1) in a temporary folder, so going
back (reverse propagation, a correction on an earlier frame) reads a file instead of decoding the
clip again. Only the last `cache` frames are held in memory.
"""
from __future__ import annotations

import shutil
import tempfile
from collections import OrderedDict
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image

from seglab.data.io import DataError, read_image

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


class FrameSource:
    """`len(source)` frames (a video file's count is known once decoded to the end: `len` decodes it),
    `source[i]` -> uint8 RGB [H, W, 3]; `names[i]` the frame's file stem (folders) or its 5-digit index."""

    def __init__(self, path: str | Path, cache: int = 8):
        self.path = Path(path)
        self.cache, self._memory = max(1, int(cache)), OrderedDict()
        self.rate = Fraction(25)
        if self.path.is_dir():
            self._files = sorted(p for p in self.path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not self._files:
                raise DataError(f"{self.path}: no frames (image files {', '.join(IMAGE_SUFFIXES)}) in the folder")
            self._decoder, self._spill = None, None
        elif self.path.is_file():
            from seglab.inference.video import _frames

            self.rate, self._decoder = _frames(self.path)
            self._spill = Path(tempfile.mkdtemp(prefix="seglab_frames_"))
            self._files = []
        else:
            raise DataError(f"{self.path}: no such video file or folder of frames")

    @property
    def names(self) -> list[str]:
        self._decode_to(None)
        return [p.stem for p in self._files] if self._spill is None else [f"{i:05d}" for i in range(len(self._files))]

    def __len__(self) -> int:
        self._decode_to(None)
        return len(self._files)

    def __getitem__(self, index: int) -> np.ndarray:
        if index < 0:
            index += len(self)
        if index in self._memory:
            self._memory.move_to_end(index)
            return self._memory[index]
        self._decode_to(index)
        if not 0 <= index < len(self._files):
            raise IndexError(f"{self.path}: frame {index} out of range (the clip has {len(self._files)} frames)")
        frame = np.asarray(read_image(self._files[index]))
        self._remember(index, frame)
        return frame

    def size(self) -> tuple[int, int]:
        """(H, W) of the first frame."""
        return tuple(self[0].shape[:2])

    def _remember(self, index: int, frame: np.ndarray) -> None:
        self._memory[index] = frame
        while len(self._memory) > self.cache:
            self._memory.popitem(last=False)

    def _decode_to(self, index: int | None) -> None:
        """Decode a video file up to frame `index` (None: to its end), spilling frames to PNG files."""
        if self._decoder is None:
            return
        while index is None or len(self._files) <= index:
            frame = next(self._decoder, None)
            if frame is None:
                self._decoder = None
                return
            path = self._spill / f"{len(self._files):05d}.png"
            Image.fromarray(frame).save(path, compress_level=1)
            self._remember(len(self._files), frame)
            self._files.append(path)

    def close(self) -> None:
        """Remove a video file's decoded frames."""
        self._memory.clear()
        if self._spill is not None:
            shutil.rmtree(self._spill, ignore_errors=True)

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown
            pass
