"""A plain folder: images/ and masks/ paired by file stem, with an optional dataset.json.

dataset.json (all keys optional):
  {"classes": ["background", "cat"], "colors": [[0, 0, 0], [255, 0, 0]], "ignore_index": 255,
   "color_map": {"0,0,0": "background", "#ff0000": "cat", "255,255,255": 255}}
Single-channel masks hold class ids (0..n-1; the ignore value is skipped). Colour (RGB) masks are
decoded with "color_map" ("r,g,b" or "#rrggbb" -> class name, class id or the ignore value) when
given, else with "colors" as the palette (colour i -> class i). Without "classes", the classes are
read off the masks (class_0 .. class_<max id>). Splits: root/splits/<split>.txt (one stem per
line) when present, otherwise a seeded random split with `val_fraction` held out as val.
Hidden files (.DS_Store, ._x.png) and files that are not images are ignored.

Binary masks: when dataset.json is absent or says nothing about the mask values (none of "classes",
"colors", "color_map", "ignore_index") and the masks of the whole folder hold exactly the values
{0, 255} or exactly {0, 1}, they are read as two classes, background (0) and foreground (255 or 1),
and the split carries a one-line note saying so (printed by train and verify). Any other value set,
or a dataset.json that declares any of those keys, is read as above (255 is then the ignore value).
Detection costs one scan of the folder's masks, which reading the classes off the masks needs
anyway: each mask's distinct values come from a bincount of its pixels and are cached per file
(path, size, modification time), so the train, val and other splits of one folder scan it once.
"""

from __future__ import annotations

import difflib
from pathlib import Path

import numpy as np

from seglab.data.io import IMAGE_SUFFIXES, DataError, identity_lut, mask_values, read_json_object
from seglab.data.splits import choose
from seglab.data.spec import ClassTable, SplitSpec, default_colors, keep_going

DATASET_JSON_KEYS = {"classes", "colors", "color_map", "ignore_index", "name", "description"}
LABEL_KEYS = {"classes", "colors", "color_map", "ignore_index"}  # the dataset.json keys that say what mask values mean
BINARY_VALUES = ((0, 255), (0, 1))  # exact value sets of a folder's masks read as background / foreground
BINARY_CLASSES = ["background", "foreground"]


def is_folder(root: Path) -> bool:
    return (root / "images").is_dir() and (root / "masks").is_dir()


def splits(root: Path) -> list[str]:
    """The splits `seglab verify` checks: every splits/<name>.txt, else `all`."""
    listed = sorted(p.stem for p in (root / "splits").glob("*.txt")) if (root / "splits").is_dir() else []
    return listed or ["all"]


def _by_stem(folder: Path, skip_bad: bool, skipped: list) -> tuple[dict[str, Path], set[str]]:
    found: dict[str, Path] = {}
    clashes: set[str] = set()
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or path.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        if not path.is_file() and not path.is_symlink():  # a folder named x.png; broken links are reported
            continue
        if path.stem in found:
            reason = f"two files share the stem '{path.stem}' ({found[path.stem].name}, {path.name})"
            keep_going(skip_bad, skipped, path, reason)
            clashes.add(path.stem)
            continue
        found[path.stem] = path
    for stem in clashes:  # ambiguous: use neither
        del found[stem]
    return found, clashes


def pair_files(root: Path, skip_bad: bool = False, skipped: list | None = None) -> list[tuple[Path, Path]]:
    skipped = [] if skipped is None else skipped
    (images, image_clashes), (masks, mask_clashes) = (_by_stem(root / "images", skip_bad, skipped),
                                                      _by_stem(root / "masks", skip_bad, skipped))
    for stem in image_clashes | mask_clashes:  # the other half of an ambiguous pair is left out too
        images.pop(stem, None)
        masks.pop(stem, None)
    if not images and not image_clashes:
        raise DataError(f"{root / 'images'}: no image files ({', '.join(IMAGE_SUFFIXES)})")
    missing = sorted(set(images) - set(masks))
    if missing and not skip_bad:
        raise DataError(f"{images[missing[0]]}: no mask with the same stem in {root / 'masks'} ({len(missing)} such images)")
    orphans = sorted(set(masks) - set(images))
    if orphans and not skip_bad:
        raise DataError(f"{masks[orphans[0]]}: mask without an image in {root / 'images'} ({len(orphans)} such masks)")
    skipped += [(images[s], f"no mask with the same stem in {root / 'masks'}") for s in missing]
    skipped += [(masks[s], f"mask without an image in {root / 'images'}") for s in orphans]
    return [(images[s], masks[s]) for s in sorted(set(images) & set(masks))]


