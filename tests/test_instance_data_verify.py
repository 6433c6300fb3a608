"""verify_split: counts per split and every finding as "file: annotation (image): reason"."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

from seglab.data.instance import open_instance_split, verify_split
from seglab.data.instance.verify import SEVERITY
from test_instance_data_layouts import coco_scene, rect, rect_polygon, write_coco, write_dsb, write_penn_fudan, write_yolo


def test_a_clean_dataset_is_counted_and_has_no_problems(tmp_path):
    drawn = write_penn_fudan(tmp_path, n=6)
    report = verify_split(open_instance_split(tmp_path, "all"))
    total = sum(len(masks) for masks in drawn.values())
    areas = [int(m.sum()) for masks in drawn.values() for m in masks]
    assert (report.images, report.instances, report.per_class[0]) == (6, total, total)
    assert report.problems == [] and report.warnings == []
    lines = report.lines()
    assert lines[0].startswith(f"split all (penn_fudan): 6 images, 6 ok, {total} instances")
    assert f"  instance area (px): min {min(areas)}, median {int(np.median(areas))}, max {max(areas)}" in lines
    assert f"  instances per class: person {total}" in lines


def test_coco_findings_name_the_file_the_annotation_and_the_image(tmp_path):
    scene = coco_scene()
    scene["b.png"] += [
        (202, 3, [[5, 5, 5, 5, 5, 5]], 0, np.zeros((40, 48), bool)),  # three points on one spot: empty
        (203, 3, [rect_polygon(30, 2, 32, 3)], 0, rect(30, 2, 32, 3)),  # 2 pixels: tiny
        (204, 7, [rect_polygon(3, 3, 8, 8)], 0, rect(3, 3, 8, 8)),  # overlaps annotation 201
    ]
    path = write_coco(tmp_path, scene=scene)
    data = json.loads(path.read_text())
    next(a for a in data["annotations"] if a["id"] == 101)["bbox"] = [40, 30, 20, 5]
    data["annotations"].append({"id": 301, "image_id": 10, "category_id": 99, "iscrowd": 0,
                                "segmentation": [rect_polygon(1, 1, 4, 4)]})
    path.write_text(json.dumps(data))
    report = verify_split(open_instance_split(tmp_path, "val2017", skip_bad=True))
    where = f"{path}: "
    assert report.problems == [
        where + "annotation 301 (image a.png): unknown category id 99 (categories: [3, 7, 12])",
        where + "annotation 202 (image b.png): empty mask (no pixel set)",
        where + "annotation 203 (image b.png): tiny mask (2 px, under 4)",
    ]
    assert report.warnings == [
        where + "annotation 201 (image b.png): overlaps annotation 204 by 4 px",
        where + "image empty.png has no objects",
    ]
    assert report.images == 2 and report.without_objects == 1  # a.png is left out with its bad annotation
    path.write_text(json.dumps({**data, "annotations": [a for a in data["annotations"] if a["id"] != 301]}))
    report = verify_split(open_instance_split(tmp_path, "val2017"))
    assert (where + "annotation 101 (image a.png): bbox [40, 30, 20, 5] (x, y, w, h) reaches outside the "
            "48x40 image") in report.problems
    assert report.crowd == 1 and report.instances == sum(len(anns) for anns in scene.values())


def test_load_errors_and_overlapping_object_masks(tmp_path):
    write_yolo(tmp_path / "yolo")
    label = tmp_path / "yolo" / "labels" / "val" / "val_1.txt"
    label.write_text("0 0.5 0.5 0.1 0.1\n")
    report = verify_split(open_instance_split(tmp_path / "yolo", "val"))
    assert len(report.problems) == 1 and report.problems[0].startswith(f"{label}: line 1: 5 values")
    write_dsb(tmp_path / "dsb", n=2)
    masks = tmp_path / "dsb" / "stage1_train" / "01abc1" / "masks"
    Image.fromarray(rect(5, 6, 10, 8).astype(np.uint8) * 255).save(masks / "m9.png")
    report = verify_split(open_instance_split(tmp_path / "dsb", "all"))
    assert report.warnings == [f"{masks}: mask m0.png (image 01abc1): overlaps mask m9.png by 8 px"]


def test_every_finding_kind_has_a_severity():
    assert set(SEVERITY.values()) == {"problem", "warning"}
    assert {"load", "listing", "empty", "bbox", "tiny", "overlap", "no_objects"} == set(SEVERITY)
