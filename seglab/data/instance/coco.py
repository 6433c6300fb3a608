"""COCO instances JSON, one annotation file per split, as released.

Two layouts are recognised:
- COCO's own: `annotations/instances_<split>.json` with the images in `<split>/` (train2017/,
  val2017/), else `images/<split>/`, else `images/`; `file_name` is relative to that folder.
- one file inside each split folder (Roboflow and CVAT exports): `<split>/_annotations.coco.json`
  with the images beside it.
A split is named by its file (`train2017`); a prefix that names exactly one split works too
(`train` -> `train2017`).

Classes are the categories sorted by id; label i is the i-th category, and `category_ids[i]` keeps
its original id (COCO's are 1..90 with gaps), so a results JSON can use them. Segmentations are
polygons (a list of flat [x1, y1, x2, y2, ...] lists, pixel coordinates), compressed RLE
(`counts` a string) or uncompressed RLE (`counts` a list, as COCO stores crowd regions); `iscrowd`
is kept per instance. The structure of every annotation is checked when the split is listed
(unknown image or category ids, polygons with fewer than 3 points or odd coordinates, RLE sizes that
differ from the image's); masks are decoded when an image is loaded. The `bbox` fields are not used
(boxes come from the masks) but `verify` compares them with the image.
"""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import numpy as np

from seglab.data.instance.spec import (InstanceItem, Instances, InstanceSplit, decode_rle, polygon_problem,
                                       rasterize_polygons)
from seglab.data.io import DataError, image_size
from seglab.data.spec import keep_going

PREFIX = "instances_"
EXPORT_FILE = "_annotations.coco.json"


def annotation_files(root: Path) -> dict[str, Path]:
    """{split name: annotation file} for both layouts."""
    root = Path(root)
    found = {}
    if (root / "annotations").is_dir():
        found.update({p.stem[len(PREFIX):]: p for p in sorted((root / "annotations").glob(f"{PREFIX}*.json"))})
    if root.is_dir():
        found.update({p.name: p / EXPORT_FILE for p in sorted(root.iterdir()) if (p / EXPORT_FILE).is_file()})
    return found


def is_coco(root: Path) -> bool:
    return bool(annotation_files(root))


def splits(root: Path) -> list[str]:
    return sorted(annotation_files(root))


def resolve_split(root: Path, split: str) -> tuple[str, Path]:
    files = annotation_files(root)
    if split in files:
        return split, files[split]
    starting = [name for name in files if name.startswith(split)]
    if len(starting) == 1:
        return starting[0], files[starting[0]]
    listed = ", ".join(sorted(files)) or "none"
    raise DataError(f"{root}: no COCO annotation file for split '{split}'; splits: {listed} "
                    f"(annotations/{PREFIX}<split>.json or <split>/{EXPORT_FILE})")


def image_folder(root: Path, split: str, json_path: Path) -> Path:
    if json_path.name == EXPORT_FILE:
        return json_path.parent
    for folder in (root / split, root / "images" / split, root / "images"):
        if folder.is_dir():
            return folder
    return root


def read_json(path: Path) -> dict:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: not valid JSON ({e})") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read the file ({e})") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a COCO JSON object with \"images\", \"annotations\", \"categories\"")
    missing = [key for key in ("images", "annotations", "categories") if not isinstance(data.get(key), list)]
    if missing:
        raise DataError(f"{path}: no list {missing} in the file; a COCO instances file has \"images\", "
                        f"\"annotations\" and \"categories\"")
    return data


def read_categories(path: Path, categories: list) -> tuple[list[str], list[int]]:
    ids, names = [], {}
    for i, category in enumerate(categories):
        ok = isinstance(category, dict) and type(category.get("id")) is int and isinstance(category.get("name"), str)
        if not ok:
            raise DataError(f"{path}: categories[{i}] needs an integer \"id\" and a string \"name\", got {category!r}")
        if category["id"] in names:
            raise DataError(f"{path}: category id {category['id']} appears twice")
        names[category["id"]] = category["name"]
        ids.append(category["id"])
    if not ids:
        raise DataError(f"{path}: \"categories\" is empty")
    ids.sort()
    return [names[c] for c in ids], ids


def read_images(path: Path, images: list) -> dict[int, dict]:
    by_id = {}
    for i, image in enumerate(images):
        ok = (isinstance(image, dict) and type(image.get("id")) is int and isinstance(image.get("file_name"), str)
              and all(type(image.get(k)) is int and image[k] > 0 for k in ("width", "height")))
        if not ok:
            raise DataError(f"{path}: images[{i}] needs an integer \"id\", a \"file_name\" and positive integer "
                            f"\"width\" and \"height\", got {image!r}")
        if image["id"] in by_id:
            raise DataError(f"{path}: image id {image['id']} appears twice ({by_id[image['id']]['file_name']}, "
                            f"{image['file_name']})")
        by_id[image["id"]] = image
    return by_id


def rle_problem(rle: dict, height: int, width: int) -> str | None:
    size, counts = rle.get("size"), rle.get("counts")
    if not (isinstance(size, list) and len(size) == 2 and all(type(v) is int for v in size)):
        return f"RLE needs \"size\": [height, width], got {size!r}"
    if tuple(size) != (height, width):
        return f"RLE size {size[1]}x{size[0]} (width x height) differs from its image's {width}x{height}"
    if isinstance(counts, list):
        if not all(type(v) is int and v >= 0 for v in counts):
            return "uncompressed RLE \"counts\" must be non-negative integers"
        if sum(counts) != height * width:
            return f"uncompressed RLE counts sum to {sum(counts)}, not height x width = {height * width}"
        return None
    if not isinstance(counts, str):
        return f"RLE \"counts\" must be a string (compressed) or a list (uncompressed), got {type(counts).__name__}"
    return None


