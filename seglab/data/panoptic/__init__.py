"""Panoptic-segmentation datasets: name -> (layout check, split loader, splits to verify, owns the layout).

`open_panoptic_split(root, split)` picks the format (the first whose check matches, in the order of
PANOPTIC_FORMATS) and lists the split; `PanopticDataset` turns it into samples, `verify_split` checks it.
Formats whose layout belongs to the instance task (`owns_layout=False`: DSB2018, Penn-Fudan, COCO
instances, YOLO, id folders read with background as the stuff class) are read with `task=panoptic` only,
so `seglab train data=PennFudanPed` stays instance. Layouts: docs/panoptic.md.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from seglab.data import splits as splitting
from seglab.data.io import DataError
from seglab.data.panoptic import coco_panoptic, from_instance, semantic_instance
from seglab.data.panoptic.dataset import PanopticDataset, collate, resize_ids
from seglab.data.panoptic.spec import PanopticItem, PanopticSplit, PanopticTruth
from seglab.data.panoptic.verify import PanopticReport, verify_split


class Format(NamedTuple):
    matches: Callable[[Path], bool]
    load_split: Callable[..., PanopticSplit]  # (root, split, seed=, val_fraction=, skip_bad=) -> PanopticSplit
    splits: Callable[[Path], list[str]] = splitting.listed_splits
    owns_layout: bool = True  # False: the layout is another task's; it names the panoptic task only with task=


def _instance(name: str) -> Format:
    return Format(*from_instance.reader(name), owns_layout=False)


PANOPTIC_FORMATS = {
    "coco_panoptic": Format(coco_panoptic.is_coco_panoptic, coco_panoptic.load_coco_split, coco_panoptic.coco_splits),
    "panoptic_sample": Format(coco_panoptic.is_panoptic_sample, coco_panoptic.load_sample_split,
                              coco_panoptic.sample_splits),
    "semantic_instance": Format(semantic_instance.is_semantic_instance, semantic_instance.load_split),
    "coco": _instance("coco"),
    "yolo": _instance("yolo"),
    "penn_fudan": _instance("penn_fudan"),
    "per_object_png": _instance("per_object_png"),
    "instance_folder": _instance("instance_folder"),  # last: the loosest check
}
# the formats that say "this folder is panoptic data" (seglab/tasks/base.py Task.reads)
OWN_FORMATS = {name: fmt for name, fmt in PANOPTIC_FORMATS.items() if fmt.owns_layout}

LAYOUTS = ("annotations/panoptic_<split>.json + PNGs (COCO panoptic), <name>.json + <name>/ + an image folder "
           "(panopticapi sample_data), images/ + semantic/ + instances/ + dataset.json, or an instance layout "
           "(COCO instances, YOLO, Penn-Fudan, DSB2018, images/ + masks/)")


def panoptic_format(root: Path, fmt: str = "auto") -> str:
    root = Path(root)
    if fmt != "auto":
        if fmt not in PANOPTIC_FORMATS:
            raise KeyError(f"unknown panoptic dataset format '{fmt}'. Valid formats: auto, {', '.join(PANOPTIC_FORMATS)}")
        return fmt
    if not root.exists():
        raise DataError(f"{root}: dataset folder does not exist")
    for name, candidate in PANOPTIC_FORMATS.items():
        if candidate.matches(root):
            return name
    raise DataError(f"{root}: not a panoptic layout seglab knows. Expected {LAYOUTS}")


def open_panoptic_split(root, split: str, seed: int = 0, val_fraction: float = 0.2, skip_bad: bool = False,
                        fmt: str = "auto") -> PanopticSplit:
    """The listed split of the dataset at `root` (see seglab.data.splits for layouts without splits)."""
    root = Path(root).expanduser()
    name = panoptic_format(root, fmt)
    result = PANOPTIC_FORMATS[name].load_split(root, split, seed=seed, val_fraction=val_fraction, skip_bad=skip_bad)
    if not result.items:
        raise DataError(f"{root}: split '{split}' is empty")
    return result


__all__ = ["OWN_FORMATS", "PANOPTIC_FORMATS", "DataError", "Format", "PanopticDataset", "PanopticItem",
           "PanopticReport", "PanopticSplit", "PanopticTruth", "collate", "open_panoptic_split", "panoptic_format",
           "resize_ids", "verify_split"]
