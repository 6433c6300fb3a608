"""Folder datasets: images/ + masks/ paired by stem, dataset.json, split lists or a seeded random split."""
import json

import numpy as np
import pytest
import torch

from conftest import write_image, write_mask
from seglab.config import make_config
from seglab.data import SegmentationDataset, load_mask, load_pair, open_split
from seglab.data.folder import load_split
from seglab.data.io import DataError

STEMS = [f"img_{i:02d}" for i in range(10)]


def test_pairs_by_stem_whatever_the_suffix(make_folder):
    root = make_folder(["b", "a", "c"], image_suffix=".jpg")
    spec = load_split(root, "all")
    assert [(i.name, m.name) for i, m in spec.pairs] == [("a.jpg", "a.png"), ("b.jpg", "b.png"), ("c.jpg", "c.png")]


def test_files_that_are_not_images_are_ignored(make_folder):
    root = make_folder(["a", "b"])
    (root / "images" / "notes.txt").write_text("hello")
    (root / "masks" / "README.md").write_text("hello")
    (root / "images" / "sub").mkdir()
    assert len(load_split(root, "all").pairs) == 2


def test_classes_read_off_the_masks_without_dataset_json(make_folder):
    root = make_folder(["a", "b"], num_classes=4, ignore=255)
    classes = load_split(root, "all").classes
    assert classes.names == ["class_0", "class_1", "class_2", "class_3"]
    assert classes.ignore_index == 255 and len(set(classes.colors)) == 4


def test_dataset_json_names_colors_ignore(make_folder):
    meta = {"name": "toy", "classes": ["sky", "road", "car"], "colors": [[0, 0, 255], [90, 90, 90], [255, 0, 0]],
            "ignore_index": 7}
    root = make_folder(["a", "b"], num_classes=3, meta=meta, ignore=7)
    spec = load_split(root, "all")
    assert spec.classes.names == ["sky", "road", "car"]
    assert spec.classes.colors == [(0, 0, 255), (90, 90, 90), (255, 0, 0)]
    assert spec.classes.ignore_index == 7
    mask = load_mask(spec, 0)
    assert mask[-1, -1] == 7 and set(np.unique(mask)) <= {0, 1, 2, 7}


def test_label_outside_the_classes_names_the_mask(make_folder):
    root = make_folder(["a", "b"], num_classes=3, meta={"classes": ["x", "y"]})
    spec = load_split(root, "all")
    with pytest.raises(DataError, match=r"masks/a\.png: label value\(s\) \[2\] not in the dataset's classes"):
        load_mask(spec, 0)


@pytest.mark.parametrize("text, message", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "must hold a JSON object"),
    ('{"classes": ["a", "b", "c"], "colours": []}', r"unknown key\(s\) \['colours'\]"),
    ('{"classes": ["a", "b", "c"], "colors": [[0, 0, 0]]}', "3 classes but 1 colors"),
    ('{"classes": "abc"}', "classes"),
    ('{"classes": []}', "classes"),
    ('{"classes": ["a", "b", "c"], "colors": [[0, 0, 0], [1, 2], [3, 4, 5]]}', "colors"),
    ('{"classes": ["a", "b", "c"], "colors": [[0, 0, 0], [1, 2, 300], [3, 4, 5]]}', "colors"),
    ('{"classes": ["a", "b", "c"], "ignore_index": "none"}', "ignore_index"),
    ('{"classes": ["a", "b", "c"], "ignore_index": 1}', "ignore_index"),
])
def test_malformed_dataset_json(make_folder, text, message):
    root = make_folder(["a", "b"], meta=text)
    with pytest.raises(DataError, match=rf"dataset\.json: .*{message}"):
        load_split(root, "all")


def test_split_lists(make_folder):
    root = make_folder(STEMS, splits={"train": STEMS[:7], "val": STEMS[7:], "test": ["img_09", "img_00"]})
    assert [i.stem for i, _ in load_split(root, "train").pairs] == STEMS[:7]
    assert [i.stem for i, _ in load_split(root, "val").pairs] == STEMS[7:]
    assert [i.stem for i, _ in load_split(root, "test").pairs] == ["img_09", "img_00"]  # the list's order


def test_split_list_naming_an_unknown_stem(make_folder):
    root = make_folder(STEMS[:3], splits={"val": ["img_00", "img_99"]})
    with pytest.raises(DataError, match=r"splits/val\.txt: lists 'img_99'"):
        load_split(root, "val")


def test_missing_split_list_when_splits_exist(make_folder):
    root = make_folder(STEMS[:3], splits={"train": STEMS[:3]})
    with pytest.raises(DataError, match=r"test\.txt: no such split list"):
        load_split(root, "test")


def test_seeded_random_split_is_deterministic_and_disjoint(make_folder):
    root = make_folder(STEMS)
    train = [i.stem for i, _ in load_split(root, "train", seed=3, val_fraction=0.3).pairs]
    val = [i.stem for i, _ in load_split(root, "val", seed=3, val_fraction=0.3).pairs]
    assert len(val) == 3 and len(train) == 7
    assert not set(train) & set(val) and sorted(train + val) == STEMS
    assert [i.stem for i, _ in load_split(root, "val", seed=3, val_fraction=0.3).pairs] == val
    assert sorted(i.stem for i, _ in load_split(root, "all").pairs) == STEMS
    vals = {tuple(i.stem for i, _ in load_split(root, "val", seed=s, val_fraction=0.3).pairs) for s in range(6)}
    assert len(vals) > 1  # the seed matters


