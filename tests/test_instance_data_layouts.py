"""Small instance datasets written into tmp_path in each released layout (shared by the
test_instance_data_* files), and the format detection over them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from seglab.data.instance import INSTANCE_FORMATS, detect_instance_format
from seglab.data.io import DataError

WIDTH, HEIGHT = 48, 40  # powers-of-two-friendly, so normalised YOLO coordinates map back exactly


def rect(x0, y0, x1, y1, width=WIDTH, height=HEIGHT) -> np.ndarray:
    """bool [H, W] with columns x0..x1-1 and rows y0..y1-1 set (pixel edges, as polygons are read)."""
    mask = np.zeros((height, width), bool)
    mask[y0:y1, x0:x1] = True
    return mask


def rect_polygon(x0, y0, x1, y1) -> list[float]:
    return [x0, y0, x1, y0, x1, y1, x0, y1]


def l_shape() -> tuple[list[float], np.ndarray]:
    """A non-convex polygon and the pixels it covers."""
    polygon = [20, 4, 30, 4, 30, 8, 24, 8, 24, 14, 20, 14]
    return polygon, rect(20, 4, 30, 8) | rect(20, 8, 24, 14)


def disc(cx, cy, r, width=WIDTH, height=HEIGHT) -> np.ndarray:
    yy, xx = np.mgrid[:height, :width]
    return (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r


def save_rgb(path: Path, width=WIDTH, height=HEIGHT, seed=0, mode="RGB") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    image = Image.fromarray(pixels, "RGB")
    (image.convert("RGBA") if mode == "RGBA" else image).save(path)
    return path


def save_ids(path: Path, masks: list[np.ndarray], ids: list[int] | None = None, mode="L") -> Path:
    """An instance-id PNG: mask k painted with ids[k] (1, 2, ... by default)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ids = ids or list(range(1, len(masks) + 1))
    values = np.zeros(masks[0].shape if masks else (HEIGHT, WIDTH), np.int32)
    for mask, value in zip(masks, ids):
        values[mask] = value
    if mode == "I;16":
        Image.fromarray(values.astype(np.uint16)).save(path)
    elif mode == "P":
        image = Image.fromarray(values.astype(np.uint8), "P")
        image.putpalette([v for i in range(256) for v in (i * 40 % 256, i * 90 % 256, i * 150 % 256)])
        image.save(path)
    else:
        Image.fromarray(values.astype(np.uint8), "L").save(path)
    return path


# ---- COCO -------------------------------------------------------------------------------------------

def uncompressed_rle(mask: np.ndarray) -> list[int]:
    """COCO's uncompressed RLE: alternating run lengths of 0s and 1s in column-major order, 0s first."""
    flat = mask.flatten(order="F").astype(np.int8)
    edges = np.concatenate([[0], np.flatnonzero(np.diff(flat)) + 1, [flat.size]])
    counts = np.diff(edges).tolist()
    return [0] + counts if flat[0] else counts


def coco_scene():
    """(annotations spec, expected masks) for two images; category ids 7, 3, 12 (unsorted, with gaps)."""
    from pycocotools import mask as coco_mask

    polygon, l_pixels = l_shape()
    round_mask = disc(36, 28, 6)
    rle = coco_mask.encode(np.asfortranarray(round_mask.astype(np.uint8)))
    rle["counts"] = rle["counts"].decode("ascii")
    crowd = rect(0, 30, 16, 40)
    uncompressed = {"size": [HEIGHT, WIDTH], "counts": uncompressed_rle(crowd)}
    annotations = {
        "a.png": [
            (101, 3, [rect_polygon(2, 3, 12, 9)], 0, rect(2, 3, 12, 9)),
            (102, 7, [polygon], 0, l_pixels),
            (103, 7, rle, 0, round_mask),
            (104, 3, uncompressed, 1, crowd),
        ],
        "b.png": [
            (201, 12, [rect_polygon(1, 1, 5, 5), rect_polygon(40, 30, 46, 38)], 0, rect(1, 1, 5, 5) | rect(40, 30, 46, 38)),
        ],
        "empty.png": [],
    }
    return annotations


