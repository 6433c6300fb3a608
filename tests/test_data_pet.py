"""Oxford-IIIT Pet layout built in tmp_path: official lists, trimap and binary classes, the train/val division."""
import numpy as np
import pytest
from PIL import Image

from conftest import SAMPLE, write_image, write_mask
from seglab.config import make_config
from seglab.data import detect_format, load_mask, load_pair, open_split
from seglab.data.io import DataError
from seglab.data.pet import VAL_FRACTION, load_split

TRAINVAL = [f"Bengal_{i}" for i in range(1, 31)]
TEST = ["Abyssinian_1", "Abyssinian_2", "Abyssinian_3"]


def stems(spec):
    return [image.stem for image, _ in spec.pairs]


def test_official_lists(make_pet):
    root = make_pet(TRAINVAL, TEST, unlisted=["Bengal_99"])
    assert detect_format(root) == "pet"
    assert stems(load_split(root, "trainval")) == TRAINVAL
    assert stems(load_split(root, "test")) == TEST
    image, mask = load_split(root, "test").pairs[0]
    assert image == root / "images" / "Abyssinian_1.jpg" and mask == root / "annotations" / "trimaps" / "Abyssinian_1.png"


def test_train_and_val_partition_trainval(make_pet):
    root = make_pet(TRAINVAL, TEST)
    train, val = stems(load_split(root, "train")), stems(load_split(root, "val"))
    assert len(val) == round(len(TRAINVAL) * VAL_FRACTION) == 3
    assert not set(train) & set(val)
    assert sorted(train + val) == sorted(TRAINVAL)
    assert train == [n for n in TRAINVAL if n in train]  # the list order is kept
    assert stems(load_split(root, "val")) == val  # deterministic
    assert not set(val) & set(TEST)
    others = {tuple(stems(load_split(root, "val", seed=s))) for s in range(1, 6)}
    assert len(others | {tuple(val)}) > 1  # the seed chooses the held-out images


def test_trimap_classes(make_pet):
    root = make_pet(TRAINVAL[:2], TEST)
    spec = load_split(root, "trainval", classes="trimap")
    assert spec.classes.names == ["pet", "background", "border"] and spec.classes.ignore_index == 255
    raw = np.asarray(Image.open(spec.pairs[0][1]))
    mask = load_mask(spec, 0)
    assert np.array_equal(mask, raw.astype(np.int64) - 1)  # 1 pet -> 0, 2 background -> 1, 3 border -> 2
    assert set(np.unique(mask)) == {0, 1, 2}


def test_binary_classes_ignore_the_border(make_pet):
    root = make_pet(TRAINVAL[:2], TEST)
    spec = load_split(root, "trainval", classes="binary")
    assert spec.classes.names == ["background", "pet"] and spec.classes.num_classes == 2
    raw = np.asarray(Image.open(spec.pairs[0][1]))
    mask = load_mask(spec, 0)
    assert (mask[raw == 1] == 1).all() and (mask[raw == 2] == 0).all() and (mask[raw == 3] == 255).all()
    _, resized = load_pair(spec, 0, 8)
    assert set(np.unique(resized)) <= {0, 1, 255}


def test_classes_and_split_choices(make_pet):
    root = make_pet(TRAINVAL[:2], TEST)
    with pytest.raises(ValueError, match="classes='dogs'.*'trimap' or 'binary'"):
        load_split(root, "test", classes="dogs")
    with pytest.raises(ValueError, match="split='validation'"):
        load_split(root, "validation")


def test_open_split_passes_classes_and_seed(make_pet):
    root = make_pet(TRAINVAL, TEST)
    spec = open_split(make_config(data=str(root), classes="binary", seed=4), "val")
    assert spec.classes.names == ["background", "pet"]
    assert stems(spec) == stems(load_split(root, "val", seed=4))


