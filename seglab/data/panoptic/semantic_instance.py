"""A folder with a semantic-class PNG and an instance-id PNG per image (`semantic_instance`):

    images/<stem>.jpg|png      the image
    semantic/<stem>.png        class index per pixel (0..K-1; 255 = unlabelled / void), 8-bit
    instances/<stem>.png       instance id per pixel (8- or 16-bit; 0 = no instance), unique within the image
    dataset.json               {"classes": ["road", "car", ...], "things": ["car", ...], "colors": [[r,g,b], ...]}
                               ("colors" optional; "things" names the classes with instances)
    splits/<split>.txt         optional; otherwise seglab.data.splits' seeded rule
A stuff class is one segment per image whatever its instance ids; each instance id of a thing class is
one segment. A thing pixel with instance id 0 has no instance: it becomes void and is a problem of the
image (verify lists it). Files are paired by stem.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np

from seglab.data import splits as splitting
from seglab.data.instance.id_png import read_instance_ids
from seglab.data.io import (
    IMAGE_SUFFIXES,
    DataError,
    image_size,
    read_json_object,
    read_mask,
)
from seglab.data.panoptic.canonical import VOID_LABEL, segments_from_maps
from seglab.data.panoptic.spec import PanopticItem, PanopticSplit, PanopticTruth
from seglab.data.spec import keep_going

FOLDERS = ("images", "semantic", "instances")


def is_semantic_instance(root: Path) -> bool:
    root = Path(root)
    return all((root / f).is_dir() for f in FOLDERS) and (root / "dataset.json").is_file()


def read_classes(path: Path) -> tuple[list[str], list[bool], list | None]:
    meta = read_json_object(path)
    classes, things = meta.get("classes"), meta.get("things")
    if not (isinstance(classes, list) and classes and all(isinstance(c, str) for c in classes)):
        raise DataError(f"{path}: \"classes\" must be a non-empty list of class names")
    if len(set(classes)) != len(classes) or len(classes) >= VOID_LABEL:
        raise DataError(f"{path}: \"classes\" must be distinct names, fewer than {VOID_LABEL}")
    if not (isinstance(things, list) and all(isinstance(t, str) for t in things)):
        raise DataError(f"{path}: \"things\" must be a list of the class names that have instances")
    unknown = [t for t in things if t not in classes]
    if unknown:
        raise DataError(f"{path}: \"things\" names {unknown}, which are not in \"classes\" {classes}")
    colors = meta.get("colors")
    if colors is not None and not (isinstance(colors, list) and len(colors) == len(classes)
                                   and all(isinstance(c, list) and len(c) == 3 for c in colors)):
        raise DataError(f"{path}: \"colors\" must give one [r, g, b] per class")
    return classes, [c in things for c in classes], [tuple(int(v) for v in c) for c in colors] if colors else None


def load_maps_truth(image: Path, semantic: Path, instances: Path, is_thing: tuple[bool, ...]) -> PanopticTruth:
    category = read_mask(semantic).astype(np.int64)
    ids = read_instance_ids(instances)
    width, height = image_size(image)
    for path, values in ((semantic, category), (instances, ids)):
        if values.shape != (height, width):
            raise DataError(f"{path}: is {values.shape[1]}x{values.shape[0]} but its image {image.name} is "
                            f"{width}x{height}")
    bad = (category != VOID_LABEL) & (category >= len(is_thing))
    if bad.any():
        raise DataError(f"{semantic}: class value(s) {sorted(np.unique(category[bad]).tolist())[:10]} outside the "
                        f"{len(is_thing)} classes of dataset.json (255 = void)")
    segment_ids, segments, orphans = segments_from_maps(category, ids, list(is_thing))
    problems = []
    if orphans:
        problems.append(("thing_without_instance", f"{instances}: {orphans} thing pixel(s) without an instance "
                                                   f"(instance id 0 where {semantic.name} gives a thing class; "
                                                   "read as void)"))
    return PanopticTruth(segment_ids, segments, problems)


def _by_stem(folder: Path) -> dict[str, Path]:
    return {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES
            and not p.name.startswith(".")}


def load_split(root: Path, split: str, seed: int = 0, val_fraction: float = 0.2, skip_bad: bool = False,
               **_) -> PanopticSplit:
    root = Path(root)
    classes, is_thing, colors = read_classes(root / "dataset.json")
    images, semantic, instances = (_by_stem(root / f) for f in FOLDERS)
    skipped, usable = [], []
    for stem, image in images.items():
        lacking = [f"{f}/{stem}.png" for f, found in (("semantic", semantic), ("instances", instances))
                   if stem not in found]
        if lacking:
            keep_going(skip_bad, skipped, image, f"has no {' and no '.join(lacking)}")
        else:
            usable.append(stem)
    chosen = splitting.choose(root, usable, split, seed, val_fraction, skip_bad, skipped)
    items = [PanopticItem(images[s], s, partial(load_maps_truth, images[s], semantic[s], instances[s], tuple(is_thing)),
                          i, instances[s]) for i, s in enumerate(chosen)]
    return PanopticSplit(split, root, classes, is_thing, items, list(range(len(classes))), skipped,
                         "semantic_instance", colors)
