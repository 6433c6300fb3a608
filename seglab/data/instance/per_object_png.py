"""One binary PNG per object: the Data Science Bowl 2018 layout as released.

    stage1_train/<id>/images/<id>.png      the image (DSB: RGBA with constant alpha)
    stage1_train/<id>/masks/<mask_id>.png  one mask per object, 0 = background, nonzero = object

The root is the folder holding `stage1_train/` (or `stage1_train/` itself, or any folder of `<id>/`
sample folders in that shape). One class, "nucleus"; masks are taken in sorted file-name order.
No official split: see seglab.data.splits (DSB2018's default is the seeded 80/20).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np

from seglab.data import splits as splitting
from seglab.data.instance.spec import InstanceItem, Instances, InstanceSplit
from seglab.data.io import IMAGE_SUFFIXES, DataError, image_size, read_mask
from seglab.data.spec import keep_going

CLASSES = ["nucleus"]
RELEASE_FOLDERS = ("stage1_train", "stage1_test", "stage2_train")
PROBED = 3  # sample folders looked at to recognise the layout


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))


def samples_root(root: Path) -> Path:
    """The folder of <id>/ sample folders: root/stage1_train (or another release folder), else root."""
    root = Path(root)
    for name in RELEASE_FOLDERS:
        if (root / name).is_dir():
            return root / name
    return root


def _is_sample(folder: Path) -> bool:
    return (folder / "images").is_dir() and (folder / "masks").is_dir()


def is_per_object_png(root: Path) -> bool:
    base = samples_root(root)
    if not base.is_dir():
        return False
    folders = [p for p in sorted(base.iterdir()) if p.is_dir() and not p.name.startswith(".")][:PROBED]
    return bool(folders) and all(_is_sample(p) for p in folders)


def load_object_masks(image_path: Path, mask_paths: tuple[Path, ...]) -> Instances:
    width, height = image_size(image_path)
    masks = np.zeros((len(mask_paths), height, width), dtype=bool)
    for i, path in enumerate(mask_paths):
        values = read_mask(path)
        if values.shape != (height, width):
            raise DataError(f"{path}: mask is {values.shape[1]}x{values.shape[0]} but its image "
                            f"{Path(image_path).name} is {width}x{height}")
        masks[i] = values != 0
    return Instances(masks, np.zeros(len(mask_paths), np.int64), np.zeros(len(mask_paths), bool),
                     sources=[f"mask {Path(p).name}" for p in mask_paths])


def _sample(folder: Path, skip_bad: bool, skipped: list) -> tuple[Path, tuple[Path, ...]] | None:
    images = _images(folder / "images") if (folder / "images").is_dir() else []
    if not _is_sample(folder):
        keep_going(skip_bad, skipped, folder, "expected images/<id>.png and masks/ in a sample folder")
        return None
    own = [p for p in images if p.stem == folder.name]
    if len(own) != 1:
        found = ", ".join(p.name for p in images) or "nothing"
        keep_going(skip_bad, skipped, folder / "images", f"expected one image named {folder.name}.png, found {found}")
        return None
    return own[0], tuple(_images(folder / "masks"))


def load_split(root: Path, split: str, seed: int = 0, val_fraction: float = 0.2, skip_bad: bool = False,
               **_) -> InstanceSplit:
    base = samples_root(root)
    if not is_per_object_png(root):
        raise DataError(f"{root}: expected <id>/images/<id>.png and <id>/masks/*.png sample folders "
                        f"(DSB2018: in stage1_train/)")
    skipped: list = []
    folders = sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith("."))
    samples = {}
    for folder in folders:
        sample = _sample(folder, skip_bad, skipped)
        if sample:
            samples[folder.name] = sample
    order = {name: i for i, name in enumerate(sorted(samples))}
    left_out = {p.name for p in folders} - set(samples)
    names = splitting.choose(Path(root), list(samples), split, seed, val_fraction, skip_bad, skipped, left_out)
    items = [InstanceItem(samples[n][0], n, partial(load_object_masks, *samples[n]), image_id=order[n],
                          annotation_file=samples[n][0].parent.parent / "masks") for n in names]
    return InstanceSplit(split, Path(root), list(CLASSES), items, skipped, format="per_object_png")
