"""The instance layouts read by the semantic task (task=semantic): background + the instance classes, crowd
ignored, the instance format's splits; checked against the drawn masks, the instance and the panoptic views."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from seglab.cli import main
from seglab.data import FORMATS, OWN_FORMATS, SegmentationDataset, detect_format, load_mask
from seglab.data.instance import open_instance_split
from seglab.data.io import DataError
from seglab.data.panoptic import open_panoptic_split
from seglab.tasks import TASKS, resolve_task
from test_instance_data_layouts import (
    HEIGHT,
    WIDTH,
    rect,
    rect_polygon,
    save_rgb,
    write_coco,
    write_dsb,
    write_instance_folder,
    write_penn_fudan,
    write_yolo,
)

DSB = Path(__file__).resolve().parents[2] / "shared" / "data" / "dsb2018"
IGNORE = 255


def open_semantic(root: Path, split: str, fmt: str = "auto"):
    name = detect_format(root) if fmt == "auto" else fmt
    return FORMATS[name].load_split(root, split, seed=0, val_fraction=0.2, skip_bad=False)


def painted(masks: list[np.ndarray], classes: list[int], crowd: list[bool] | None = None) -> np.ndarray:
    """The expected semantic map, written out: instance class c -> c + 1, first instance keeps, crowd -> ignore."""
    crowd = crowd or [False] * len(masks)
    expected = np.zeros((HEIGHT, WIDTH), np.uint8)
    owned = np.zeros((HEIGHT, WIDTH), bool)
    for mask, c, is_crowd in zip(masks, classes, crowd):
        if not is_crowd:
            expected[mask & ~owned] = c + 1
            owned |= mask
    for mask, is_crowd in zip(masks, crowd):
        if is_crowd:
            expected[mask & ~owned] = IGNORE
    return expected


def write_id_folder(root: Path):
    return write_instance_folder(root, n=5, meta={"task": "instance"})


# layout writer, its semantic format, the split to read, per image: drawn masks -> (masks, classes)
LAYOUTS = [
    (write_dsb, "per_object_png", "train", lambda drawn: (drawn, [0] * len(drawn))),
    (write_penn_fudan, "penn_fudan", "train", lambda drawn: (drawn, [0] * len(drawn))),
    (write_id_folder, "instance_folder", "val", lambda drawn: (drawn, [0] * len(drawn))),
    (lambda root: write_yolo(root)["val"], "yolo", "val",
     lambda drawn: ([m for _, m in drawn], [c for c, _ in drawn])),
]


@pytest.mark.parametrize("writer, fmt, split, objects", LAYOUTS, ids=[layout[1] for layout in LAYOUTS])
def test_the_semantic_map_is_the_union_of_the_instances_with_their_class(tmp_path, writer, fmt, split, objects):
    root = tmp_path / "data"
    drawn = writer(root)
    assert detect_format(root) == fmt
    spec = open_semantic(root, split)
    instances = open_instance_split(root, split)
    assert spec.classes.names == ["background", *instances.classes]
    assert [image for image, _ in spec.pairs] == [item.image for item in instances.items]  # same split
    assert spec.notes and "background" in spec.notes[0]
    for index, (image, _) in enumerate(spec.pairs):
        stem = image.parent.parent.name if fmt == "per_object_png" else image.stem
        masks, classes = objects(drawn[stem])
        assert np.array_equal(load_mask(spec, index), painted(masks, classes)), image


def test_coco_classes_crowd_and_the_panoptic_view_agree(tmp_path):
    write_coco(tmp_path, split="val2017")  # categories 7 dog, 3 cat, 12 bird -> sorted by id: cat, dog, bird
    spec = open_semantic(tmp_path, "val")  # a prefix names the one split, as for the instance task
    assert detect_format(tmp_path) == "coco"
    assert spec.classes.names == ["background", "cat", "dog", "bird"] and spec.classes.ignore_index == IGNORE
    panoptic = open_panoptic_split(tmp_path, "val", fmt="coco")
    assert panoptic.classes == spec.classes.names  # the fusion matches classes by name
    for index, item in enumerate(panoptic.items):
        labels = load_mask(spec, index)
        truth = item.load()
        category = np.zeros_like(labels, dtype=np.int64)
        for segment in truth.segments:  # the panoptic view's painting, an independent implementation
            where = truth.segment_ids == segment["id"]
            category[where] = IGNORE if segment["iscrowd"] else segment["category_id"]
        assert np.array_equal(labels, category), item.name
    a_png = next(i for i, (image, _) in enumerate(spec.pairs) if image.name == "a.png")
    assert np.array_equal(load_mask(spec, a_png)[30:40, 0:16], np.full((10, 16), IGNORE))  # the crowd rectangle


def write_overlapping_coco(root: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    cat, dog, crowd = rect(2, 2, 20, 20), rect(10, 10, 30, 30), rect(0, 15, 40, 40)
    save_rgb(root / "train" / "x.png")
    anns = [(1, 3, rect_polygon(2, 2, 20, 20), 0), (2, 7, rect_polygon(10, 10, 30, 30), 0),
            (3, 3, rect_polygon(0, 15, 40, 40), 1)]
    data = {"images": [{"id": 1, "file_name": "x.png", "width": WIDTH, "height": HEIGHT}],
            "categories": [{"id": 3, "name": "cat"}, {"id": 7, "name": "dog"}],
            "annotations": [{"id": i, "image_id": 1, "category_id": c, "segmentation": [p], "iscrowd": z,
                             "bbox": [0, 0, 1, 1]} for i, c, p, z in anns]}
    (root / "annotations").mkdir(parents=True)
    (root / "annotations" / "instances_train.json").write_text(json.dumps(data))
    return cat, dog, crowd


def test_overlapping_instances_the_first_keeps_and_crowd_never_hides_an_instance(tmp_path):
    cat, dog, crowd = write_overlapping_coco(tmp_path)
    labels = load_mask(open_semantic(tmp_path, "train"), 0)
    assert np.array_equal(labels, painted([cat, dog, crowd], [0, 1, 0], [False, False, True]))
    assert labels[15, 15] == 1 and labels[25, 25] == 2 and labels[35, 5] == IGNORE and labels[0, 0] == 0
    sample = SegmentationDataset(open_semantic(tmp_path, "train"), 24).sample(0)[1]  # the semantic resize (nearest)
    expected = np.array(Image.fromarray(labels).resize((24, 24), Image.NEAREST))
    assert np.array_equal(sample.numpy(), expected)


def test_a_class_named_background_is_refused_as_by_the_panoptic_view(tmp_path):
    path = write_coco(tmp_path, split="val2017")
    data = json.loads(path.read_text())
    data["categories"][0]["name"] = "background"
    path.write_text(json.dumps(data))
    with pytest.raises(DataError, match="class named 'background'"):
        open_semantic(tmp_path, "val")


def test_the_layouts_keep_their_task_and_semantic_folders_their_reading(tmp_path):
    dsb, folder, ids = tmp_path / "dsb", tmp_path / "folder", tmp_path / "ids"
    write_dsb(dsb, n=3)
    write_id_folder(ids)
    save_rgb(folder / "images" / "a.png")
    (folder / "masks").mkdir()
    Image.fromarray((rect(0, 0, 10, 10) * 2).astype(np.uint8)).save(folder / "masks" / "a.png")  # class ids 0, 2
    assert resolve_task(TASKS, data_root=dsb).name == "instance"  # DSB2018 alone still names the instance task
    assert resolve_task(TASKS, task="semantic", data_root=dsb).name == "semantic"
    assert TASKS["semantic"].formats is OWN_FORMATS and "per_object_png" not in OWN_FORMATS
    assert detect_format(folder) == "folder" and detect_format(ids) == "instance_folder"
    assert open_semantic(folder, "all").classes.names == ["class_0", "class_1", "class_2"]  # class ids, as before


def test_verify_names_a_broken_mask_png(tmp_path, capsys):
    write_dsb(tmp_path, n=5)
    assert main(["verify", "task=semantic", f"data={tmp_path}"]) == 0
    out = capsys.readouterr().out
    assert "(per_object_png)" in out and "background, nucleus" in out and "OK" in out
    broken = sorted(tmp_path.glob("stage1_train/*/masks/m0.png"))[2]
    broken.write_bytes(b"not a png")
    assert main(["verify", "task=semantic", f"data={tmp_path}"]) == 1
    out = capsys.readouterr().out
    assert str(broken) in out and "FAILED" in out
    spec = next(s for s in (open_semantic(tmp_path, "train"), open_semantic(tmp_path, "val"))
                if any(image.parent.parent == broken.parent.parent for image, _ in s.pairs))
    index = next(i for i, (image, _) in enumerate(spec.pairs) if image.parent.parent == broken.parent.parent)
    with pytest.raises(DataError, match=str(broken)):
        load_mask(spec, index)


def test_train_val_and_predict_on_a_dsb_folder(tmp_path):
    root = tmp_path / "dsb"
    write_dsb(root, n=10)  # 8 train / 2 val: batch 4 -> 2 steps
    tiny = ["model=unet", "width=4", "depth=2", "imgsz=32", "precision=fp32", "workers=0", "verbose=false"]
    assert main(["train", "task=semantic", f"data={root}", *tiny, "epochs=1", "batch=4", "samples=1",
                 f"project={tmp_path}", "name=sem"]) == 0
    best = tmp_path / "sem" / "best.pt"
    ckpt = torch.load(best, weights_only=True)
    assert ckpt["task"] == "semantic" and ckpt["classes"]["names"] == ["background", "nucleus"]
    assert ckpt["preprocess"]["resize"] == "stretch" and ckpt["preprocess"]["size"] == [32, 32]
    assert main(["val", f"model={best}", f"out={tmp_path / 'val'}", "precision=fp32", "verbose=false"]) == 0
    result = json.loads((tmp_path / "val" / "val_val.json").read_text())
    assert result["images"] == 2 and "miou" in result
    source = min(root.glob("stage1_train/*/images/*.png"))
    assert main(["predict", f"model={best}", f"source={source}", f"out={tmp_path / 'pred'}", "precision=fp32",
                 "verbose=false"]) == 0
    predicted = np.asarray(Image.open(tmp_path / "pred" / f"{source.stem}.png"))
    assert predicted.shape == (HEIGHT, WIDTH) and set(np.unique(predicted)) <= {0, 1}


@pytest.mark.skipif(not DSB.is_dir(), reason="../shared/data/dsb2018 is not here")
def test_the_real_dsb2018_splits_and_classes_match_the_instance_and_panoptic_tasks():
    train, val = open_semantic(DSB, "train"), open_semantic(DSB, "val")
    assert (len(train.pairs), len(val.pairs)) == (240, 60)
    for split, spec in (("train", train), ("val", val)):
        instance = open_instance_split(DSB, split)
        assert [image for image, _ in spec.pairs] == [item.image for item in instance.items]
        assert spec.classes.names == ["background", *instance.classes] == ["background", "nucleus"]
        assert open_panoptic_split(DSB, split, fmt="per_object_png").classes == spec.classes.names
    item = open_instance_split(DSB, "val").items[0]
    union = item.load().masks.any(axis=0)
    assert np.array_equal(load_mask(val, 0), union.astype(np.uint8))