def read_dataset_json(root: Path) -> dict:
    path = root / "dataset.json"
    meta = read_json_object(path)
    if meta is None:
        return {}
    unknown = sorted(set(meta) - DATASET_JSON_KEYS)
    if unknown:
        close = difflib.get_close_matches(unknown[0], sorted(DATASET_JSON_KEYS), n=1, cutoff=0.6)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise DataError(f"{path}: unknown key(s) {unknown}; valid keys: {sorted(DATASET_JSON_KEYS)}.{hint}")
    return meta


def _check_meta(path: Path, meta: dict) -> None:
    """Types and ranges of the dataset.json values, so a typo fails here and names the file."""
    names, colors, ignore = meta.get("classes"), meta.get("colors"), meta.get("ignore_index", 255)
    if names is not None and not (isinstance(names, list) and names and all(isinstance(n, str) for n in names)):
        raise DataError(f"{path}: \"classes\" must be a non-empty list of class names, got {names!r}")
    if colors is not None and not (isinstance(colors, list) and all(
            isinstance(c, list) and len(c) == 3 and all(type(v) is int and 0 <= v <= 255 for v in c) for c in colors)):
        raise DataError(f"{path}: \"colors\" must be a list of [r, g, b] with values 0-255, got {colors!r}")
    if type(ignore) is not int or not 0 <= ignore <= 255:
        raise DataError(f"{path}: \"ignore_index\" must be an integer 0-255, got {ignore!r}")
    if names is not None and 0 <= ignore < len(names):
        raise DataError(f"{path}: \"ignore_index\" {ignore} is the id of class '{names[ignore]}'; "
                        f"use a value outside 0-{len(names) - 1} (255 is usual)")
    if colors and len({tuple(c) for c in colors}) != len(colors) and "color_map" not in meta:
        raise DataError(f"{path}: \"colors\" lists the same colour twice, so it cannot decode colour masks; "
                        f"make the colours distinct or give a \"color_map\"")


def _parse_color(path: Path, key: str) -> tuple[int, int, int]:
    text = key.strip()
    try:
        if text.startswith("#") and len(text) == 7:
            rgb = tuple(int(text[i:i + 2], 16) for i in (1, 3, 5))
        else:
            rgb = tuple(int(v) for v in text.split(","))
        if len(rgb) == 3 and all(0 <= v <= 255 for v in rgb):
            return rgb
    except ValueError:
        pass
    raise DataError(f"{path}: \"color_map\" key {key!r} is not a colour; write \"r,g,b\" (0-255) or \"#rrggbb\"")


def _mask_colors(path: Path, meta: dict, names: list[str] | None, ignore: int) -> dict | None:
    """{(r, g, b): raw value} for colour masks: "color_map" if given, else "colors" as the palette."""
    color_map = meta.get("color_map")
    if color_map is None:
        colors = meta.get("colors")
        return {tuple(c): i for i, c in enumerate(colors)} if colors else None
    if not isinstance(color_map, dict) or not color_map:
        raise DataError(f"{path}: \"color_map\" must be an object {{\"r,g,b\": class name or id}}, got {color_map!r}")
    table = {}
    for key, value in color_map.items():
        rgb = _parse_color(path, key)
        if isinstance(value, str):
            if value == "ignore":
                value = ignore
            elif names is None or value not in names:
                raise DataError(f"{path}: \"color_map\" maps {key!r} to {value!r}, which is not in \"classes\" "
                                f"{names or '(none given)'}")
            else:
                value = names.index(value)
        valid = type(value) is int and (value == ignore or 0 <= value < (len(names) if names else 256))
        if not valid:
            raise DataError(f"{path}: \"color_map\" maps {key!r} to {value!r}; expected a class name, a class id "
                            f"or the ignore value {ignore}")
        if rgb in table and table[rgb] != value:
            raise DataError(f"{path}: \"color_map\" gives the colour {rgb} twice")
        table[rgb] = value
    return table


