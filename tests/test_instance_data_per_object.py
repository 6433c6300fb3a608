"""One binary PNG per object (DSB2018 as released): synthetic folders, and the real ../shared/data/dsb2018."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from seglab.data.instance import open_instance_split
from seglab.data.io import DataError
from test_instance_data_layouts import WIDTH, write_dsb

DSB2018 = Path(__file__).resolve().parents[2] / "shared" / "data" / "dsb2018"


def test_each_mask_file_is_one_instance(tmp_path):
    drawn = write_dsb(tmp_path, n=4)
    for root in (tmp_path, tmp_path / "stage1_train"):
        split = open_instance_split(root, "all")
        assert split.format == "per_object_png" and split.classes == ["nucleus"]
        assert [item.name for item in split.items] == sorted(drawn)
    for item in split.items:
        instances = item.load()
        assert len(instances) == len(drawn[item.name])
        for got, want in zip(instances.masks, drawn[item.name]):
            np.testing.assert_array_equal(got, want)
        assert instances.sources == [f"mask m{j}.png" for j in range(len(instances))]


def test_bad_sample_folders_are_named(tmp_path):
    write_dsb(tmp_path, n=3)
    sample = tmp_path / "stage1_train" / "01abc1"
    (sample / "images" / "01abc1.png").rename(sample / "images" / "other.png")
    with pytest.raises(DataError, match=r"01abc1/images: expected one image named 01abc1.png, found other.png"):
        open_instance_split(tmp_path, "all")
    split = open_instance_split(tmp_path, "all", skip_bad=True)
    assert [item.name for item in split.items] == ["00abc0", "02abc2"] and len(split.skipped) == 1
    (sample / "images" / "other.png").rename(sample / "images" / "01abc1.png")
    Image.new("L", (WIDTH + 1, 40)).save(sample / "masks" / "m0.png")
    split = open_instance_split(tmp_path, "all")
    with pytest.raises(DataError, match=r"masks/m0.png: mask is 49x40 but its image 01abc1.png is 48x40"):
        split.items[1].load()


@pytest.fixture(scope="module")
def dsb_splits():
    if not (DSB2018 / "stage1_train").is_dir():
        pytest.skip(f"the real DSB2018 sample is not at {DSB2018} (see ../shared/data/README.md)")
    return {name: open_instance_split(DSB2018, name) for name in ("train", "val", "all")}


def test_real_dsb2018_seeded_80_20_split(dsb_splits):
    train, val, every = ([item.name for item in dsb_splits[s].items] for s in ("train", "val", "all"))
    assert (len(every), len(train), len(val)) == (300, 240, 60)
    assert not set(train) & set(val) and sorted(train + val) == every
    shuffled = sorted(every)
    random.Random(0).shuffle(shuffled)  # the documented rule: seed 0, the first 20% of the shuffled ids are val
    assert set(val) == set(shuffled[:60])


def test_real_dsb2018_instance_counts_are_plausible(dsb_splits):
    counts = [len(list(item.annotation_file.glob("*.png"))) for item in dsb_splits["all"].items]
    assert min(counts) >= 1 and 10_000 < sum(counts) < 20_000  # "13,000+ nuclei, 1 to several hundred per image"


def test_real_dsb2018_masks_of_one_image_are_its_png_files(dsb_splits):
    item = min(dsb_splits["val"].items, key=lambda i: len(list(i.annotation_file.glob("*.png"))))
    instances = item.load()
    files = sorted(item.annotation_file.glob("*.png"))
    with Image.open(item.image) as image:
        assert instances.size == (image.height, image.width)
    assert len(instances) == len(files)
    for mask, path in zip(instances.masks, files):
        np.testing.assert_array_equal(mask, np.asarray(Image.open(path)) > 0, err_msg=str(path))
    assert (instances.areas > 0).all()
