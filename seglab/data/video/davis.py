"""DAVIS video object segmentation folders, read as released.

    <root>/JPEGImages/<res>/<seq>/00000.jpg ...     (or JPEGImages/<seq>/, without the resolution level)
    <root>/Annotations/<res>/<seq>/00000.png ...     object ids per pixel
    <root>/ImageSets/<year>/<split>.txt              optional: the sequences of a split, one per line

Annotations: DAVIS 2017 stores object ids 1..K (palette PNG, 0 background, 255 void when present);
DAVIS 2016 stores one object as 0 / 255 grayscale: a sequence whose annotations hold only the
values 0 and 255 is read as one object, id 1. Every frame may have an annotation (DAVIS 2016) or only
the first (DAVIS 2017 test); frames without one are not scored. Without ImageSets, every sequence
belongs to every split (the folder is one split).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from seglab.data.io import DataError

FRAME_SUFFIXES = (".jpg", ".jpeg", ".png")
VOID = 255


@dataclass
class Sequence:
    name: str
    frames: Path  # the folder of frames
    annotations: dict[int, Path]  # frame index -> annotation PNG
    binary: bool  # DAVIS 2016 0/255 masks: 255 is object 1

    def frame_files(self) -> list[Path]:
        return sorted(p for p in self.frames.iterdir() if p.suffix.lower() in FRAME_SUFFIXES)

    def object_ids(self, frame: int) -> np.ndarray:
        """int64 [H, W]: 0 background, 1..K objects, 255 void."""
        path = self.annotations[frame]
        try:
            ids = np.asarray(Image.open(path)).astype(np.int64)
        except OSError as e:
            raise DataError(f"{path}: not a readable annotation PNG ({e})") from None
        if ids.ndim == 3:
            raise DataError(f"{path}: an annotation must be one channel (object ids or a palette PNG), "
                            f"got {ids.shape[2]} channels")
        return np.where(ids == VOID, 1, ids) if self.binary else ids


def matches(root: Path) -> bool:
    return (root / "JPEGImages").is_dir() and (root / "Annotations").is_dir()


def _level(folder: Path) -> Path:
    """JPEGImages/480p/ or JPEGImages/ itself: the folder whose subfolders are sequences of frames."""
    levels = [p for p in sorted(folder.iterdir()) if p.is_dir()]
    for level in levels:
        inner = [p for p in level.iterdir() if p.is_dir()]
        if inner and not any(p.suffix.lower() in FRAME_SUFFIXES for p in level.iterdir() if p.is_file()):
            return level  # a resolution level (480p, Full-Resolution): the first one
    return folder


def split_names(root: Path, split: str) -> list[str] | None:
    lists = sorted((root / "ImageSets").glob(f"*/{split}.txt")) if (root / "ImageSets").is_dir() else []
    if not lists:
        return None
    return [line.strip() for line in lists[-1].read_text().splitlines() if line.strip()]


def load_sequences(root: str | Path, split: str = "val") -> list[Sequence]:
    root = Path(root)
    if not matches(root):
        raise DataError(f"{root}: not a DAVIS folder (expected JPEGImages/ and Annotations/)")
    images, annotations = _level(root / "JPEGImages"), _level(root / "Annotations")
    names = split_names(root, split)
    available = sorted(p.name for p in images.iterdir() if p.is_dir())
    if names is None:
        names = available
    missing = [n for n in names if n not in available]
    if missing:
        raise DataError(f"{root}: ImageSets lists sequences with no frames in {images}: {', '.join(missing[:5])}")
    sequences = []
    for name in names:
        frames = images / name
        order = {p.stem: i for i, p in enumerate(sorted(p for p in frames.iterdir()
                                                       if p.suffix.lower() in FRAME_SUFFIXES))}
        if not order:
            raise DataError(f"{frames}: no frames")
        found = {}
        for png in sorted((annotations / name).glob("*.png")) if (annotations / name).is_dir() else []:
            if png.stem not in order:
                raise DataError(f"{png}: an annotation for a frame that is not in {frames}")
            found[order[png.stem]] = png
        if not found:
            raise DataError(f"{annotations / name}: no annotation PNGs for sequence {name!r}")
        values = np.unique(np.asarray(Image.open(found[min(found)])))
        sequences.append(Sequence(name, frames, found, binary=set(values.tolist()) <= {0, VOID} and VOID in values))
    if not sequences:
        raise DataError(f"{root}: no sequences for split {split!r}")
    return sequences
