"""Instance-segmentation datasets: name -> (layout check, split loader, splits to verify).

`open_instance_split(root, split)` picks the format (the first whose check matches, in the order of
INSTANCE_FORMATS) and lists the split; `InstanceDataset` turns it into training samples and
`verify_split` checks it. Formats and their layouts: docs/instance_data.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, NamedTuple

from seglab.data import splits as splitting
from seglab.data.instance import coco, id_png, per_object_png, yolo
from seglab.data.instance.dataset import InstanceDataset, collate
from seglab.data.instance.spec import InstanceItem, Instances, InstanceSplit
from seglab.data.instance.verify import InstanceReport, verify_split
from seglab.data.io import DataError


def is_images_and_masks(root: Path) -> bool:
    return (Path(root) / "images").is_dir() and (Path(root) / "masks").is_dir()


class Format(NamedTuple):
    matches: Callable[[Path], bool]  # does this folder hold the layout?
    load_split: Callable[..., InstanceSplit]  # (root, split, seed=, val_fraction=, skip_bad=) -> InstanceSplit
    splits: Callable[[Path], list[str]] = splitting.listed_splits  # the splits `verify` checks


INSTANCE_FORMATS = {
    "coco": Format(coco.is_coco, coco.load_split, coco.splits),
    "yolo": Format(yolo.is_yolo, yolo.load_split, yolo.splits),
    "penn_fudan": Format(id_png.is_penn_fudan, id_png.load_penn_fudan),
    "per_object_png": Format(per_object_png.is_per_object_png, per_object_png.load_split),
    "instance_folder": Format(is_images_and_masks, id_png.load_instance_folder),  # last: the loosest check
}

LAYOUTS = ("annotations/instances_<split>.json (COCO), data.yaml + images/<split>/ + labels/<split>/ (YOLO), "
           "PNGImages/ + PedMasks/ (Penn-Fudan), <id>/images/<id>.png + <id>/masks/*.png (DSB2018), "
           "or images/ + masks/ holding instance ids")


def detect_instance_format(root: Path) -> str:
    root = Path(root)
    if not root.exists():
        raise DataError(f"{root}: dataset folder does not exist")
    for name, fmt in INSTANCE_FORMATS.items():
        if fmt.matches(root):
            return name
    raise DataError(f"{root}: not an instance-segmentation layout seglab knows. Expected {LAYOUTS}")


def instance_format(root: Path, fmt: str = "auto") -> str:
    name = detect_instance_format(root) if fmt == "auto" else fmt
    if name not in INSTANCE_FORMATS:
        raise KeyError(f"unknown instance dataset format '{fmt}'. Valid formats: auto, {', '.join(INSTANCE_FORMATS)}")
    return name


def open_instance_split(root, split: str, seed: int = 0, val_fraction: float = 0.2, skip_bad: bool = False,
                        fmt: str = "auto") -> InstanceSplit:
    """The listed split of the dataset at `root`; seed and val_fraction drive the random split of layouts
    without official splits (see seglab.data.splits); skip_bad lists bad files in `skipped`
    instead of raising."""
    root = Path(root).expanduser()
    name = instance_format(root, fmt)
    result = INSTANCE_FORMATS[name].load_split(root, split, seed=seed, val_fraction=val_fraction, skip_bad=skip_bad)
    if not result.items:
        raise DataError(f"{root}: split '{split}' is empty")
    return result


__all__ = ["INSTANCE_FORMATS", "DataError", "Format", "InstanceDataset", "InstanceItem", "InstanceReport",
           "InstanceSplit", "Instances", "collate", "detect_instance_format", "instance_format",
           "open_instance_split", "verify_split"]
