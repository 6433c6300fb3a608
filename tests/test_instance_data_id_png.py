"""Instance-id PNG folders: Penn-Fudan as released and the generic images/ + masks/ with dataset.json."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from seglab.data.instance import open_instance_split
from seglab.data.io import DataError
from test_instance_data_layouts import (HEIGHT, WIDTH, rect, save_ids, save_rgb, write_instance_folder,
                                        write_penn_fudan)


def assert_masks(instances, expected):
    assert len(instances) == len(expected)
    for got, want in zip(instances.masks, expected):
        np.testing.assert_array_equal(got, want)


def test_penn_fudan_masks_are_the_drawn_instances_in_id_order(tmp_path):
    drawn = write_penn_fudan(tmp_path / "PennFudanPed", n=5)
    for root in (tmp_path / "PennFudanPed", tmp_path):  # the folder itself or its parent
        split = open_instance_split(root, "all")
        assert split.format == "penn_fudan" and split.classes == ["person"]
        assert [item.name for item in split.items] == sorted(drawn)
    for item in split.items:
        instances = item.load()
        assert_masks(instances, drawn[item.name])
        assert (instances.labels == 0).all() and not instances.iscrowd.any()
        assert instances.sources == [f"instance id {i + 1}" for i in range(len(drawn[item.name]))]


def test_penn_fudan_seeded_split_is_disjoint_complete_and_repeatable(tmp_path):
    write_penn_fudan(tmp_path, n=10)
    names = lambda split, seed=0: [i.name for i in open_instance_split(tmp_path, split, seed=seed).items]
    train, val = names("train"), names("val")
    assert len(val) == 2 and len(train) == 8 and not set(train) & set(val)
    assert sorted(train + val) == names("all")
    assert names("val") == val
    assert any(names("val", seed) != val for seed in range(1, 6))


def test_split_lists_are_honoured_and_checked(tmp_path):
    write_penn_fudan(tmp_path, n=4)
    (tmp_path / "splits").mkdir()
    (tmp_path / "splits" / "train.txt").write_text("FudanPed00003\nFudanPed00001\n")
    assert [i.name for i in open_instance_split(tmp_path, "train").items] == ["FudanPed00003", "FudanPed00001"]
    with pytest.raises(DataError, match=r"splits/val.txt: no such split list"):
        open_instance_split(tmp_path, "val")
    (tmp_path / "splits" / "val.txt").write_text("FudanPed00002\nNoSuchPed\n")
    with pytest.raises(DataError, match=r"val.txt: lists 'NoSuchPed', which is not an image"):
        open_instance_split(tmp_path, "val")
    assert len(open_instance_split(tmp_path, "val", skip_bad=True).items) == 1


def test_penn_fudan_image_without_mask_and_mask_of_wrong_size(tmp_path):
    write_penn_fudan(tmp_path, n=3)
    save_rgb(tmp_path / "PNGImages" / "PennPed00009.png")
    with pytest.raises(DataError, match=r"PennPed00009.png: no mask PennPed00009_mask.png in .*PedMasks"):
        open_instance_split(tmp_path, "all")
    (tmp_path / "PNGImages" / "PennPed00009.png").unlink()
    save_ids(tmp_path / "PedMasks" / "FudanPed00002_mask.png", [rect(1, 1, 4, 4, width=WIDTH + 2)])
    split = open_instance_split(tmp_path, "all")
    with pytest.raises(DataError, match=r"FudanPed00002_mask.png: mask is 50x40 but its image FudanPed00002.png is 48x40"):
        split.items[1].load()


def test_generic_folder_defaults_to_one_class_and_reads_16_bit_ids(tmp_path):
    drawn = write_instance_folder(tmp_path, n=3, mode="I;16")
    save_ids(tmp_path / "masks" / "img_2.png", drawn["img_2"], ids=[300, 7, 1000], mode="I;16")
    split = open_instance_split(tmp_path, "all")
    assert split.format == "instance_folder" and split.classes == ["object"]
    for item in split.items:
        instances = item.load()
        order = np.argsort([300, 7, 1000]) if item.name == "img_2" else range(len(drawn[item.name]))
        assert_masks(instances, [drawn[item.name][i] for i in order])  # increasing id order
    assert split.items[2].load().sources == ["instance id 7", "instance id 300", "instance id 1000"]


def test_generic_folder_gives_each_instance_its_class_from_dataset_json(tmp_path):
    meta = {"task": "instance", "classes": ["cat", "dog"],
            "instance_classes": {"img_0": {"1": "dog"}, "img_1": {"1": "cat", "2": 1}, "img_2": {"1": 0, "2": 0, "3": "dog"}}}
    write_instance_folder(tmp_path, n=3, meta=meta)
    split = open_instance_split(tmp_path, "all")
    assert split.classes == ["cat", "dog"]
    assert [item.load().labels.tolist() for item in split.items] == [[1], [0, 1], [0, 0, 1]]


@pytest.mark.parametrize("meta, message", [
    ({"task": "instance", "classes": ["cat", "dog"]}, r"2 classes but no \"instance_classes\""),
    ({"task": "instance", "classes": ["cat", "dog"], "instance_classes": {"img_9": {}}}, r"names image 'img_9', which has no image/mask pair. Did you mean 'img_\d'"),
    ({"task": "instance", "classes": ["cat", "dog"], "instance_classes": {"img_0": {"1": "cow"}}}, r"\[\"img_0\"\]\[\"1\"\] is 'cow', which is not a class"),
    ({"task": "instance", "classes": ["cat", "dog"], "instance_classes": {"img_0": {"0": "cat"}}}, r"key '0' is not an instance id"),
    ({"task": "instance", "instance_clases": {}}, r"unknown key\(s\) \['instance_clases'\].*Did you mean 'instance_classes'"),
    ({"task": "semantic"}, r"\"task\" is 'semantic'"),
    ({"classes": []}, r"\"classes\" must be a non-empty list"),
])
def test_bad_dataset_json_names_the_key(tmp_path, meta, message):
    write_instance_folder(tmp_path, n=2, meta=meta)
    with pytest.raises(DataError, match=message) as error:
        open_instance_split(tmp_path, "all")
    assert str(error.value).startswith(f"{tmp_path / 'dataset.json'}: ")


def test_unlisted_instance_and_colour_mask_are_errors_naming_the_mask(tmp_path):
    meta = {"task": "instance", "classes": ["cat", "dog"], "instance_classes": {"img_1": {"1": "cat"}}}
    write_instance_folder(tmp_path, n=2, meta=meta)
    split = open_instance_split(tmp_path, "all")
    with pytest.raises(DataError, match=r"img_1.png: instance id\(s\) \[2\] have no class.*under \"img_1\""):
        split.items[1].load()
    Image.new("RGB", (WIDTH, HEIGHT)).save(tmp_path / "masks" / "img_0.png")
    with pytest.raises(DataError, match=r"img_0.png: instance-id mask has mode RGB"):
        split.items[0].load()
    (tmp_path / "dataset.json").write_text("{not json")
    with pytest.raises(DataError, match=r"dataset.json: not valid JSON"):
        open_instance_split(tmp_path, "all")
