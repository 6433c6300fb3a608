"""The Ultralytics YOLO segmentation layout, read without converting.

    data.yaml              names: {0: person, 1: car} (or a list); train: images/train; val: images/val
    images/<split>/x.jpg   the images (a split may also be a .txt list of image paths, or a list of folders)
    labels/<split>/x.txt   one object per line: `class x1 y1 x2 y2 ...`, a polygon normalised to 0-1

The yaml is `data.yaml` (or the only *.yaml) in the root. Relative split paths are resolved against
the yaml's `path` when that folder exists, else against the yaml's own folder (a released yaml's
`path: ../datasets/x` points into Ultralytics' datasets folder, which need not exist here). Labels
are found as Ultralytics finds them: the last `images` folder of the image path becomes `labels`
and the suffix `.txt`. An image without a label file has no objects (a background image).
Detection labels (5 values, `class x y w h`) are an error: instance segmentation needs polygons.
Label files are read when an image is loaded; errors name the file and line.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import yaml

from seglab.data.instance.spec import InstanceItem, Instances, InstanceSplit, polygon_problem, rasterize_polygons
from seglab.data.io import IMAGE_SUFFIXES, DataError, image_size
from seglab.data.spec import keep_going

YAML_NAMES = ("data.yaml", "dataset.yaml")
SPLIT_KEYS = ("train", "val", "test")
TOLERANCE = 1e-3  # normalised coordinates may stray this far outside 0-1 (rounding in exporters)


def find_yaml(root: Path) -> Path | None:
    root = Path(root)
    for name in YAML_NAMES:
        if (root / name).is_file():
            return root / name
    found = sorted(root.glob("*.yaml")) if root.is_dir() else []
    return found[0] if len(found) == 1 else None


def is_yolo(root: Path) -> bool:
    path = find_yaml(root)
    if path is None:
        return False
    try:
        return "names" in read_yaml(path)
    except DataError:  # a broken yaml beside labels/: let load_split report what is wrong with it
        return (Path(root) / "labels").is_dir()


def read_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: not valid YAML ({e})") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a mapping with \"names\" and the split folders (train: images/train)")
    return data


def class_names(path: Path, data: dict) -> list[str]:
    names = data.get("names")
    if isinstance(names, dict):
        if sorted(names) != list(range(len(names))):
            raise DataError(f"{path}: \"names\" keys must be the class indices 0..{len(names) - 1}, "
                            f"got {sorted(names)}")
        names = [names[i] for i in range(len(names))]
    if not (isinstance(names, list) and names):
        raise DataError(f"{path}: \"names\" must list the classes (a list, or {{0: name, 1: name}}), got {names!r}")
    names = [str(n) for n in names]
    if "nc" in data and data["nc"] != len(names):
        raise DataError(f"{path}: \"nc\" is {data['nc']!r} but \"names\" lists {len(names)} classes")
    return names


def base_folder(path: Path, data: dict) -> Path:
    given = data.get("path")
    if given:
        base = Path(str(given)).expanduser()
        base = base if base.is_absolute() else path.parent / base
        if base.is_dir():
            return base
    return path.parent


def splits(root: Path) -> list[str]:
    path = find_yaml(root)
    if path is None:
        return []
    data = read_yaml(path)
    listed = [key for key in SPLIT_KEYS if data.get(key)]
    if listed:
        return listed
    images = Path(root) / "images"
    return sorted(p.name for p in images.iterdir() if p.is_dir()) if images.is_dir() else []


def _images_in(source: Path, yaml_path: Path) -> list[Path]:
    if source.is_dir():
        return sorted(p for p in source.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES
                      and not p.name.startswith(".") and p.is_file())
    if source.suffix == ".txt" and source.is_file():
        lines = [line.strip() for line in source.read_text(encoding="utf-8").splitlines() if line.strip()]
        return [Path(line) if Path(line).is_absolute() else (source.parent / line) for line in lines]
    raise DataError(f"{yaml_path}: split folder {source} does not exist")


def split_images(path: Path, data: dict, root: Path, split: str) -> list[Path]:
    value = data.get(split)
    if not value:
        if (root / "images" / split).is_dir():
            value = f"images/{split}"
        else:
            known = [key for key in SPLIT_KEYS if data.get(key)]
            raise DataError(f"{path}: no split '{split}' (splits given: {', '.join(known) or 'none'})")
    base = base_folder(path, data)
    sources = value if isinstance(value, list) else [value]
    images: list[Path] = []
    for source in sources:
        source = Path(str(source)).expanduser()
        images += _images_in(source if source.is_absolute() else base / source, path)
    return images


def label_path(image: Path) -> Path | None:
    """Ultralytics' rule: the last `images` folder of the path becomes `labels`, the suffix `.txt`."""
    parts = list(image.parts)
    where = [i for i, part in enumerate(parts[:-1]) if part == "images"]
    if not where:
        return None
    parts[where[-1]] = "labels"
    return Path(*parts).with_suffix(".txt")


