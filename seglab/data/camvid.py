"""CamVid in the SegNet release layout (Brostow et al. 2009; 11-class version of the SegNet tutorial).

root/{train,val,test}/*.png, root/{train,val,test}annot/*.png (one class id per pixel, 11 =
Unlabelled), root/{train,val,test}.txt with lines "/SegNet/CamVid/train/x.png
/SegNet/CamVid/trainannot/x.png" (the prefix is stripped). Id 11 is mapped to the ignore index.
`trainval` joins train and val.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from seglab.data.io import DataError
from seglab.data.spec import ClassTable, SplitSpec, keep_going

NAMES = ["sky", "building", "pole", "road", "pavement", "tree", "sign_symbol", "fence", "car", "pedestrian",
         "bicyclist"]
COLORS = [(128, 128, 128), (128, 0, 0), (192, 192, 128), (128, 64, 128), (60, 40, 222), (128, 128, 0),
          (192, 128, 128), (64, 64, 128), (64, 0, 128), (64, 64, 0), (0, 128, 192)]
UNLABELLED = 11
# Median-frequency class weights published with SegNet for ids 0-10 (for loss class weights).
SEGNET_CLASS_WEIGHTS = [0.2595, 0.1826, 4.5640, 0.1417, 0.9051, 0.3826, 9.6446, 1.8418, 0.6823, 6.2478, 7.3614]
PREFIX = "/SegNet/CamVid/"


def is_camvid(root: Path) -> bool:
    return (root / "train.txt").is_file() and (root / "trainannot").is_dir()


def splits(root: Path) -> list[str]:
    """The splits `seglab verify` checks: those with a list file."""
    return [s for s in ("train", "val", "test") if (root / f"{s}.txt").is_file()]


def _pairs(root: Path, split: str, skip_bad: bool = False, skipped: list | None = None) -> list[tuple[Path, Path]]:
    listing = root / f"{split}.txt"
    if not listing.is_file():
        raise DataError(f"{listing}: split list not found (CamVid SegNet layout: train.txt, val.txt, test.txt)")
    pairs = []
    for number, line in enumerate(listing.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2:
            raise DataError(f"{listing}:{number}: expected 'image_path label_path', got {line!r}")
        image, mask = (root / p.removeprefix(PREFIX).lstrip("/") for p in parts)
        missing = [path for path in (image, mask) if not path.is_file()]
        if missing:
            keep_going(skip_bad, skipped, missing[0], f"listed in {listing.name} line {number} but missing")
            continue
        pairs.append((image, mask))
    return pairs


def load_split(root: Path, split: str, ignore_index: int = 255, skip_bad: bool = False, **_) -> SplitSpec:
    root, skipped = Path(root), []
    if split == "trainval":
        pairs = _pairs(root, "train", skip_bad, skipped) + _pairs(root, "val", skip_bad, skipped)
    elif split in ("train", "val", "test"):
        pairs = _pairs(root, split, skip_bad, skipped)
    else:
        raise ValueError(f"split={split!r}: CamVid has splits train, val, test, trainval")
    lut = np.full(256, -1, dtype=np.int16)
    lut[: len(NAMES)] = np.arange(len(NAMES))
    lut[UNLABELLED] = ignore_index
    lut[ignore_index] = ignore_index
    return SplitSpec(split, pairs, ClassTable(list(NAMES), list(COLORS), ignore_index), lut, root, skipped=skipped)
