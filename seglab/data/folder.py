"""A plain folder: images/ and masks/ paired by file stem, with an optional dataset.json.

dataset.json (all keys optional):
  {"classes": ["background", "cat"], "colors": [[0, 0, 0], [255, 0, 0]], "ignore_index": 255}
Masks hold class ids (0..n-1; the ignore value is skipped). Without "classes", the classes are
read off the masks (class_0 .. class_<max id>). Splits: root/splits/<split>.txt (one stem per
line) when present, otherwise a seeded random split with `val_fraction` held out as val.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np

from seglab.data.io import IMAGE_SUFFIXES, DataError, identity_lut, read_mask
from seglab.data.spec import ClassTable, SplitSpec, default_colors

DATASET_JSON_KEYS = {"classes", "colors", "ignore_index", "name", "description"}


def is_folder(root: Path) -> bool:
    return (root / "images").is_dir() and (root / "masks").is_dir()


def _by_stem(folder: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() not in IMAGE_SUFFIXES or not path.is_file():
            continue
        if path.stem in found:
            raise DataError(f"{path}: two files share the stem '{path.stem}' ({found[path.stem].name}, {path.name})")
        found[path.stem] = path
    return found


def pair_files(root: Path) -> list[tuple[Path, Path]]:
    images, masks = _by_stem(root / "images"), _by_stem(root / "masks")
    if not images:
        raise DataError(f"{root / 'images'}: no image files ({', '.join(IMAGE_SUFFIXES)})")
    missing = sorted(set(images) - set(masks))
    if missing:
        raise DataError(f"{images[missing[0]]}: no mask with the same stem in {root / 'masks'} ({len(missing)} such images)")
    orphans = sorted(set(masks) - set(images))
    if orphans:
        raise DataError(f"{masks[orphans[0]]}: mask without an image in {root / 'images'} ({len(orphans)} such masks)")
    return [(images[s], masks[s]) for s in sorted(images)]


def read_dataset_json(root: Path) -> dict:
    path = root / "dataset.json"
    if not path.is_file():
        return {}
    try:
        meta = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(meta, dict):
        raise DataError(f"{path}: must hold a JSON object")
    unknown = set(meta) - DATASET_JSON_KEYS
    if unknown:
        raise DataError(f"{path}: unknown key(s) {sorted(unknown)}; valid keys: {sorted(DATASET_JSON_KEYS)}")
    return meta


def _check_meta(path: Path, meta: dict) -> None:
    """Types and ranges of the dataset.json values, so a typo fails here and names the file."""
    names, colors, ignore = meta.get("classes"), meta.get("colors"), meta.get("ignore_index", 255)
    if names is not None and not (isinstance(names, list) and names and all(isinstance(n, str) for n in names)):
        raise DataError(f"{path}: \"classes\" must be a non-empty list of class names, got {names!r}")
    if colors is not None and not (isinstance(colors, list) and all(
            isinstance(c, list) and len(c) == 3 and all(type(v) is int and 0 <= v <= 255 for v in c) for c in colors)):
        raise DataError(f"{path}: \"colors\" must be a list of [r, g, b] with values 0-255, got {colors!r}")
    if type(ignore) is not int:
        raise DataError(f"{path}: \"ignore_index\" must be an integer, got {ignore!r}")
    if names is not None and 0 <= ignore < len(names):
        raise DataError(f"{path}: \"ignore_index\" {ignore} is the id of class '{names[ignore]}'; "
                        f"use a value outside 0-{len(names) - 1} (255 is usual)")


def _class_table(root: Path, meta: dict, pairs: list[tuple[Path, Path]]) -> ClassTable:
    _check_meta(root / "dataset.json", meta)
    ignore_index = int(meta.get("ignore_index", 255))
    names = meta.get("classes")
    if names is None:
        top = 0
        for _, mask in pairs:
            values = np.unique(read_mask(mask))
            values = values[values != ignore_index]
            top = max(top, int(values.max()) if values.size else 0)
        names = [f"class_{i}" for i in range(top + 1)]
    colors = meta.get("colors") or default_colors(len(names))
    if len(colors) != len(names):
        raise DataError(f"{root / 'dataset.json'}: {len(names)} classes but {len(colors)} colors")
    return ClassTable(list(names), [tuple(int(v) for v in c) for c in colors], ignore_index)


def _split_stems(root: Path, stems: list[str], split: str, seed: int, val_fraction: float) -> list[str]:
    listed = root / "splits" / f"{split}.txt"
    if listed.is_file():
        wanted = [s.strip() for s in listed.read_text().splitlines() if s.strip()]
        unknown = [s for s in wanted if s not in set(stems)]
        if unknown:
            raise DataError(f"{listed}: lists '{unknown[0]}', which has no image/mask pair ({len(unknown)} such)")
        return wanted
    if (root / "splits").is_dir():
        raise DataError(f"{listed}: no such split list in {root / 'splits'}")
    if split in ("all", "trainval"):
        return stems
    shuffled = list(stems)
    random.Random(seed).shuffle(shuffled)
    n_val = max(1, round(len(stems) * val_fraction)) if len(stems) > 1 else 0
    if split == "val":
        return sorted(shuffled[:n_val])
    if split == "train":
        return sorted(shuffled[n_val:])
    raise ValueError(f"split={split!r}: without {root / 'splits'} a folder dataset has train, val and all")


def load_split(root: Path, split: str, seed: int = 0, val_fraction: float = 0.2, **_) -> SplitSpec:
    root = Path(root)
    if not is_folder(root):
        raise DataError(f"{root}: a folder dataset needs images/ and masks/ in it")
    meta = read_dataset_json(root)
    pairs = pair_files(root)
    by_stem = {image.stem: (image, mask) for image, mask in pairs}
    stems = _split_stems(root, sorted(by_stem), split, seed, val_fraction)
    table = _class_table(root, meta, pairs)
    return SplitSpec(split, [by_stem[s] for s in stems], table, identity_lut(table.num_classes, table.ignore_index), root)
