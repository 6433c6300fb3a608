"""Save an annotated image where `seglab train` reads it back (docs/instance_data.md):

    out/images/<stem>.<ext>   the image file as uploaded
    out/masks/<stem>.png      instance ids (0 background, 1..K the objects; 16-bit past 255 objects)
    out/dataset.json          {"task": "instance", "classes": ["object"]} (the instance-id folder layout)
    out/instances.json        the same objects as COCO instances (RLE segmentations; file_name relative
                              to out/images/), for COCO tools; seglab reads it as COCO when it sits at
                              annotations/instances_<split>.json beside images/

`seglab train data=out task=instance` trains on the folder (a seeded val split, or splits/*.txt).
Saving an image again replaces its files and its COCO entries. One lock serialises writers.
"""

from __future__ import annotations

import json
import os
import re
import threading
from pathlib import Path

import numpy as np

from seglab.serve.masks import bbox, instance_ids, png_bytes, rle
from seglab.serve.uploads import DecodedImage

CLASSES = ["object"]
COCO_FILE = "instances.json"
_WRITING = threading.Lock()


def safe_stem(name: str) -> str:
    """A file stem that is safe on every file system: 'my photo (1).JPG' -> 'my_photo_1'."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(name).stem).strip("._")
    return stem or "image"


def write_atomic(path: Path, data: bytes) -> None:
    temp = path.with_name(f".{path.name}.tmp")
    temp.write_bytes(data)
    os.replace(temp, path)


def id_png(ids: np.ndarray) -> bytes:
    return png_bytes(ids.astype(np.uint8 if ids.max(initial=0) <= 255 else np.uint16))


def read_coco(path: Path) -> dict:
    if not path.is_file():
        return {"images": [], "annotations": [], "categories": [{"id": i + 1, "name": n} for i, n in enumerate(CLASSES)]}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e}); move it away to start a new one") from None


def coco_entries(coco: dict, file_name: str, ids: np.ndarray) -> dict:
    """`coco` with the image `file_name` (re)placed by the objects of `ids`."""
    old = {img["id"] for img in coco["images"] if img["file_name"] == file_name}
    images = [img for img in coco["images"] if img["id"] not in old]
    annotations = [a for a in coco["annotations"] if a["image_id"] not in old]
    image_id = max([img["id"] for img in images], default=0) + 1
    next_ann = max([a["id"] for a in annotations], default=0) + 1
    height, width = ids.shape
    images.append({"id": image_id, "file_name": file_name, "height": height, "width": width})
    for k in range(1, int(ids.max(initial=0)) + 1):
        mask = ids == k
        annotations.append({"id": next_ann, "image_id": image_id, "category_id": 1, "segmentation": rle(mask),
                            "area": int(mask.sum()), "bbox": bbox(mask), "iscrowd": 0})
        next_ann += 1
    return {**coco, "images": images, "annotations": annotations}


def save_annotation(out: Path, name: str, image: DecodedImage, masks: list[np.ndarray]) -> dict:
    """Write the image, its id PNG, dataset.json (when absent) and its COCO entries; returns what was written."""
    out = Path(out)
    stem = safe_stem(name)
    ids = instance_ids(masks, image.rgb.shape[:2])
    with _WRITING:
        (out / "images").mkdir(parents=True, exist_ok=True)
        (out / "masks").mkdir(exist_ok=True)
        for old in (out / "images").glob(f"{stem}.*"):  # the same stem with another suffix would pair twice
            if old.suffix != image.suffix:
                old.unlink()
        image_path, mask_path = out / "images" / f"{stem}{image.suffix}", out / "masks" / f"{stem}.png"
        write_atomic(image_path, image.data)
        write_atomic(mask_path, id_png(ids))
        meta = out / "dataset.json"
        if not meta.is_file():
            write_atomic(meta, json.dumps({"task": "instance", "classes": CLASSES}, indent=1).encode())
        coco_path = out / COCO_FILE
        coco = coco_entries(read_coco(coco_path), image_path.name, ids)
        write_atomic(coco_path, json.dumps(coco).encode())
    return {"image": str(image_path), "mask": str(mask_path), "coco": str(coco_path),
            "objects": int(ids.max(initial=0)), "folder": str(out)}
