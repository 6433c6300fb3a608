"""Instance-id PNG folders: one mask per image, each pixel holding an instance id (0 = background).

Two layouts:
- Penn-Fudan as released (`PennFudanPed/`): `PNGImages/<name>.png` and `PedMasks/<name>_mask.png`;
  one class, "person". The release's `Annotation/` boxes are not read (boxes come from the masks).
- the generic folder: `images/<stem>.*` and `masks/<stem>.*` paired by stem, plus `dataset.json`
  with `"task": "instance"`:
      {"task": "instance",
       "classes": ["cat", "dog"],
       "instance_classes": {"img_001": {"1": "cat", "2": 1}}}
  `classes` (optional) names the classes; without it there is one class, "object". With one class
  every instance has it. With several, `instance_classes` gives, per image stem, the class (name or
  0-based index) of each instance id; an instance id missing there is an error naming the mask.
Masks are single-channel PNGs (8-bit L or P, or 16-bit for more than 255 instances); every distinct
nonzero value is one instance, taken in increasing id order.
"""

from __future__ import annotations

import difflib
from functools import partial
from pathlib import Path

import numpy as np

from seglab.data.folder import pair_files
from seglab.data import splits as splitting
from seglab.data.instance.spec import InstanceItem, Instances, InstanceSplit
from seglab.data.io import IMAGE_SUFFIXES, DataError, _open, image_size, read_json_object
from seglab.data.spec import keep_going

PENN_FUDAN_CLASSES = ["person"]
DEFAULT_CLASSES = ["object"]
DATASET_JSON_KEYS = {"task", "classes", "instance_classes", "name", "description"}
SINGLE_CHANNEL_MODES = ("L", "P", "1", "I;16", "I;16B", "I;16L", "I")


def penn_fudan_root(root: Path) -> Path:
    """The folder holding PNGImages/ and PedMasks/: `root` itself or `root/PennFudanPed`."""
    root = Path(root)
    return root if (root / "PNGImages").is_dir() else root / "PennFudanPed"


def is_penn_fudan(root: Path) -> bool:
    base = penn_fudan_root(root)
    return (base / "PNGImages").is_dir() and (base / "PedMasks").is_dir()


def read_dataset_json(root: Path) -> dict | None:
    """The generic layout's dataset.json, None when absent; a DataError for bad JSON or a non-object."""
    return read_json_object(Path(root) / "dataset.json")


def is_instance_folder(root: Path) -> bool:
    """images/ + masks/ with a dataset.json saying "task": "instance"."""
    root = Path(root)
    if not ((root / "images").is_dir() and (root / "masks").is_dir()):
        return False
    try:
        meta = read_dataset_json(root)
    except DataError:
        return False
    return bool(meta) and meta.get("task") == "instance"


def read_instance_ids(path: Path) -> np.ndarray:
    """The instance ids of a mask as int64 [H, W] (8-bit, palette or 16-bit single-channel images)."""
    image = _open(path)
    if image.mode not in SINGLE_CHANNEL_MODES:
        raise DataError(f"{path}: instance-id mask has mode {image.mode}; expected a single-channel image "
                        f"(8-bit L or P, or 16-bit) whose pixel values are instance ids, 0 = background")
    ids = np.asarray(image).astype(np.int64)
    if ids.size and ids.min() < 0:
        raise DataError(f"{path}: negative instance id {int(ids.min())}")
    return ids


def load_id_mask(mask_path: Path, image_path: Path, classes: tuple[str, ...],
                 class_of_id: dict[int, int] | None) -> Instances:
    """Instances of one id mask; `class_of_id` None means every instance has class 0."""
    ids = read_instance_ids(mask_path)
    width, height = image_size(image_path)
    if ids.shape != (height, width):
        raise DataError(f"{mask_path}: mask is {ids.shape[1]}x{ids.shape[0]} but its image "
                        f"{Path(image_path).name} is {width}x{height}")
    present = [int(v) for v in np.unique(ids) if v != 0]
    if class_of_id is None:
        labels = [0] * len(present)
    else:
        missing = [v for v in present if v not in class_of_id]
        if missing:
            raise DataError(f"{mask_path}: instance id(s) {missing[:10]} have no class; give them in dataset.json "
                            f"\"instance_classes\" under \"{Path(image_path).stem}\" (classes: {list(classes)})")
        labels = [class_of_id[v] for v in present]
    masks = ids[None] == np.array(present, dtype=np.int64).reshape(-1, 1, 1)
    return Instances(masks.reshape(len(present), height, width), labels, np.zeros(len(present), bool),
                     sources=[f"instance id {v}" for v in present])


def _pair_penn_fudan(base: Path, skip_bad: bool, skipped: list) -> list[tuple[Path, Path]]:
    images = {p.stem: p for p in sorted((base / "PNGImages").iterdir())
              if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")}
    masks = {p.stem.removesuffix("_mask"): p for p in sorted((base / "PedMasks").iterdir())
             if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".") and p.stem.endswith("_mask")}
    if not images:
        raise DataError(f"{base / 'PNGImages'}: no image files")
    for stem in sorted(set(images) - set(masks)):
        keep_going(skip_bad, skipped, images[stem], f"no mask {stem}_mask.png in {base / 'PedMasks'}")
    for stem in sorted(set(masks) - set(images)):
        keep_going(skip_bad, skipped, masks[stem], f"mask without an image {stem}.png in {base / 'PNGImages'}")
    return [(images[s], masks[s]) for s in sorted(set(images) & set(masks))]


