"""Bad input, one pair at a time: each case is an error naming the file (and, with skip_bad, a pair
left out with its reason), or is handled as docs/datasets.md says. Whole-dataset problems are at the end."""
import json
import os
import re

import numpy as np
import pytest
from PIL import Image

from conftest import write_image, write_mask
from seglab.config import make_config
from seglab.data import DataError, SegmentationDataset, open_split

STEMS = ["a", "b", "c", "d"]
PALETTE = [[0, 0, 0], [200, 0, 0], [0, 200, 0]]


def size_of(i):
    return (17 + i, 13 + i)  # width, height; b is 18 x 14


@pytest.fixture
def root(tmp_path):
    """4 JPEG images + L masks (ids 0-2) + dataset.json naming 3 classes and their colours."""
    root = tmp_path / "data"
    for i, stem in enumerate(STEMS):
        write_image(root / "images" / f"{stem}.jpg", size_of(i), "JPEG", seed=i)
        labels = np.random.default_rng(i).integers(0, 3, size_of(i)[::-1]).astype(np.uint8)
        write_mask(root / "masks" / f"{stem}.png", labels)
    (root / "dataset.json").write_text(json.dumps({"classes": ["x", "y", "z"], "colors": PALETTE}))
    return root


def load(root, skip_bad=False, split="all"):
    cfg = make_config(data=str(root), skip_bad=skip_bad)
    return SegmentationDataset(open_split(cfg, split), 16, skip_bad=skip_bad).preload()


B_IMAGE, B_MASK = "images/b.jpg", "masks/b.png"


def truncate(path, keep=0.5):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def exif_rotated(path, size):
    exif = Image.Exif()
    exif[0x0112] = 6  # shown turned 90 degrees clockwise
    Image.fromarray(np.full((size[1], size[0], 3), 90, np.uint8)).save(path, format="JPEG", exif=exif)


def mask_with(root, value, dtype=np.uint8):
    labels = np.zeros(size_of(1)[::-1], dtype)
    labels[3, 5] = value
    Image.fromarray(labels).save(root / B_MASK)


def bomb(root, pixels):
    Image.new("RGB", (pixels, pixels), (9, 9, 9)).save(root / B_IMAGE, format="JPEG")


def unknown_colour(root):
    rgb = np.zeros((*size_of(1)[::-1], 3), np.uint8)
    rgb[4, 6] = (1, 2, 3)
    Image.fromarray(rgb).save(root / B_MASK)


def float_mask(root):
    (root / B_MASK).unlink()
    Image.fromarray(np.zeros(size_of(1)[::-1], np.float32)).save(root / "masks" / "b.tif")


def broken_link(root):
    (root / B_IMAGE).unlink()
    (root / B_IMAGE).symlink_to(root / "nowhere.jpg")


