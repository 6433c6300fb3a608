"""The real Oxford-IIIT Pet subset beside the checkout (../shared/data), when it is there."""
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from seglab.data import detect_format, load_mask, load_pair
from seglab.data.dataset import load_image
from seglab.data.io import read_image, read_mask
from seglab.data.pet import load_split

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
PET = SHARED_DATA / "oxford-iiit-pet-subset"

pytestmark = pytest.mark.skipif(not (PET / "annotations" / "trainval.txt").is_file(),
                                reason=f"real Oxford-IIIT Pet subset not found at {PET}")


def test_official_split_sizes():
    assert detect_format(PET) == "pet"
    trainval, test = load_split(PET, "trainval"), load_split(PET, "test")
    assert len(trainval.pairs) == 300 and len(test.pairs) == 298
    names = {i.stem for i, _ in trainval.pairs} | {i.stem for i, _ in test.pairs}
    assert len(names) == 598 and not {"Abyssinian_34", "Abyssinian_82"} & names  # unlisted, as released
    assert "Abyssinian_5" in {i.stem for i, _ in test.pairs}  # the RGBA PNG is a test image
    train, val = load_split(PET, "train"), load_split(PET, "val")
    assert len(train.pairs) == 270 and len(val.pairs) == 30
    assert {i.stem for i, _ in train.pairs} | {i.stem for i, _ in val.pairs} == {i.stem for i, _ in trainval.pairs}


def test_trimap_values_are_1_2_3():
    spec = load_split(PET, "test")
    counts = np.zeros(256, dtype=np.int64)
    for _, mask in spec.pairs + load_split(PET, "trainval").pairs:
        counts += np.bincount(read_mask(mask).ravel(), minlength=256)
    assert set(np.flatnonzero(counts)) == {1, 2, 3}
    mask = load_mask(spec, 0)
    assert set(np.unique(mask)) == {0, 1, 2}
    assert mask.shape == np.asarray(Image.open(spec.pairs[0][1])).shape


@pytest.mark.parametrize("name, fmt", [("Abyssinian_34", "GIF"), ("Abyssinian_5", "PNG")])
def test_quirky_files_decode_to_rgb(name, fmt):
    path = PET / "images" / f"{name}.jpg"
    with Image.open(path) as raw:
        assert raw.format == fmt
        size = raw.size
    trimap_size = Image.open(PET / "annotations" / "trimaps" / f"{name}.png").size
    image = read_image(path)
    assert image.mode == "RGB" and image.size == size == trimap_size
    pixels = np.asarray(image)
    assert pixels.std() > 10  # a real photo, not a blank frame
    assert load_image(path, 64).shape == (3, 64, 64)


def test_quirky_files_load_as_pairs():
    """Abyssinian_5 (RGBA PNG) loads from the test split; Abyssinian_34 (GIF, in no list) when given as a pair."""
    spec = load_split(PET, "test")
    index = [i.stem for i, _ in spec.pairs].index("Abyssinian_5")
    image, mask = load_pair(spec, index, None)
    assert image.shape == (3, 150, 200) and mask.shape == (150, 200)
    spec.pairs = [(PET / "images" / "Abyssinian_34.jpg", PET / "annotations" / "trimaps" / "Abyssinian_34.png")]
    image, mask = load_pair(spec, 0, None)
    assert image.shape == (3, 202, 250) and mask.shape == (202, 250) and set(np.unique(mask)) <= {0, 1, 2}
