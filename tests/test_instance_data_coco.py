"""COCO instances JSON: polygons, compressed and uncompressed RLE, iscrowd, category ids with gaps,
both layouts, and every bad-input message."""

from __future__ import annotations

import json

import numpy as np
import pytest

from seglab.data.instance import open_instance_split
from seglab.data.instance.coco import splits
from seglab.data.io import DataError
from test_instance_data_layouts import HEIGHT, WIDTH, coco_scene, rect_polygon, write_coco


def test_masks_labels_and_crowd_flags_match_what_was_drawn(tmp_path):
    scene = coco_scene()
    write_coco(tmp_path)
    split = open_instance_split(tmp_path, "val2017")
    assert split.format == "coco"
    assert split.classes == ["cat", "dog", "bird"]  # sorted by category id 3, 7, 12
    assert split.category_ids == [3, 7, 12]
    assert [item.name for item in split.items] == ["a.png", "b.png", "empty.png"]
    index_of = {3: 0, 7: 1, 12: 2}
    for item in split.items:
        expected = scene[item.name]
        instances = item.load()
        assert instances.size == (HEIGHT, WIDTH)
        assert len(instances) == len(expected)
        for i, (ann_id, category, _, iscrowd, mask) in enumerate(expected):
            np.testing.assert_array_equal(instances.masks[i], mask, err_msg=f"{item.name} annotation {ann_id}")
            assert instances.labels[i] == index_of[category]
            assert instances.iscrowd[i] == bool(iscrowd)
            assert instances.source(i) == f"annotation {ann_id}"
    first = split.items[0].load()
    np.testing.assert_array_equal(first.boxes[0], [2, 3, 12, 9])  # pixel edges, as the polygon's corners


def test_split_prefix_and_export_layout(tmp_path):
    write_coco(tmp_path / "release", "train2017")
    assert splits(tmp_path / "release") == ["train2017"]
    assert len(open_instance_split(tmp_path / "release", "train").items) == 3  # train -> train2017
    write_coco(tmp_path / "export", "valid", layout="export")
    split = open_instance_split(tmp_path / "export", "valid")
    assert split.items[0].image == tmp_path / "export" / "valid" / "a.png"
    with pytest.raises(DataError, match="no COCO annotation file for split 'test'.*valid"):
        open_instance_split(tmp_path / "export", "test")


def edit(tmp_path, change):
    path = write_coco(tmp_path)
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))
    return path


def ann(data, ann_id):
    return next(a for a in data["annotations"] if a["id"] == ann_id)


@pytest.mark.parametrize("change, message", [
    (lambda d: ann(d, 101).update(segmentation=[[1, 2, 3, 4]]), r"annotation 101 \(image a.png\): segmentation\[0\]: polygon has 2 point"),
    (lambda d: ann(d, 101).update(segmentation=[[1, 2, 3, 4, 5, 6, 7]]), r"annotation 101 .*odd number of coordinates \(7\)"),
    (lambda d: ann(d, 103)["segmentation"].update(size=[HEIGHT, WIDTH + 1]), r"annotation 103 .*RLE size 49x40 .* differs from its image's 48x40"),
    (lambda d: ann(d, 104)["segmentation"]["counts"].append(3), r"annotation 104 .*counts sum to 1923"),
    (lambda d: ann(d, 102).update(category_id=5), r"annotation 102 \(image a.png\): unknown category id 5 \(categories: \[3, 7, 12\]\)"),
    (lambda d: ann(d, 102).update(image_id=999), r"annotation 102: image_id 999 is not in \"images\""),
    (lambda d: ann(d, 102).pop("segmentation"), r"annotation 102 .*no \"segmentation\".*instances need masks"),
    (lambda d: ann(d, 102).update(segmentation=[]), r"annotation 102 .*empty \"segmentation\""),
    (lambda d: ann(d, 102).update(iscrowd=2), r"annotation 102 .*\"iscrowd\" must be 0 or 1"),
    (lambda d: d["categories"].append({"id": 3, "name": "again"}), r"category id 3 appears twice"),
    (lambda d: d["images"][0].update(width=0), r"images\[0\] needs .*positive integer"),
    (lambda d: d.pop("categories"), r"no list \['categories'\]"),
])
def test_bad_annotations_name_the_file_and_the_annotation(tmp_path, change, message):
    path = edit(tmp_path, change)
    with pytest.raises(DataError, match=message) as error:
        open_instance_split(tmp_path, "val2017")
    assert str(error.value).startswith(f"{path}: ")


def test_skip_bad_leaves_out_only_the_image_with_the_bad_annotation(tmp_path):
    path = edit(tmp_path, lambda d: ann(d, 201).update(category_id=99))
    split = open_instance_split(tmp_path, "val2017", skip_bad=True)
    assert [item.name for item in split.items] == ["a.png", "empty.png"]
    assert split.skipped == [(path, "annotation 201 (image b.png): unknown category id 99 (categories: [3, 7, 12])")]


def test_invalid_json_and_damaged_rle_and_wrong_image_size(tmp_path):
    path = write_coco(tmp_path)
    text = path.read_text()
    path.write_text(text[:-10])
    with pytest.raises(DataError, match=f"{path}: not valid JSON"):
        open_instance_split(tmp_path, "val2017")
    data = json.loads(text)
    ann(data, 103)["segmentation"]["counts"] = "\u00e9\u00e9"
    data["images"][1]["height"] = HEIGHT + 2  # b.png is really 48x40
    for a in data["annotations"]:
        if a["image_id"] == data["images"][1]["id"] and isinstance(a["segmentation"], list):
            a["segmentation"] = [rect_polygon(1, 1, 5, 5)]
    path.write_text(json.dumps(data))
    split = open_instance_split(tmp_path, "val2017")
    with pytest.raises(DataError, match=r"annotation 103 \(image a.png\): cannot decode the segmentation"):
        split.items[0].load()
    with pytest.raises(DataError, match=r"image b.png is 48x40 but the file gives width 48, height 42"):
        split.items[1].load()
