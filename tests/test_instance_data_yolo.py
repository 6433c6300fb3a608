"""The Ultralytics YOLO segmentation layout: data.yaml, images/<split>/, labels/<split>/*.txt."""

from __future__ import annotations

import numpy as np
import pytest

from seglab.data.instance import open_instance_split
from seglab.data.instance.yolo import label_path, splits
from seglab.data.io import DataError
from test_instance_data_layouts import save_rgb, write_yolo


def test_polygons_become_the_drawn_masks_and_background_images_have_none(tmp_path):
    drawn = write_yolo(tmp_path)
    assert splits(tmp_path) == ["train", "val"]
    for split_name in ("train", "val"):
        split = open_instance_split(tmp_path, split_name)
        assert split.format == "yolo" and split.classes == ["person", "car"]
        assert sorted(item.name for item in split.items) == sorted(drawn[split_name])
        for item in split.items:
            instances = item.load()
            expected = drawn[split_name][item.name]
            assert [int(c) for c in instances.labels] == [c for c, _ in expected]
            for got, (_, want) in zip(instances.masks, expected):
                np.testing.assert_array_equal(got, want)
            assert len(instances) == len(expected)
    assert open_instance_split(tmp_path, "train").items[1].load().sources == ["line 1", "line 2"]


def test_names_as_a_list_split_as_a_txt_list_and_the_labels_rule(tmp_path):
    write_yolo(tmp_path, splits=("train",))
    (tmp_path / "train.txt").write_text("images/train/train_1.png\nimages/train/train_2.png\n")
    (tmp_path / "data.yaml").write_text("train: train.txt\nnames: [person, car]\n")
    split = open_instance_split(tmp_path, "train")
    assert [item.name for item in split.items] == ["train_1", "train_2"]
    assert label_path(tmp_path / "a" / "images" / "x" / "images" / "b.jpg") == tmp_path / "a" / "images" / "x" / "labels" / "b.txt"


@pytest.mark.parametrize("line, message", [
    ("0 0.5 0.5 0.2 0.2", r"line 1: 5 values \(class x y w h\) is a detection box; instance segmentation needs a polygon"),
    ("0 0.1 0.1 0.5 0.1 0.5", r"line 1: polygon has an odd number of coordinates \(5\)"),
    ("1 0.1 0.1", r"line 1: polygon has 1 point\(s\); at least 3"),
    ("2 0.1 0.1 0.5 0.1 0.5 0.5", r"line 1: class 2 is not a class index of data.yaml names \(0-1\)"),
    ("0 0.1 0.1 1.5 0.1 0.5 0.5", r"line 1: coordinate outside 0-1"),
    ("0 0.1 zero 0.5 0.1 0.5 0.5", r"line 1: not numbers"),
])
def test_bad_label_lines_name_the_file_and_line(tmp_path, line, message):
    write_yolo(tmp_path)
    label = tmp_path / "labels" / "train" / "train_0.txt"
    label.write_text(line + "\n")
    item = next(i for i in open_instance_split(tmp_path, "train").items if i.name == "train_0")
    with pytest.raises(DataError, match=message) as error:
        item.load()
    assert str(error.value).startswith(f"{label}: ")


@pytest.mark.parametrize("yaml_text, message", [
    ("train: images/train\nnames: {0: a, 2: b}\n", r"\"names\" keys must be the class indices 0..1"),
    ("train: images/train\nnc: 3\nnames: [a, b]\n", r"\"nc\" is 3 but \"names\" lists 2 classes"),
    ("train: images/nowhere\nnames: [a, b]\n", r"split folder .*images/nowhere does not exist"),
    ("train: [images/train\nnames: [a]\n", r"not valid YAML"),
])
def test_bad_data_yaml_names_the_file(tmp_path, yaml_text, message):
    write_yolo(tmp_path)
    (tmp_path / "data.yaml").write_text(yaml_text)
    with pytest.raises(DataError, match=message) as error:
        open_instance_split(tmp_path, "train", fmt="yolo")
    assert str(error.value).startswith(f"{tmp_path / 'data.yaml'}: ")


def test_missing_split_and_image_outside_an_images_folder(tmp_path):
    write_yolo(tmp_path, splits=("train",))
    with pytest.raises(DataError, match=r"no split 'test' \(splits given: train\)"):
        open_instance_split(tmp_path, "test")
    save_rgb(tmp_path / "loose" / "x.png")
    (tmp_path / "data.yaml").write_text("train: loose\nnames: [a, b]\n")
    with pytest.raises(DataError, match=r"x.png: image is not inside an images/ folder"):
        open_instance_split(tmp_path, "train")