def _split_items(root: Path, pairs, split, seed, val_fraction, skip_bad, skipped, classes, class_maps):
    by_name = {image.stem: (image, mask) for image, mask in pairs}
    left_out = {Path(p).stem.removesuffix("_mask") for p, _ in skipped}
    names = splitting.choose(root, list(by_name), split, seed, val_fraction, skip_bad, skipped, left_out)
    order = {name: i for i, name in enumerate(sorted(by_name))}
    items = []
    for name in names:
        image, mask = by_name[name]
        load = partial(load_id_mask, mask, image, tuple(classes), class_maps.get(name) if class_maps else None)
        items.append(InstanceItem(image, name, load, image_id=order[name], annotation_file=mask))
    return items


def load_penn_fudan(root: Path, split: str, seed: int = 0, val_fraction: float = 0.2, skip_bad: bool = False,
                    **_) -> InstanceSplit:
    base = penn_fudan_root(root)
    if not is_penn_fudan(root):
        raise DataError(f"{root}: Penn-Fudan needs PNGImages/ and PedMasks/ (in it or in PennFudanPed/)")
    skipped: list = []
    pairs = _pair_penn_fudan(base, skip_bad, skipped)
    items = _split_items(base, pairs, split, seed, val_fraction, skip_bad, skipped, PENN_FUDAN_CLASSES, None)
    return InstanceSplit(split, base, list(PENN_FUDAN_CLASSES), items, skipped, format="penn_fudan")


def _check_keys(path: Path, meta: dict) -> None:
    unknown = sorted(set(meta) - DATASET_JSON_KEYS)
    if unknown:
        close = difflib.get_close_matches(unknown[0], sorted(DATASET_JSON_KEYS), n=1, cutoff=0.6)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise DataError(f"{path}: unknown key(s) {unknown}; valid keys: {sorted(DATASET_JSON_KEYS)}.{hint}")
    if meta.get("task", "instance") != "instance":
        raise DataError(f"{path}: \"task\" is {meta['task']!r}; an instance dataset says \"task\": \"instance\"")


def _classes(path: Path, meta: dict) -> list[str]:
    names = meta.get("classes", DEFAULT_CLASSES)
    if not (isinstance(names, list) and names and all(isinstance(n, str) and n for n in names)):
        raise DataError(f"{path}: \"classes\" must be a non-empty list of class names, got {names!r}")
    if len(set(names)) != len(names):
        raise DataError(f"{path}: \"classes\" names a class twice: {names}")
    return list(names)


def _class_maps(path: Path, meta: dict, classes: list[str], stems: set[str]) -> dict[str, dict[int, int]] | None:
    """{stem: {instance id: class index}} from "instance_classes"; None when one class covers everything."""
    given = meta.get("instance_classes")
    if given is None:
        if len(classes) > 1:
            example = '{"instance_classes": {"<image stem>": {"<instance id>": "<class>"}}}'
            raise DataError(f"{path}: {len(classes)} classes but no \"instance_classes\"; give the class of "
                            f"each instance: {example}")
        return None
    if not isinstance(given, dict):
        raise DataError(f"{path}: \"instance_classes\" must be an object {{image stem: {{instance id: class}}}}")
    maps: dict[str, dict[int, int]] = {}
    for stem, per_id in given.items():
        if stem not in stems:
            close = difflib.get_close_matches(stem, sorted(stems), n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise DataError(f"{path}: \"instance_classes\" names image '{stem}', which has no image/mask pair.{hint}")
        if not isinstance(per_id, dict):
            raise DataError(f"{path}: \"instance_classes\"[\"{stem}\"] must be an object {{instance id: class}}")
        maps[stem] = {}
        for key, value in per_id.items():
            if not str(key).isdigit() or int(key) == 0:
                raise DataError(f"{path}: \"instance_classes\"[\"{stem}\"] key {key!r} is not an instance id "
                                f"(a positive integer; 0 is background)")
            if isinstance(value, str) and value in classes:
                index = classes.index(value)
            elif type(value) is int and 0 <= value < len(classes):
                index = value
            else:
                raise DataError(f"{path}: \"instance_classes\"[\"{stem}\"][\"{key}\"] is {value!r}, which is not a "
                                f"class name or index of {classes}")
            maps[stem][int(key)] = index
    if len(classes) == 1:  # unlisted instances take the only class
        return None
    return maps


def load_instance_folder(root: Path, split: str, seed: int = 0, val_fraction: float = 0.2,
                         skip_bad: bool = False, **_) -> InstanceSplit:
    root = Path(root)
    if not ((root / "images").is_dir() and (root / "masks").is_dir()):
        raise DataError(f"{root}: an instance folder needs images/ and masks/ in it")
    path = root / "dataset.json"
    meta = read_dataset_json(root) or {}
    _check_keys(path, meta)
    classes = _classes(path, meta)
    skipped: list = []
    pairs = pair_files(root, skip_bad, skipped)
    class_maps = _class_maps(path, meta, classes, {image.stem for image, _ in pairs})
    if class_maps is not None:
        class_maps = {image.stem: class_maps.get(image.stem, {}) for image, _ in pairs}
    items = _split_items(root, pairs, split, seed, val_fraction, skip_bad, skipped, classes, class_maps)
    return InstanceSplit(split, root, classes, items, skipped, format="instance_folder")
