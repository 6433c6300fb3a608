"""Oxford-IIIT Pet (Parkhi et al. 2012) in its official layout.

root/images/<Breed>_<n>.jpg, root/annotations/trimaps/<Breed>_<n>.png (1 pet, 2 background,
3 border), root/annotations/{trainval,test}.txt. Splits: `trainval` and `test` as released;
`train` and `val` divide trainval (a seeded 10% held out for model selection).
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np

from seglab.data.io import DataError
from seglab.data.spec import ClassTable, SplitSpec, keep_going

OFFICIAL_ARCHIVES = [
    "https://thor.robots.ox.ac.uk/datasets/pets/images.tar.gz",
    "https://thor.robots.ox.ac.uk/datasets/pets/annotations.tar.gz",
]
VAL_FRACTION = 0.1


def _trimap_classes(classes: str, ignore_index: int) -> tuple[ClassTable, np.ndarray]:
    lut = np.full(256, -1, dtype=np.int16)
    if classes in ("", "trimap"):
        table = ClassTable(["pet", "background", "border"], [(220, 60, 60), (40, 40, 40), (250, 220, 60)], ignore_index)
        lut[[1, 2, 3]] = [0, 1, 2]
    elif classes == "binary":
        table = ClassTable(["background", "pet"], [(40, 40, 40), (220, 60, 60)], ignore_index)
        lut[[1, 2, 3]] = [1, 0, ignore_index]
    else:
        raise ValueError(f"classes={classes!r}: Oxford-IIIT Pet offers 'trimap' or 'binary'")
    return table, lut


def is_pet(root: Path) -> bool:
    return (root / "annotations" / "trimaps").is_dir() and (root / "images").is_dir()


def splits(root: Path) -> list[str]:
    """The splits `seglab verify` checks: the official lists."""
    return ["trainval", "test"]


def _read_list(path: Path) -> list[str]:
    if not path.is_file():
        raise DataError(f"{path}: split list not found (expected the official Oxford-IIIT Pet layout)")
    names = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            names.append(line.split()[0])
    return names


def load_split(root: Path, split: str, classes: str = "trimap", seed: int = 0, ignore_index: int = 255,
               skip_bad: bool = False, **_) -> SplitSpec:
    root = Path(root)
    ann = root / "annotations"
    if split in ("trainval", "test"):
        names = _read_list(ann / f"{split}.txt")
    elif split in ("train", "val"):
        names = _read_list(ann / "trainval.txt")
        shuffled = sorted(names)
        random.Random(seed).shuffle(shuffled)
        n_val = max(1, round(len(shuffled) * VAL_FRACTION))
        held_out = set(shuffled[:n_val])
        names = [n for n in names if (n in held_out) == (split == "val")]
    else:
        raise ValueError(f"split={split!r}: Oxford-IIIT Pet has splits train, val, trainval, test")
    pairs, skipped = [], []
    for name in names:
        image, mask = root / "images" / f"{name}.jpg", ann / "trimaps" / f"{name}.png"
        if not image.is_file():
            keep_going(skip_bad, skipped, image, f"listed in {split} but missing")
        elif not mask.is_file():
            keep_going(skip_bad, skipped, mask, f"trimap for {name} is missing")
        else:
            pairs.append((image, mask))
    table, lut = _trimap_classes(classes, ignore_index)
    return SplitSpec(split, pairs, table, lut, root, skipped=skipped)


def download(root: Path, urls: list[str] | None = None) -> Path:
    """Fetch and unpack the official archives into `root` unless the layout is already there."""
    from seglab.data.download import fetch_and_extract

    root = Path(root)
    if is_pet(root):
        return root
    for url in urls or OFFICIAL_ARCHIVES:
        fetch_and_extract(url, root)
    if not is_pet(root):
        raise DataError(f"{root}: the downloaded archives did not produce images/ and annotations/trimaps/")
    return root
