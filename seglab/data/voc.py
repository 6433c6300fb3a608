"""Pascal VOC 2012 segmentation (Everingham et al.), optionally with the SBD augmented set (Hariharan et al. 2011).

VOC layout (`data=` is the VOC2012 folder, the VOCdevkit above it, or the folder holding VOCdevkit):
  VOC2012/JPEGImages/<name>.jpg, VOC2012/SegmentationClass/<name>.png (palette PNG: index = class
  id, 255 = the object borders and "difficult" regions, ignored), VOC2012/ImageSets/Segmentation/
  {train,val,trainval}.txt. 21 classes with the VOC palette.
SBD (`voc_aug=true`, or split `train_aug`): SBD's `dataset/` folder (cls/<name>.mat with
  GTcls.Segmentation, img/<name>.jpg, train.txt, val.txt), found as SBD/ or benchmark_RELEASE/dataset/
  next to VOC2012/ or in `data`. train_aug = VOC train + SBD train + SBD val, minus VOC val (10,582
  images with the full releases). A name with a VOC mask uses it (and the VOC image); other names use
  SBD's .mat and, when VOC has no copy of the photo, SBD's img/<name>.jpg.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from seglab.data.io import DataError
from seglab.data.spec import ClassTable, SplitSpec, default_colors, keep_going

NAMES = ["background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
         "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor"]
COLORS = default_colors(len(NAMES))  # the VOC palette: (0,0,0), (128,0,0), (0,128,0), (128,128,0), ...
BORDER = 255
BORDER_COLOR = (224, 224, 192)  # palette entry 255 in the VOC PNGs


def voc_dir(root: Path) -> Path | None:
    """The VOC2012 folder for root = VOC2012, VOCdevkit, or the folder that holds VOCdevkit."""
    for candidate in (root, root / "VOC2012", root / "VOCdevkit" / "VOC2012"):
        if (candidate / "JPEGImages").is_dir() and (candidate / "SegmentationClass").is_dir():
            return candidate
    return None


def is_voc(root: Path) -> bool:
    return voc_dir(root) is not None


def sbd_dir(root: Path) -> Path | None:
    voc = voc_dir(root)
    bases = [root] + ([voc, voc.parent] if voc else [])
    for base in bases:
        for candidate in (base / "SBD", base / "SBD" / "dataset", base / "benchmark_RELEASE" / "dataset"):
            if (candidate / "cls").is_dir() and (candidate / "train.txt").is_file():
                return candidate
    return None


def splits(root: Path) -> list[str]:
    """The splits `seglab verify` checks: train (train_aug with voc_aug=true) and val."""
    return ["train", "val"]


def _names(listing: Path) -> list[str]:
    if not listing.is_file():
        raise DataError(f"{listing}: split list not found (VOC layout: ImageSets/Segmentation/<split>.txt)")
    return [line.split()[0] for line in listing.read_text(encoding="utf-8").splitlines() if line.strip()]


def _voc_pairs(voc: Path, names: list[str], listing: str, skip_bad: bool, skipped: list) -> list[tuple[Path, Path]]:
    pairs = []
    for name in names:
        image, mask = voc / "JPEGImages" / f"{name}.jpg", voc / "SegmentationClass" / f"{name}.png"
        missing = [p for p in (image, mask) if not p.is_file()]
        if missing:
            keep_going(skip_bad, skipped, missing[0], f"listed in {listing} but missing")
        else:
            pairs.append((image, mask))
    return pairs


def _train_aug(root: Path, voc: Path, skip_bad: bool, skipped: list) -> list[tuple[Path, Path]]:
    sbd = sbd_dir(root)
    if sbd is None:
        raise DataError(f"{root}: train_aug / voc_aug=true needs SBD's dataset/ folder (cls/, img/, train.txt, "
                        f"val.txt) as SBD/ or benchmark_RELEASE/dataset/ next to {voc.name}/")
    sets = voc / "ImageSets" / "Segmentation"
    held_out = set(_names(sets / "val.txt"))
    names = list(dict.fromkeys(_names(sets / "train.txt") + _names(sbd / "train.txt") + _names(sbd / "val.txt")))
    pairs = []
    for name in names:
        if name in held_out:
            continue
        voc_image, voc_mask = voc / "JPEGImages" / f"{name}.jpg", voc / "SegmentationClass" / f"{name}.png"
        if voc_mask.is_file() and voc_image.is_file():
            pairs.append((voc_image, voc_mask))
            continue
        image = voc_image if voc_image.is_file() else sbd / "img" / f"{name}.jpg"
        mask = sbd / "cls" / f"{name}.mat"
        missing = [p for p in (image, mask) if not p.is_file()]
        if missing:
            keep_going(skip_bad, skipped, missing[0], "listed for train_aug but missing")
        else:
            pairs.append((image, mask))
    return pairs


def load_split(root: Path, split: str, ignore_index: int = 255, skip_bad: bool = False, voc_aug: bool = False,
               **_) -> SplitSpec:
    root = Path(root)
    voc = voc_dir(root)
    if voc is None:
        raise DataError(f"{root}: not a Pascal VOC layout (JPEGImages/ and SegmentationClass/ in it, in VOC2012/ "
                        f"or in VOCdevkit/VOC2012/)")
    if voc_aug and split == "train":
        split = "train_aug"
    skipped: list = []
    if split == "train_aug":
        pairs = _train_aug(root, voc, skip_bad, skipped)
    else:
        listing = voc / "ImageSets" / "Segmentation" / f"{split}.txt"
        if not listing.is_file():
            raise ValueError(f"split={split!r}: {listing} not found; VOC has train, val, trainval and train_aug (SBD)")
        pairs = _voc_pairs(voc, _names(listing), f"{listing.parent.name}/{listing.name}", skip_bad, skipped)
    lut = np.full(256, -1, dtype=np.int16)
    lut[: len(NAMES)] = np.arange(len(NAMES))
    lut[BORDER] = ignore_index
    lut[ignore_index] = ignore_index
    mask_colors = {color: i for i, color in enumerate(COLORS)} | {BORDER_COLOR: BORDER}  # masks saved as RGB
    return SplitSpec(split, pairs, ClassTable(list(NAMES), list(COLORS), ignore_index), lut, voc,
                     mask_colors=mask_colors, skipped=skipped)