def _folder_values(pairs: list[tuple[Path, Path]], mask_colors: dict | None, skip_bad: bool) -> list[int]:
    """The raw values that occur in any mask of the folder (unreadable masks skipped with skip_bad)."""
    seen = np.zeros(256, dtype=bool)
    for _, mask in pairs:
        try:
            seen[mask_values(mask, mask_colors)] = True
        except DataError:
            if not skip_bad:
                raise
            continue  # left out later, when the pair is loaded, with its reason
    return np.flatnonzero(seen).tolist()


def _binary_note(root: Path, values: tuple[int, int]) -> str:
    low, high = values
    return (f"{root / 'masks'}: every mask holds only {low} and {high} and no dataset.json says what they mean: "
            f"read as background ({low}) / foreground ({high})")


def _class_table(root: Path, meta: dict, pairs: list[tuple[Path, Path]],
                 skip_bad: bool) -> tuple[ClassTable, dict | None, np.ndarray, list[str]]:
    """The class table, the colour table, the raw value -> class id map and the notes for the user."""
    path = root / "dataset.json"
    _check_meta(path, meta)
    ignore_index = int(meta.get("ignore_index", 255))
    names = meta.get("classes")
    mask_colors = _mask_colors(path, meta, names, ignore_index)
    if names is None:
        values = _folder_values(pairs, mask_colors, skip_bad)
        if tuple(values) in BINARY_VALUES and not LABEL_KEYS & set(meta):
            lut = np.full(256, -1, dtype=np.int16)
            lut[values] = [0, 1]
            table = ClassTable(list(BINARY_CLASSES), default_colors(2), ignore_index)
            return table, mask_colors, lut, [_binary_note(root, tuple(values))]
        labels = [v for v in values if v != ignore_index]
        names = [f"class_{i}" for i in range(max(labels, default=0) + 1)]
    colors = meta.get("colors")
    if not colors and meta.get("color_map"):  # display colours: the first colour mapped to each class
        first = {}
        for rgb, value in mask_colors.items():
            first.setdefault(value, rgb)
        colors = [first.get(i, c) for i, c in enumerate(default_colors(len(names)))]
    colors = colors or default_colors(len(names))
    if len(colors) != len(names):
        raise DataError(f"{path}: {len(names)} classes but {len(colors)} colors")
    table = ClassTable(list(names), [tuple(int(v) for v in c) for c in colors], ignore_index)
    return table, mask_colors, identity_lut(table.num_classes, table.ignore_index), []


def load_split(root: Path, split: str, seed: int = 0, val_fraction: float = 0.2, skip_bad: bool = False,
               **_) -> SplitSpec:
    root = Path(root)
    if not is_folder(root):
        raise DataError(f"{root}: a folder dataset needs images/ and masks/ in it")
    meta = read_dataset_json(root)
    skipped: list = []
    pairs = pair_files(root, skip_bad, skipped)
    by_stem = {image.stem: (image, mask) for image, mask in pairs}
    left_out = {Path(p).stem for p, _ in skipped}
    stems = choose(root, sorted(by_stem), split, seed, val_fraction, skip_bad, skipped, left_out)
    listed = root / "splits" / f"{split}.txt"
    if listed.is_file():  # a split list: only its own stems' problems (and the list's) belong to this split
        wanted = {s.strip() for s in listed.read_text(encoding="utf-8").splitlines()}
        skipped = [(path, reason) for path, reason in skipped if path.stem in wanted or path == listed]
    table, mask_colors, lut, notes = _class_table(root, meta, pairs, skip_bad)
    return SplitSpec(split, [by_stem[s] for s in stems], table, lut, root, mask_colors=mask_colors,
                     skipped=skipped, notes=notes)