def test_random_split_keeps_at_least_one_val_image(make_folder):
    root = make_folder(STEMS[:3])
    assert len(load_split(root, "val", val_fraction=0.01).pairs) == 1
    assert len(load_split(root, "train", val_fraction=0.01).pairs) == 2


def test_unknown_split_without_lists(make_folder):
    with pytest.raises(ValueError, match="split 'test' does not exist; without splits/<split>.txt the splits are train, val, all, trainval"):
        load_split(make_folder(STEMS[:3]), "test")


def test_image_without_mask(make_folder):
    root = make_folder(["a", "b"])
    write_image(root / "images" / "c.png", (8, 8))
    with pytest.raises(DataError, match=r"images/c\.png: no mask with the same stem"):
        load_split(root, "all")


def test_mask_without_image(make_folder):
    root = make_folder(["a", "b"])
    write_mask(root / "masks" / "z.png", np.zeros((8, 8)))
    with pytest.raises(DataError, match=r"masks/z\.png: mask without an image"):
        load_split(root, "all")


def test_duplicate_stems(make_folder):
    root = make_folder(["a", "b"])
    write_image(root / "images" / "a.jpg", (8, 8), "JPEG")
    with pytest.raises(DataError, match=r"two files share the stem 'a' \(a\.jpg, a\.png\)"):
        load_split(root, "all")


def test_no_images(make_folder):
    with pytest.raises(DataError, match="no image files"):
        load_split(make_folder([]), "all")


def test_mask_size_differs_from_image(make_folder):
    root = make_folder(["a", "b"])
    write_mask(root / "masks" / "b.png", np.zeros((5, 6)))
    spec = load_split(root, "all")
    load_mask(spec, 0)
    with pytest.raises(DataError, match=r"masks/b\.png: mask is 6x5 but its image b\.png is"):
        load_mask(spec, 1)
    dataset = SegmentationDataset(spec, 8)
    with pytest.raises(DataError, match=r"b\.png"):
        dataset[1]


def test_open_split_detects_the_format_and_reports_empty_splits(make_folder):
    root = make_folder(STEMS[:4], splits={"train": STEMS[:4], "val": []})
    cfg = make_config(data=str(root))
    assert len(open_split(cfg, "train").pairs) == 4
    with pytest.raises(DataError, match="split 'val' is empty"):
        open_split(cfg, "val")


def test_open_split_unknown_layout(tmp_path):
    (tmp_path / "images").mkdir()
    with pytest.raises(DataError, match="not a dataset layout"):
        open_split(make_config(data=str(tmp_path)), "train")
    with pytest.raises(DataError, match=r"nowhere: dataset folder does not exist"):
        open_split(make_config(data=str(tmp_path / "nowhere")), "train")


def test_forced_folder_format_on_another_layout(make_pet):
    root = make_pet(["Bengal_1"], ["Bengal_2"])
    with pytest.raises(DataError, match=r"pet: a folder dataset needs images/ and masks/"):
        open_split(make_config(data=str(root), dataset="folder"), "train")


def test_dataset_items(make_folder):
    root = make_folder(STEMS[:3], num_classes=3, ignore=255)
    spec = load_split(root, "all")
    dataset = SegmentationDataset(spec, 16, augment=False).preload()
    image, mask, index = dataset[2]
    assert image.dtype == torch.uint8 and image.shape == (3, 16, 16)
    assert mask.dtype == torch.int64 and mask.shape == (16, 16) and index == 2
    assert set(mask.unique().tolist()) <= {0, 1, 2, 255}
    expected_image, expected_mask = load_pair(spec, 2, 16)
    assert torch.equal(image, torch.from_numpy(expected_image)) and torch.equal(mask, torch.from_numpy(expected_mask).long())
    augmented = SegmentationDataset(spec, 16, augment=True)
    assert torch.equal(augmented[2][0], image)  # without an augmentation seed, the plain sample
    views = [augmented[(2, seed)] for seed in range(8)]
    for view_image, view_mask, view_index in views:
        assert view_index == 2 and view_image.shape == (3, 16, 16) and view_mask.shape == (16, 16)
        assert set(view_mask.unique().tolist()) <= {0, 1, 2, 255}  # nearest neighbour: no new labels
    assert any(not torch.equal(v[0], image) for v in views)
    assert torch.equal(augmented[(2, 5)][0], views[5][0]) and torch.equal(augmented[(2, 5)][1], views[5][1])


def test_download_true_leaves_a_folder_dataset_alone(make_folder):
    """download=true fetches Oxford-IIIT Pet; on a folder dataset it must not try (the guard would refuse)."""
    root = make_folder(STEMS[:3])
    spec = open_split(make_config(data=str(root), download=True), "all")
    assert len(spec.pairs) == 3 and not (root / "downloads").exists()
