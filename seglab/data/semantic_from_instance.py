"""The instance layouts of seglab/data/instance/ (COCO instances, YOLO, Penn-Fudan, DSB2018, instance-id
folders) read as semantic data, with `task=semantic` (alone, these layouts name the instance task).

The class table is the one seglab/data/panoptic/from_instance.py gives the same folder: class 0 "background",
then the instance classes in their order (instance class k -> semantic class k + 1), so a semantic, an instance
and a panoptic run on one dataset agree on class names (DSB2018: background, nucleus), which the panoptic fusion
(seglab/inference/panoptic_fusion.py) matches by name. A dataset with a class named "background" is an error, as
for panoptic. Splits are the instance format's own (official files, or seglab.data.splits' seeded rule), so the
three tasks hold out the same images.

The semantic map of an image: background everywhere, each instance's pixels its class; where instances overlap
the first one keeps the pixel (as the panoptic view paints them); crowd regions (COCO iscrowd) outside every
non-crowd instance are the ignore index. The map is painted from the instances whenever the semantic Dataset
loads a pair (SplitSpec.read_mask), so caching and resizing are the semantic ones (seglab/data/dataset.py).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Callable

import numpy as np

from seglab.data.instance import INSTANCE_FORMATS
from seglab.data.instance.id_png import is_instance_folder
from seglab.data.instance.spec import Instances
from seglab.data.io import DataError, identity_lut
from seglab.data.spec import ClassTable, SplitSpec, default_colors

BACKGROUND = "background"
IGNORE_INDEX = 255  # the semantic default (seglab.data.spec.ClassTable)
SEEDED = ("penn_fudan", "per_object_png", "instance_folder")  # no official splits: seed / val_fraction choose val
# how the semantic view recognises each layout: the instance check, except images/ + masks/, which is a semantic
# folder unless its dataset.json says "task": "instance"
MATCHES = {"instance_folder": is_instance_folder}


def semantic_map(instances: Instances, ignore_index: int = IGNORE_INDEX) -> np.ndarray:
    """uint8 [H, W]: 0 background, instance label k -> k + 1 (first instance keeps shared pixels), crowd -> ignore."""
    height, width = instances.size
    labels = np.zeros((height, width), np.uint8)
    taken = np.zeros((height, width), bool)
    for mask, label, crowd in zip(instances.masks, instances.labels, instances.iscrowd):
        if not crowd:
            free = mask & ~taken
            labels[free] = label + 1
            taken |= free
    crowd = instances.masks[instances.iscrowd].any(axis=0) if instances.iscrowd.any() else None
    if crowd is not None:
        labels[crowd & ~taken] = ignore_index
    return labels


def read_semantic_map(loads: dict[tuple[Path, Path], Callable[[], Instances]], image: Path, mask: Path) -> np.ndarray:
    """SplitSpec.read_mask of the view: the semantic map of pair (image, mask), painted from its instances."""
    return semantic_map(loads[(Path(image), Path(mask))]())


def class_table(root: Path, instance_classes: list[str]) -> ClassTable:
    if BACKGROUND in instance_classes:
        raise DataError(f"{root}: has a class named '{BACKGROUND}', the class seglab adds to instance data "
                        f"(semantic and panoptic views); rename it")
    names = [BACKGROUND, *instance_classes]
    if len(names) > IGNORE_INDEX:
        raise DataError(f"{root}: {len(instance_classes)} instance classes; a semantic view holds at most "
                        f"{IGNORE_INDEX - 1} (class ids are 8-bit, {IGNORE_INDEX} is the ignore index)")
    return ClassTable(names, default_colors(len(names)), IGNORE_INDEX)


def _load(instance_format: str, root: Path, split: str, seed: int, val_fraction: float, skip_bad: bool) -> SplitSpec:
    listed = INSTANCE_FORMATS[instance_format].load_split(Path(root), split, seed=seed, val_fraction=val_fraction,
                                                          skip_bad=skip_bad)
    table = class_table(Path(root), listed.classes)
    pairs = [(item.image, item.annotation_file or item.image) for item in listed.items]
    loads = {pair: item.load for pair, item in zip(pairs, listed.items)}
    if len(loads) != len(pairs):
        raise DataError(f"{listed.root}: split '{split}' lists an image twice")
    note = (f"{instance_format} instances read as semantic classes: {', '.join(table.names)} (instance class k -> "
            f"k + 1); crowd regions -> ignore {table.ignore_index}")
    return SplitSpec(split, pairs, table, identity_lut(table.num_classes, table.ignore_index), listed.root,
                     skipped=list(listed.skipped), notes=[note], read_mask=partial(read_semantic_map, loads))


def load_seeded_split(instance_format: str, root: Path, split: str, seed: int = 0, val_fraction: float = 0.2,
                      skip_bad: bool = False, **_) -> SplitSpec:
    """A layout without official splits: splits/<split>.txt, else the seeded rule (seed, val_fraction)."""
    return _load(instance_format, root, split, seed, val_fraction, skip_bad)


def load_listed_split(instance_format: str, root: Path, split: str, skip_bad: bool = False, **_) -> SplitSpec:
    """A layout whose files name the splits (COCO annotation files, YOLO's data.yaml)."""
    return _load(instance_format, root, split, 0, 0.2, skip_bad)


def view(instance_format: str) -> tuple[Callable, Callable, Callable]:
    """(matches, load_split, splits) of the semantic view of one instance format (seglab.data.Format)."""
    fmt = INSTANCE_FORMATS[instance_format]
    loader = load_seeded_split if instance_format in SEEDED else load_listed_split
    return MATCHES.get(instance_format, fmt.matches), partial(loader, instance_format), fmt.splits


VIEWS = tuple(INSTANCE_FORMATS)  # every instance layout has a semantic view
