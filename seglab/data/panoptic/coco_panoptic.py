"""COCO panoptic: one JSON of segments_info per image plus one RGB PNG of segment ids (id = R + 256 G + 256^2 B).

Two layouts:
- COCO's release (`coco`): `annotations/panoptic_<split>.json` with its PNGs in `annotations/panoptic_<split>/`
  (or `panoptic_<split>/` beside `annotations/`), images in `<split>/`, `<split>2017/`, `images/<split>/`
  or `images/`. A split is named by its file (`val2017`); a prefix naming exactly one works (`val`).
- panopticapi's `sample_data/` (`panoptic_sample`): `<name>.json` + `<name>/` PNGs + one folder of images
  beside them (`input_images/`). One such pair has no splits (seglab.data.splits' seeded rule over its
  images, or splits/<split>.txt); several pairs are splits named by their JSON.
Classes are the categories sorted by id, so class i is the i-th category and `category_ids[i]` its id;
`isthing` marks the things. Listing checks the structure (image and category ids); loading an image
reads its PNG and records, as problems of the image, ids in the PNG missing from the JSON (their pixels
become void) and segments of categories the JSON does not declare (void too).
"""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image

from seglab.data import splits as splitting
from seglab.data.io import IMAGE_SUFFIXES, DataError, image_size
from seglab.data.panoptic.canonical import ids_from_rgb
from seglab.data.panoptic.spec import PanopticItem, PanopticSplit, PanopticTruth
from seglab.data.spec import keep_going

PREFIX = "panoptic_"


# --- layouts ----------------------------------------------------------------------------------------------
def coco_files(root: Path) -> dict[str, Path]:
    """{split: annotations/panoptic_<split>.json}."""
    folder = Path(root) / "annotations"
    return {p.stem[len(PREFIX):]: p for p in sorted(folder.glob(f"{PREFIX}*.json"))} if folder.is_dir() else {}


def is_coco_panoptic(root: Path) -> bool:
    return bool(coco_files(root))


def sample_files(root: Path) -> dict[str, Path]:
    """{name: <name>.json} for every <name>.json with a <name>/ folder beside it (panopticapi's sample_data)."""
    root = Path(root)
    if not root.is_dir():
        return {}
    return {p.stem: p for p in sorted(root.glob("*.json")) if (root / p.stem).is_dir()}


def is_panoptic_sample(root: Path) -> bool:
    return bool(sample_files(root)) and not is_coco_panoptic(root)


def coco_splits(root: Path) -> list[str]:
    return sorted(coco_files(root))


def sample_splits(root: Path) -> list[str]:
    files = sample_files(root)
    return sorted(files) if len(files) > 1 else splitting.listed_splits(root)


def _resolve(files: dict[str, Path], root: Path, split: str, where: str) -> tuple[str, Path]:
    if split in files:
        return split, files[split]
    starting = [name for name in files if name.startswith(split)]
    if len(starting) == 1:
        return starting[0], files[starting[0]]
    raise DataError(f"{root}: no panoptic annotation file for split '{split}'; splits: "
                    f"{', '.join(sorted(files)) or 'none'} ({where})")


def coco_image_folder(root: Path, split: str) -> Path:
    for folder in (root / split, root / f"{split}2017", root / "images" / split, root / "images"):
        if folder.is_dir():
            return folder
    raise DataError(f"{root}: no image folder for split '{split}' (looked for {split}/, {split}2017/, "
                    f"images/{split}/, images/)")


def png_folder(json_path: Path) -> Path:
    for folder in (json_path.with_suffix(""), json_path.parent.parent / json_path.stem):
        if folder.is_dir():
            return folder
    archive = json_path.with_suffix(".zip")
    hint = f"; unzip {archive} (COCO ships the PNGs zipped)" if archive.is_file() else ""
    raise DataError(f"{json_path}: its PNG folder {json_path.with_suffix('')}/ does not exist{hint}")


