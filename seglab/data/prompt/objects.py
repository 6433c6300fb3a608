"""Objects to prompt for, from any dataset seglab reads: one object per instance or per region.

- instance formats (COCO, YOLO, Penn-Fudan, DSB2018 per-object PNGs, instance-id folders): each
  non-crowd instance is an object; crowd regions are ignored pixels.
- semantic formats: each connected region (8-connectivity) of a class is an object (CamVid, VOC,
  folders), except formats that declare the class itself as the object (Oxford-IIIT Pet: the pet,
  read with classes=binary, so the trimap border is ignored). Classes named "background" give no
  objects; the ignore label gives ignored pixels.
Objects under MIN_OBJECT_PIXELS pixels are left out (annotation specks).

Every image's objects come as one `ObjectMap`: `ids` int32 [H, W] (0 = no object, k = object k) and
`ignore` bool [H, W], at the image's own size. Overlapping instances are drawn largest first, so a
pixel belongs to the smallest instance covering it (overlaps are rare: DSB2018 has almost none).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Callable

import numpy as np
from scipy import ndimage

from seglab.data import FORMATS as SEMANTIC_FORMATS
from seglab.data.dataset import load_mask
from seglab.data.instance import INSTANCE_FORMATS
from seglab.data.io import DataError
from seglab.data.spec import SplitSpec

MIN_OBJECT_PIXELS = 20
BACKGROUND_NAMES = ("background",)
# semantic format -> (what an object is: "class" | "region", the format's options for reading it)
SEMANTIC_OBJECTS = {"pet": ("class", {"classes": "binary"}), "camvid": ("region", {}), "voc": ("region", {}),
                    "folder": ("region", {})}
# the order formats are tried in: instance layouts with a distinctive check first, then semantic ones;
# images/ + masks/ is read as a semantic folder unless dataset=instance_folder says otherwise
DETECTED = ("coco", "yolo", "penn_fudan", "per_object_png", "pet", "camvid", "voc", "folder")
EIGHT_CONNECTED = np.ones((3, 3), bool)


@dataclass
class ObjectMap:
    ids: np.ndarray  # int32 [H, W]: 0 = no object, k = object k (1-based)
    ignore: np.ndarray  # bool [H, W]

    @property
    def count(self) -> int:
        return int(self.ids.max()) if self.ids.size else 0

    def mask(self, k: int) -> np.ndarray:
        return self.ids == k


@dataclass
class ObjectImage:
    image: Path
    name: str
    load: Callable[[], ObjectMap]  # picklable (a partial of a module-level function)


@dataclass
class ObjectSplit:
    name: str
    root: Path
    format: str
    images: list[ObjectImage]
    skipped: list = field(default_factory=list)


def kept_objects(masks: list[np.ndarray], shape: tuple[int, int], ignore: np.ndarray) -> ObjectMap:
    """Masks (bool [H, W]) of at least MIN_OBJECT_PIXELS -> an ObjectMap, the largest drawn first."""
    masks = [m for m in masks if m.sum() >= MIN_OBJECT_PIXELS]
    ids = np.zeros(shape, np.int32)
    for k, m in enumerate(sorted(masks, key=lambda m: -int(m.sum())), start=1):
        ids[m] = k
    return ObjectMap(ids, ignore)


def instance_objects(load) -> ObjectMap:
    instances = load()
    height, width = instances.size
    ignore = instances.masks[instances.iscrowd].any(axis=0) if instances.iscrowd.any() else np.zeros((height, width), bool)
    return kept_objects([m for m, crowd in zip(instances.masks, instances.iscrowd) if not crowd], (height, width), ignore)


def semantic_objects(spec: SplitSpec, index: int, rule: str, object_classes: tuple[int, ...]) -> ObjectMap:
    labels = load_mask(spec, index)
    ignore = labels == spec.classes.ignore_index
    masks = []
    for c in object_classes:
        region = labels == c
        if not region.any():
            continue
        if rule == "class":
            masks.append(region)
        else:
            components, n = ndimage.label(region, structure=EIGHT_CONNECTED)
            masks += [components == k for k in range(1, n + 1)]
    return kept_objects(masks, labels.shape, ignore)


def detect_object_format(root: Path) -> str:
    for name in DETECTED:
        registry = INSTANCE_FORMATS if name in INSTANCE_FORMATS else SEMANTIC_FORMATS
        if registry[name].matches(root):
            return name
    if not root.exists():
        raise DataError(f"{root}: dataset folder does not exist")
    raise DataError(f"{root}: no dataset layout seglab reads (instance: {', '.join(INSTANCE_FORMATS)}; "
                    f"semantic: {', '.join(SEMANTIC_FORMATS)})")


def open_object_split(root, split: str, seed: int = 0, val_fraction: float = 0.2, skip_bad: bool = False,
                      fmt: str = "auto") -> ObjectSplit:
    """The objects of split `split` of the dataset at `root` (format detected unless `fmt` names one)."""
    root = Path(root).expanduser()
    name = detect_object_format(root) if fmt == "auto" else fmt
    if name in INSTANCE_FORMATS:
        listed = INSTANCE_FORMATS[name].load_split(root, split, seed=seed, val_fraction=val_fraction, skip_bad=skip_bad)
        images = [ObjectImage(item.image, item.name, partial(instance_objects, item.load)) for item in listed.items]
        result = ObjectSplit(split, root, name, images, list(listed.skipped))
    elif name in SEMANTIC_OBJECTS:
        rule, options = SEMANTIC_OBJECTS[name]
        spec = SEMANTIC_FORMATS[name].load_split(root, split, seed=seed, val_fraction=val_fraction,
                                                 skip_bad=skip_bad, **options)
        object_classes = tuple(i for i, n in enumerate(spec.classes.names) if n.lower() not in BACKGROUND_NAMES)
        images = [ObjectImage(image, Path(image).stem, partial(semantic_objects, spec, i, rule, object_classes))
                  for i, (image, _) in enumerate(spec.pairs)]
        result = ObjectSplit(split, root, name, images, list(spec.skipped))
    else:
        known = ", ".join((*INSTANCE_FORMATS, *SEMANTIC_OBJECTS))
        raise KeyError(f"dataset={fmt!r}: not a format prompt objects come from. Valid formats: auto, {known}")
    if not result.images:
        raise DataError(f"{root}: split '{split}' is empty")
    return result


def dataset_roots(data: str) -> list[Path]:
    """`data=a,b`: several datasets trained on (and scored) together."""
    roots = [Path(part.strip()).expanduser() for part in str(data).split(",") if part.strip()]
    if not roots:
        raise DataError("data= names no dataset (give a folder, or several separated by commas)")
    return roots