# (case id, how to break pair b, the file the error names, what the message says)
ERRORS = [
    ("zero_byte_image", lambda r: (r / B_IMAGE).write_bytes(b""), B_IMAGE, r"file is empty \(0 bytes\)"),
    ("zero_byte_mask", lambda r: (r / B_MASK).write_bytes(b""), B_MASK, r"file is empty \(0 bytes\)"),
    ("truncated_jpeg", lambda r: truncate(r / B_IMAGE), B_IMAGE, r"cannot decode image"),
    ("truncated_png_mask", lambda r: truncate(r / B_MASK, 0.7), B_MASK, r"cannot decode image"),
    ("truncated_png_behind_jpg", lambda r: (write_image(r / B_IMAGE, (30, 30), "PNG"), truncate(r / B_IMAGE)),
     B_IMAGE, r"cannot decode image"),
    ("text_named_png", lambda r: (r / B_MASK).write_text("label: cat\n"), B_MASK, r"not an image file PIL can read"),
    ("text_named_jpg", lambda r: (r / B_IMAGE).write_text("<html>"), B_IMAGE, r"not an image file PIL can read"),
    ("mask_size_mismatch", lambda r: write_mask(r / B_MASK, np.zeros((5, 6))), B_MASK,
     r"mask is 6x5 but its image b\.jpg is 18x14$"),
    ("exif_rotated_image_mask_as_stored", lambda r: exif_rotated(r / B_IMAGE, size_of(1)), B_MASK,
     r"mask is 18x14 but its image b\.jpg is 14x18 as displayed \(its EXIF orientation 6"),
    ("label_out_of_range", lambda r: mask_with(r, 7), B_MASK,
     r"label value\(s\) \[7\] not in the dataset's classes \(first at x=5, y=3\)"),
    ("label_16_bit_above_255", lambda r: mask_with(r, 300, np.uint16), B_MASK, r"16-bit mask with label 300"),
    ("unknown_palette_colour", unknown_colour, B_MASK, r"colour \(1, 2, 3\) at \(x=6, y=4\) is not in the colour table"),
    ("float_mask", float_mask, "masks/b.tif", r"mask has mode F"),
    ("missing_mask", lambda r: (r / B_MASK).unlink(), B_IMAGE, r"no mask with the same stem"),
    ("mask_without_image", lambda r: (r / B_IMAGE).unlink(), B_MASK, r"mask without an image"),
    ("duplicate_stems", lambda r: write_image(r / "images" / "b.png", size_of(1)), "images/b.png",
     r"two files share the stem 'b' \(b\.jpg, b\.png\)"),
    ("decompression_bomb", lambda r: bomb(r, 200), B_IMAGE, r"image too large"),
    ("decompression_bomb_warning_size", lambda r: bomb(r, 40), B_IMAGE, r"image too large"),
    ("broken_symlink", broken_link, B_IMAGE, r"broken symbolic link"),
]


@pytest.fixture
def small_pixel_limit(monkeypatch):
    """Pillow's bomb limit (89.5 Mpx) scaled down, so the test images stay small: above 1,000 px is
    refused (Pillow warns above the limit and refuses above twice it; seglab refuses both)."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)


@pytest.mark.parametrize("case, breaks, named, message", ERRORS, ids=[e[0] for e in ERRORS])
def test_bad_pair_is_an_error_naming_the_file(root, small_pixel_limit, case, breaks, named, message):
    breaks(root)
    with pytest.raises(DataError) as info:
        load(root)
    assert str(info.value).startswith(f"{root / named}: ")
    assert re.search(message, str(info.value)), str(info.value)


@pytest.mark.parametrize("case, breaks, named, message", ERRORS, ids=[e[0] for e in ERRORS])
def test_with_skip_bad_the_pair_is_left_out_with_its_reason(root, small_pixel_limit, case, breaks, named, message):
    breaks(root)
    dataset = load(root, skip_bad=True)
    assert [image.stem for image, _ in dataset.spec.pairs] == ["a", "c", "d"]
    assert len(dataset) == 3 and dataset[2][0].shape == (3, 16, 16)
    files = [path for path, _ in dataset.skipped]
    assert root / named in files
    reason = dataset.skipped[files.index(root / named)][1]
    assert re.search(message, reason), reason


def test_unreadable_file(root):
    path = root / B_MASK
    path.chmod(0)
    try:
        if os.access(path, os.R_OK):  # root reads anything: chmod 000 is not a problem for it
            assert len(load(root)) == 4
            pytest.skip("running as root: chmod 000 files stay readable; the message is tested below")
        with pytest.raises(DataError, match=r"b\.png: cannot read the file \(permission denied\)"):
            load(root)
    finally:
        path.chmod(0o644)


def test_permission_denied_message(root, monkeypatch):
    """Simulated, so it runs as root too: PIL raising PermissionError becomes a DataError naming the file."""
    real_open = Image.open

    def refuse(fp, *args, **kwargs):
        if str(fp).endswith("b.png"):
            raise PermissionError(13, "Permission denied", str(fp))
        return real_open(fp, *args, **kwargs)

    monkeypatch.setattr(Image, "open", refuse)
    with pytest.raises(DataError, match=rf"{root / B_MASK}: cannot read the file \(permission denied\)"):
        load(root)
    assert [p for p, _ in load(root, skip_bad=True).skipped] == [root / B_MASK]