def sample_image_folder(root: Path) -> Path:
    png_folders = {root / name for name in sample_files(root)}
    candidates = [p for p in sorted(root.iterdir()) if p.is_dir() and p not in png_folders and p.name != "splits"
                  and any(q.suffix.lower() in IMAGE_SUFFIXES for q in p.iterdir())]
    if len(candidates) != 1:
        found = ", ".join(p.name for p in candidates) or "none"
        raise DataError(f"{root}: expected one folder of images beside the panoptic JSON and PNG folder, found {found}")
    return candidates[0]


# --- the JSON ---------------------------------------------------------------------------------------------
def read_panoptic_json(path: Path) -> dict:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: not valid JSON ({e})") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read the file ({e})") from None
    missing = [k for k in ("images", "annotations", "categories") if not isinstance(data, dict)
               or not isinstance(data.get(k), list)]
    if missing:
        raise DataError(f"{path}: no list {missing}; a COCO panoptic file has \"images\", \"annotations\" "
                        "(with segments_info) and \"categories\" (with isthing)")
    return data


def read_categories(path: Path, categories: list) -> tuple[list[str], list[bool], list[int], list | None]:
    """(names, is_thing, category ids, colours or None), sorted by category id."""
    by_id = {}
    for i, category in enumerate(categories):
        ok = (isinstance(category, dict) and type(category.get("id")) is int and isinstance(category.get("name"), str)
              and category.get("isthing") in (0, 1, True, False))
        if not ok:
            raise DataError(f"{path}: categories[{i}] needs an integer \"id\", a string \"name\" and \"isthing\" "
                            f"(0 or 1), got {category!r}")
        if category["id"] in by_id:
            raise DataError(f"{path}: category id {category['id']} appears twice")
        by_id[category["id"]] = category
    if not by_id:
        raise DataError(f"{path}: \"categories\" is empty")
    ids = sorted(by_id)
    colors = [by_id[c].get("color") for c in ids]
    usable = all(isinstance(c, list) and len(c) == 3 for c in colors)
    return ([by_id[c]["name"] for c in ids], [bool(by_id[c]["isthing"]) for c in ids], ids,
            [tuple(int(v) for v in c) for c in colors] if usable else None)


def load_png_truth(png: Path, segments_info: tuple, category_index: dict, size: tuple[int, int]) -> PanopticTruth:
    """The truth of one image: ids of its PNG, the JSON's segments; problems named (their pixels void)."""
    try:
        with Image.open(png) as image:
            rgb = np.asarray(image.convert("RGB"))
    except (OSError, SyntaxError, ValueError) as e:
        raise DataError(f"{png}: cannot read the panoptic PNG ({e})") from None
    width, height = size
    if rgb.shape[:2] != (height, width):
        raise DataError(f"{png}: panoptic PNG is {rgb.shape[1]}x{rgb.shape[0]} but its image is {width}x{height}")
    ids = ids_from_rgb(rgb)
    problems, segments = [], []
    for info in segments_info:
        if info["category_id"] not in category_index:
            problems.append(("unknown_category", f"{png}: segment {info['id']} has category_id "
                                                 f"{info['category_id']}, not in the JSON's categories (read as void)"))
            ids[ids == info["id"]] = 0
            continue
        segments.append({"id": int(info["id"]), "category_id": category_index[info["category_id"]],
                         "iscrowd": int(bool(info.get("iscrowd", 0)))})
    listed = {s["id"] for s in segments} | {int(i["id"]) for i in segments_info}
    present = np.unique(ids)
    missing = [int(v) for v in present if v != 0 and int(v) not in listed]
    if missing:
        problems.append(("missing_id", f"{png}: segment ids {missing[:10]}{' ...' if len(missing) > 10 else ''} "
                                       f"in the PNG are missing from the JSON's segments_info (read as void)"))
        ids[np.isin(ids, missing)] = 0
    present = set(np.unique(ids).tolist())
    empty = [s["id"] for s in segments if s["id"] not in present]
    if empty:
        problems.append(("empty", f"{png}: segments {empty[:10]} of the JSON have no pixel in the PNG"))
        segments = [s for s in segments if s["id"] in present]
    return PanopticTruth(ids, segments, problems)