def segmentation_problem(segmentation, height: int, width: int) -> str | None:
    if isinstance(segmentation, dict):
        return rle_problem(segmentation, height, width)
    if isinstance(segmentation, list):
        if not segmentation:
            return "empty \"segmentation\" (instances need masks: polygons or RLE)"
        for j, polygon in enumerate(segmentation):
            problem = polygon_problem(polygon)
            if problem:
                return f"segmentation[{j}]: {problem}"
        return None
    return f"no \"segmentation\" (polygons or RLE) but {segmentation!r}; instances need masks"


def _key(value):
    """An id usable as a dict key (a list or dict from a damaged file is not)."""
    return value if isinstance(value, (int, str)) else repr(value)


def annotation_problem(ann, images: dict, category_index: dict) -> str | None:
    if _key(ann.get("image_id")) not in images:
        return f"image_id {ann.get('image_id')!r} is not in \"images\""
    image = images[ann["image_id"]]
    if _key(ann.get("category_id")) not in category_index:
        return f"unknown category id {ann.get('category_id')!r} (categories: {sorted(category_index)})"
    if ann.get("iscrowd", 0) not in (0, 1):
        return f"\"iscrowd\" must be 0 or 1, got {ann.get('iscrowd')!r}"
    return segmentation_problem(ann.get("segmentation"), image["height"], image["width"])


def decode_segmentation(segmentation, height: int, width: int) -> np.ndarray:
    from pycocotools import mask as coco_mask

    if isinstance(segmentation, list):
        return rasterize_polygons(segmentation, height, width)
    if isinstance(segmentation["counts"], list):
        segmentation = coco_mask.frPyObjects(segmentation, height, width)
    else:
        segmentation = {"size": segmentation["size"], "counts": segmentation["counts"].encode("ascii")}
    return decode_rle(segmentation)


def load_image_annotations(json_path: Path, image_path: Path, file_name: str, height: int, width: int,
                           annotations: tuple) -> Instances:
    """annotations: ((annotation id, segmentation, class index, iscrowd), ...) already checked."""
    actual = image_size(image_path)
    if actual != (width, height):
        raise DataError(f"{json_path}: image {file_name} is {actual[0]}x{actual[1]} but the file gives "
                        f"width {width}, height {height}")
    masks = np.zeros((len(annotations), height, width), dtype=bool)
    for i, (ann_id, segmentation, _, _) in enumerate(annotations):
        try:
            masks[i] = decode_segmentation(segmentation, height, width)
        except (ValueError, TypeError, UnicodeEncodeError) as e:  # a damaged compressed RLE string
            raise DataError(f"{json_path}: annotation {ann_id} (image {file_name}): cannot decode the "
                            f"segmentation ({e})") from None
    return Instances(masks, [a[2] for a in annotations], [bool(a[3]) for a in annotations],
                     sources=[f"annotation {a[0]}" for a in annotations])


def _xyxy(bbox) -> np.ndarray:
    if isinstance(bbox, list) and len(bbox) == 4 and all(isinstance(v, (int, float)) for v in bbox):
        x, y, w, h = (float(v) for v in bbox)
        return np.array([x, y, x + w, y + h], np.float32)
    return np.full(4, np.nan, np.float32)  # missing or malformed: verify reports it


def load_split(root: Path, split: str, skip_bad: bool = False, **_) -> InstanceSplit:
    root = Path(root)
    split, json_path = resolve_split(root, split)
    data = read_json(json_path)
    classes, category_ids = read_categories(json_path, data["categories"])
    category_index = {c: i for i, c in enumerate(category_ids)}
    images = read_images(json_path, data["images"])
    folder = image_folder(root, split, json_path)
    per_image: dict[int, list] = {image_id: [] for image_id in images}
    bad_images: set[int] = set()
    skipped: list = []
    for i, ann in enumerate(data["annotations"]):
        ann_id = ann.get("id", f"#{i}") if isinstance(ann, dict) else f"#{i}"
        problem = annotation_problem(ann, images, category_index) if isinstance(ann, dict) else "not a JSON object"
        if problem:
            image = images.get(_key(ann.get("image_id"))) if isinstance(ann, dict) else None
            where = f" (image {image['file_name']})" if image else ""
            keep_going(skip_bad, skipped, json_path, f"annotation {ann_id}{where}: {problem}")
            if image:
                bad_images.add(ann["image_id"])
            continue
        per_image[ann["image_id"]].append(ann)
    items = []
    for image_id, image in sorted(images.items(), key=lambda kv: kv[1]["file_name"]):
        if image_id in bad_images:
            continue
        anns = per_image[image_id]
        packed = tuple((a.get("id", f"#{j}"), a["segmentation"], category_index[a["category_id"]], a.get("iscrowd", 0))
                       for j, a in enumerate(anns))
        load = partial(load_image_annotations, json_path, folder / image["file_name"], image["file_name"],
                       image["height"], image["width"], packed)
        boxes = np.stack([_xyxy(a.get("bbox")) for a in anns]) if anns else np.zeros((0, 4), np.float32)
        items.append(InstanceItem(folder / image["file_name"], image["file_name"], load, image_id=image_id,
                                  annotation_file=json_path, boxes_given=boxes))
    return InstanceSplit(split, root, classes, items, skipped, category_ids=category_ids, format="coco")