def test_trimap_value_outside_1_2_3_names_the_file(make_pet):
    root = make_pet(TRAINVAL[:2], TEST)
    trimap = root / "annotations" / "trimaps" / "Abyssinian_2.png"
    labels = np.asarray(Image.open(trimap)).copy()
    labels[3, 4] = 4
    write_mask(trimap, labels)
    spec = load_split(root, "test")
    with pytest.raises(DataError, match=r"trimaps/Abyssinian_2\.png: label value\(s\) \[4\].*x=4, y=3"):
        load_mask(spec, 1)
    with pytest.raises(DataError, match=r"Abyssinian_2\.png"):
        load_mask(load_split(root, "test", classes="binary"), 1)


def test_trimap_of_the_wrong_size_names_the_trimap(make_pet):
    root = make_pet(TRAINVAL[:2], TEST, sizes={"Abyssinian_3": (30, 20)})
    write_mask(root / "annotations" / "trimaps" / "Abyssinian_3.png", np.full((20, 29), 2))
    spec = load_split(root, "test")
    with pytest.raises(DataError, match=r"trimaps/Abyssinian_3\.png: mask is 29x20 but its image Abyssinian_3\.jpg is 30x20"):
        load_pair(spec, 2, 16)


def test_listed_image_or_trimap_missing(make_pet):
    root = make_pet(TRAINVAL[:2], TEST)
    (root / "annotations" / "trimaps" / "Abyssinian_1.png").unlink()
    with pytest.raises(DataError, match=r"Abyssinian_1\.png: trimap for Abyssinian_1 is missing"):
        load_split(root, "test")
    (root / "images" / "Bengal_2.jpg").unlink()
    with pytest.raises(DataError, match=r"images/Bengal_2\.jpg: listed in trainval but missing"):
        load_split(root, "trainval")


def test_missing_split_list(make_pet):
    root = make_pet(TRAINVAL[:2], TEST)
    (root / "annotations" / "test.txt").unlink()
    with pytest.raises(DataError, match=r"annotations/test\.txt: split list not found"):
        load_split(root, "test")


@pytest.mark.parametrize("fmt, mode", [("GIF", "P"), ("PNG", "RGBA")])
def test_quirky_image_files_load(make_pet, fmt, mode):
    """As in the real release: a GIF and an RGBA PNG stored under .jpg names."""
    root = make_pet(TRAINVAL[:2], TEST, sizes={"Abyssinian_2": (33, 21)})
    write_image(root / "images" / "Abyssinian_2.jpg", (33, 21), fmt, mode)
    spec = load_split(root, "test")
    image, mask = load_pair(spec, 1, None)
    assert image.shape == (3, 21, 33) and image.dtype == np.uint8 and mask.shape == (21, 33)
    image, mask = load_pair(spec, 1, 16)
    assert image.shape == (3, 16, 16) and mask.shape == (16, 16)


def test_list_comments_blank_lines_and_extra_columns(make_pet):
    root = make_pet(TRAINVAL[:3], TEST)
    (root / "annotations" / "test.txt").write_text("#Image CLASS-ID SPECIES BREED ID\n\nAbyssinian_3 1 1 1\n  Abyssinian_1\n")
    assert stems(load_split(root, "test")) == ["Abyssinian_3", "Abyssinian_1"]


def test_bundled_sample():
    assert detect_format(SAMPLE) == "pet"
    test = load_split(SAMPLE, "test")
    assert len(test.pairs) == 12 and len(load_split(SAMPLE, "trainval").pairs) == 48
    assert not {i.stem for i, _ in test.pairs} & {i.stem for i, _ in load_split(SAMPLE, "trainval").pairs}
    spec = open_split(make_config(), "train")  # data="" means the sample
    assert spec.root == SAMPLE and len(spec.pairs) == 48 - round(48 * VAL_FRACTION)
    for index in range(len(test.pairs)):
        assert set(np.unique(load_mask(test, index))) <= {0, 1, 2}