def parse_line(line: str, number: int, path: Path, num_classes: int) -> tuple[int, list[float]]:
    values = line.split()
    where = f"{path}: line {number}"
    try:
        cls_value = float(values[0])
        numbers = [float(v) for v in values[1:]]
    except ValueError:
        raise DataError(f"{where}: not numbers: {line.strip()[:80]!r}") from None
    if cls_value != int(cls_value) or not 0 <= cls_value < num_classes:
        raise DataError(f"{where}: class {values[0]} is not a class index of data.yaml names (0-{num_classes - 1})")
    if len(numbers) == 4:
        raise DataError(f"{where}: 5 values (class x y w h) is a detection box; instance segmentation needs a "
                        f"polygon per object: class x1 y1 x2 y2 x3 y3 ... (normalised 0-1)")
    problem = polygon_problem(numbers)
    if problem:
        raise DataError(f"{where}: {problem}")
    if min(numbers) < -TOLERANCE or max(numbers) > 1 + TOLERANCE:
        raise DataError(f"{where}: coordinate outside 0-1 ({min(numbers):g}..{max(numbers):g}); YOLO polygons "
                        f"are normalised by the image width and height")
    return int(cls_value), numbers


def load_label_file(image_path: Path, labels_path: Path | None, num_classes: int) -> Instances:
    width, height = image_size(image_path)
    if labels_path is None or not labels_path.is_file():
        return Instances.empty(height, width)
    try:
        text = labels_path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{labels_path}: cannot read the label file ({e})") from None
    masks, labels, sources = [], [], []
    scale = np.array([width, height], dtype=np.float64)
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        cls, coords = parse_line(line, number, labels_path, num_classes)
        points = (np.array(coords, dtype=np.float64).reshape(-1, 2) * scale).ravel().tolist()
        masks.append(rasterize_polygons([points], height, width))
        labels.append(cls)
        sources.append(f"line {number}")
    if not masks:
        return Instances.empty(height, width)
    return Instances(np.stack(masks), labels, np.zeros(len(labels), bool), sources=sources)


def load_split(root: Path, split: str, skip_bad: bool = False, **_) -> InstanceSplit:
    root = Path(root)
    path = find_yaml(root)
    if path is None:
        raise DataError(f"{root}: no data.yaml (a YOLO dataset names its classes and splits in data.yaml)")
    data = read_yaml(path)
    classes = class_names(path, data)
    skipped: list = []
    items = []
    for image_id, image in enumerate(split_images(path, data, root, split)):
        labels = label_path(image)
        if labels is None:
            keep_going(skip_bad, skipped, image, "image is not inside an images/ folder, so it has no labels/ "
                                                 "folder (YOLO: images/<split>/x.jpg -> labels/<split>/x.txt)")
            continue
        items.append(InstanceItem(image, image.stem, partial(load_label_file, image, labels, len(classes)),
                                  image_id=image_id, annotation_file=labels))
    return InstanceSplit(split, root, classes, items, skipped, format="yolo")