def write_coco(root: Path, split: str = "val2017", scene=None, layout: str = "coco") -> Path:
    """COCO's layout (annotations/instances_<split>.json + <split>/) or an export (<split>/_annotations.coco.json)."""
    scene = scene if scene is not None else coco_scene()
    images_dir = root / split
    data = {"images": [], "annotations": [],
            "categories": [{"id": 7, "name": "dog"}, {"id": 3, "name": "cat"}, {"id": 12, "name": "bird"}]}
    for image_id, (name, anns) in enumerate(scene.items(), start=1):
        save_rgb(images_dir / name, seed=image_id)
        data["images"].append({"id": image_id * 10, "file_name": name, "width": WIDTH, "height": HEIGHT})
        for ann_id, category, segmentation, iscrowd, mask in anns:
            ys, xs = np.nonzero(mask)
            bbox = ([int(xs.min()), int(ys.min()), int(xs.max() + 1 - xs.min()), int(ys.max() + 1 - ys.min())]
                    if mask.any() else [0, 0, 0, 0])
            data["annotations"].append({"id": ann_id, "image_id": image_id * 10, "category_id": category,
                                        "segmentation": segmentation, "iscrowd": iscrowd, "bbox": bbox,
                                        "area": int(mask.sum())})
    path = (root / "annotations" / f"instances_{split}.json" if layout == "coco"
            else images_dir / "_annotations.coco.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


# ---- Penn-Fudan, generic id folder, DSB2018, YOLO --------------------------------------------------

def scene_masks(k: int) -> list[np.ndarray]:
    """k non-overlapping rectangles, different for each image."""
    return [rect(2 + 10 * j, 2 + (k % 3) * 3, 9 + 10 * j, 12 + (k % 3) * 3 + j) for j in range(1 + k % 3)]


def write_penn_fudan(root: Path, n: int = 5) -> dict[str, list[np.ndarray]]:
    drawn = {}
    for k in range(n):
        name = f"FudanPed{k + 1:05d}"
        save_rgb(root / "PNGImages" / f"{name}.png", seed=k)
        drawn[name] = scene_masks(k)
        save_ids(root / "PedMasks" / f"{name}_mask.png", drawn[name], mode="P")
    return drawn


def write_instance_folder(root: Path, n: int = 4, meta: dict | None = None, mode="L") -> dict[str, list[np.ndarray]]:
    drawn = {}
    for k in range(n):
        name = f"img_{k}"
        save_rgb(root / "images" / f"{name}.png", seed=k)
        drawn[name] = scene_masks(k)
        save_ids(root / "masks" / f"{name}.png", drawn[name], mode=mode)
    if meta is not None:
        (root / "dataset.json").write_text(json.dumps(meta))
    return drawn


def write_dsb(root: Path, n: int = 5) -> dict[str, list[np.ndarray]]:
    drawn = {}
    for k in range(n):
        sample = root / "stage1_train" / f"{k:02d}abc{k}"
        save_rgb(sample / "images" / f"{sample.name}.png", seed=k, mode="RGBA")
        drawn[sample.name] = scene_masks(k)
        (sample / "masks").mkdir(parents=True)
        for j, mask in enumerate(drawn[sample.name]):
            Image.fromarray(mask.astype(np.uint8) * 255, "L").save(sample / "masks" / f"m{j}.png")
    return drawn


def yolo_line(cls: int, polygon: list[float], width=WIDTH, height=HEIGHT) -> str:
    coords = [v / (width if i % 2 == 0 else height) for i, v in enumerate(polygon)]
    return " ".join([str(cls)] + [f"{v:.6f}" for v in coords])


def write_yolo(root: Path, names=("person", "car"), splits=("train", "val")) -> dict:
    """Per split, per stem: [(class, mask)]; one background image without a label file."""
    polygon, l_pixels = l_shape()
    drawn = {}
    for s, split in enumerate(splits):
        drawn[split] = {}
        for k in range(3):
            stem = f"{split}_{k}"
            save_rgb(root / "images" / split / f"{stem}.png", seed=10 * s + k)
            objects = [(k % 2, rect_polygon(2, 3 + k, 12, 9 + k), rect(2, 3 + k, 12, 9 + k)),
                       (1, polygon, l_pixels)][:1 + k % 2]
            drawn[split][stem] = [(c, m) for c, _, m in objects]
            label = root / "labels" / split / f"{stem}.txt"
            label.parent.mkdir(parents=True, exist_ok=True)
            label.write_text("".join(yolo_line(c, p) + "\n" for c, p, _ in objects))
        save_rgb(root / "images" / split / f"{split}_background.png", seed=99)
        drawn[split][f"{split}_background"] = []
    lines = ["path: ../datasets/not-here", *[f"{split}: images/{split}" for split in splits],
             "names:", *[f"  {i}: {n}" for i, n in enumerate(names)]]
    (root / "data.yaml").write_text("\n".join(lines) + "\n")
    return drawn


# ---- detection -----------------------------------------------------------------------------------

@pytest.mark.parametrize("writer, expected", [
    (write_coco, "coco"), (write_yolo, "yolo"), (write_penn_fudan, "penn_fudan"), (write_dsb, "per_object_png"),
    (write_instance_folder, "instance_folder"),
])
def test_each_layout_is_detected_as_its_format(tmp_path, writer, expected):
    writer(tmp_path)
    assert detect_instance_format(tmp_path) == expected
    others = [name for name, fmt in INSTANCE_FORMATS.items() if name != expected and fmt.matches(tmp_path)]
    assert expected == "instance_folder" or not others, others


def test_an_unknown_layout_names_the_layouts_it_knows(tmp_path):
    (tmp_path / "stuff").mkdir()
    with pytest.raises(DataError, match="PNGImages/ \\+ PedMasks/"):
        detect_instance_format(tmp_path)
    with pytest.raises(DataError, match="does not exist"):
        detect_instance_format(tmp_path / "missing")