def _segment_problem(info) -> str | None:
    ok = isinstance(info, dict) and type(info.get("id")) is int and type(info.get("category_id")) is int
    return None if ok else f"segments_info entry {info!r} needs integer \"id\" and \"category_id\""


def _load(root: Path, json_path: Path, images_dir: Path, pngs: Path, split: str, names_from: str, fmt: str,
          seed: int, val_fraction: float, skip_bad: bool) -> PanopticSplit:
    data = read_panoptic_json(json_path)
    classes, is_thing, category_ids, colors = read_categories(json_path, data["categories"])
    category_index = {c: i for i, c in enumerate(category_ids)}
    images = {}
    for i, image in enumerate(data["images"]):
        if not (isinstance(image, dict) and "id" in image and isinstance(image.get("file_name"), str)):
            raise DataError(f"{json_path}: images[{i}] needs an \"id\" and a \"file_name\", got {image!r}")
        images[image["id"]] = image
    skipped, items = [], {}
    for i, ann in enumerate(data["annotations"]):
        where = f"annotations[{i}]"
        if not isinstance(ann, dict) or not isinstance(ann.get("file_name"), str) or not isinstance(
                ann.get("segments_info"), list):
            keep_going(skip_bad, skipped, json_path, f"{where} needs \"image_id\", a \"file_name\" and \"segments_info\"")
            continue
        image = images.get(ann.get("image_id"))
        problem = next((p for p in map(_segment_problem, ann["segments_info"]) if p), None)
        if image is None or problem:
            keep_going(skip_bad, skipped, json_path, f"{where}: " + (problem or f"image_id {ann.get('image_id')!r} "
                                                                      "is not in \"images\""))
            continue
        image_path = images_dir / image["file_name"]
        if not image_path.is_file():
            keep_going(skip_bad, skipped, image_path, f"image of {where} does not exist")
            continue
        size = (image.get("width"), image.get("height"))
        if not all(isinstance(v, int) and v > 0 for v in size):
            size = image_size(image_path)
        name = Path(image["file_name"]).stem
        info = tuple({"id": s["id"], "category_id": s["category_id"], "iscrowd": s.get("iscrowd", 0)}
                     for s in ann["segments_info"])
        items[name] = PanopticItem(image_path, name, partial(load_png_truth, pngs / ann["file_name"], info,
                                                             category_index, size), image["id"],
                                   pngs / ann["file_name"])
    missing = sorted(set(Path(i["file_name"]).stem for i in images.values()) - set(items))
    for name in missing:
        keep_going(skip_bad, skipped, json_path, f"image {name} has no annotation")
    if names_from == "split rule":
        chosen = splitting.choose(root, list(items), split, seed, val_fraction, skip_bad, skipped)
    else:
        chosen = sorted(items)
    return PanopticSplit(split, root, classes, is_thing, [items[n] for n in chosen], category_ids, skipped, fmt,
                         colors)


def load_coco_split(root: Path, split: str, seed: int = 0, val_fraction: float = 0.2, skip_bad: bool = False,
                    **_) -> PanopticSplit:
    root = Path(root)
    name, json_path = _resolve(coco_files(root), root, split, f"annotations/{PREFIX}<split>.json")
    return _load(root, json_path, coco_image_folder(root, name), png_folder(json_path), name, "file", "coco_panoptic",
                 seed, val_fraction, skip_bad)


def load_sample_split(root: Path, split: str, seed: int = 0, val_fraction: float = 0.2, skip_bad: bool = False,
                      **_) -> PanopticSplit:
    root = Path(root)
    files = sample_files(root)
    if not files:
        raise DataError(f"{root}: no <name>.json with a <name>/ PNG folder beside it (panopticapi's sample_data)")
    if len(files) == 1:
        json_path = next(iter(files.values()))
        return _load(root, json_path, sample_image_folder(root), json_path.with_suffix(""), split, "split rule",
                     "panoptic_sample", seed, val_fraction, skip_bad)
    name, json_path = _resolve(files, root, split, "<split>.json + <split>/")
    return _load(root, json_path, sample_image_folder(root), json_path.with_suffix(""), name, "file",
                 "panoptic_sample", seed, val_fraction, skip_bad)
