"""Odd input that is handled as docs/datasets.md documents, and whole-dataset problems that stop everything."""
import json

import numpy as np
import pytest
from PIL import Image

from conftest import write_image, write_mask
from seglab.config import make_config
from seglab.data import DataError, SegmentationDataset, load_mask, open_split
from seglab.data.dataset import load_image

SIZE = (18, 14)  # width, height


def folder(root, image_writer=None, mask=None, stems=("a", "b")):
    """Pairs of RGB JPEGs and L masks; `image_writer(path)` replaces image b (stored as images/b.jpg)."""
    for i, stem in enumerate(stems):
        write_image(root / "images" / f"{stem}.jpg", SIZE, "JPEG", seed=i)
        write_mask(root / "masks" / f"{stem}.png", np.random.default_rng(i).integers(0, 3, SIZE[::-1]))
    if image_writer is not None:
        image_writer(root / "images" / "b.jpg")
    if mask is not None:
        mask(root / "masks" / "b.png")
    (root / "dataset.json").write_text(json.dumps({"classes": ["x", "y", "z"]}))
    return root


def spec_of(root, split="all"):
    return open_split(make_config(data=str(root)), split)


def pixels_of_b(root):
    spec = spec_of(root)
    index = [p[0].stem for p in spec.pairs].index("b")
    return load_image(spec.pairs[index][0], None), load_mask(spec, index)


def save(array, mode=None, fmt="PNG", **kw):
    def writer(path):
        Image.fromarray(array, mode).save(path, format=fmt, **kw) if mode else Image.fromarray(array).save(path, format=fmt, **kw)
    return writer


def gif_behind_jpg(path):
    Image.fromarray(np.full((*SIZE[::-1], 3), (250, 10, 10), np.uint8)).convert("P").save(path, format="GIF")


def animated_gif(path):
    frames = [Image.new("P", SIZE, i) for i in (3, 7)]
    frames[0].save(path, format="GIF", save_all=True, append_images=frames[1:])


def palette_with_transparency(path):
    image = Image.new("P", SIZE, 1)
    image.putpalette([0, 0, 0, 200, 100, 50] + [0] * 762)
    image.info["transparency"] = 1
    image.save(path, format="PNG", transparency=1)


def palette_input(path):
    Image.fromarray(np.full((*SIZE[::-1], 3), (0, 0, 255), np.uint8)).convert("P").save(path, format="PNG")
    assert Image.open(path).mode == "P"


def cmyk(path):
    Image.new("CMYK", SIZE, (0, 255, 255, 0)).save(path, format="JPEG")  # red in CMYK


def rgb16(path):
    """A 48-bit PNG, written by hand (Pillow reads them as 8-bit RGB but cannot write them)."""
    import struct
    import zlib

    h, w = SIZE[1], SIZE[0]
    rows = b"".join(b"\0" + np.full((w, 3), 0x8000, ">u2").tobytes() for _ in range(h))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def exif_photo(path):
    exif = Image.Exif()
    exif[0x0112] = 6
    pixels = np.zeros((SIZE[0], SIZE[1], 3), np.uint8)  # stored 14 wide, 18 high; shown 18 x 14
    pixels[0, 0] = 255  # top-left as stored: top-right once turned clockwise
    Image.fromarray(pixels).save(path, format="JPEG", exif=exif, quality=100)


IMAGE_CASES = [  # (case, writer of images/b.jpg, check of the decoded RGB pixels [3, H, W])
    ("gif_behind_jpg", gif_behind_jpg, lambda p: abs(int(p[0, 5, 5]) - 250) < 8),
    ("png_behind_jpg", save(np.full((*SIZE[::-1], 3), 77, np.uint8)), lambda p: (p == 77).all()),
    ("rgba_on_black", save(np.dstack([np.full((*SIZE[::-1], 3), 200, np.uint8), np.zeros(SIZE[::-1], np.uint8)]),
                           "RGBA"), lambda p: (p == 0).all()),
    ("grayscale", save(np.full(SIZE[::-1], 60, np.uint8), "L"), lambda p: (p == 60).all()),
    ("gray_16_bit_scaled", save(np.full(SIZE[::-1], 65535, np.uint16)), lambda p: (p == 255).all()),
    ("rgb_16_bit", rgb16, lambda p: (p == 128).all()),
    ("cmyk_jpeg", cmyk, lambda p: p[0].min() > 230 and p[1:].max() < 25),
    ("palette_input", palette_input, lambda p: (p[2] == 255).all() and (p[:2] == 0).all()),
    ("palette_transparency", palette_with_transparency, lambda p: (p == 0).all()),
    ("animated_gif_first_frame", animated_gif, lambda p: p.shape == (3, SIZE[1], SIZE[0])),
    ("exif_rotated_photo", exif_photo, lambda p: p[:, 0, -1].min() > 200 and p[:, 0, 0].max() < 50),
]


@pytest.mark.parametrize("case, writer, check", IMAGE_CASES, ids=[c[0] for c in IMAGE_CASES])
def test_image_formats_are_decoded_to_rgb(tmp_path, case, writer, check):
    root = folder(tmp_path / "d", image_writer=writer)
    image, mask = pixels_of_b(root)
    assert image.shape == (3, SIZE[1], SIZE[0]) and mask.shape == SIZE[::-1]  # size after EXIF = the mask's
    assert check(image), image[:, :2, :2]
    assert SegmentationDataset(spec_of(root), 8).preload()[1][0].shape == (3, 8, 8)


def test_mask_formats(tmp_path):
    """16-bit masks with labels <= 255, 1-bit masks (0 and 1) and a mask's own EXIF orientation (ignored)."""
    labels = np.random.default_rng(0).integers(0, 3, SIZE[::-1])
    root = folder(tmp_path / "d", mask=save(labels.astype(np.uint16)))
    assert np.array_equal(pixels_of_b(root)[1], labels)
    Image.fromarray(labels == 1).save(root / "masks" / "b.png")
    assert Image.open(root / "masks" / "b.png").mode == "1"
    assert np.array_equal(pixels_of_b(root)[1], (labels == 1).astype(np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(labels.astype(np.uint8), "L").save(root / "masks" / "b.png", exif=exif)
    assert np.array_equal(pixels_of_b(root)[1], labels)  # used as stored


def test_other_files_hidden_files_and_folders_are_ignored(tmp_path):
    root = folder(tmp_path / "d")
    for name in ("notes.txt", "Thumbs.db", ".DS_Store", "._a.jpg", ".hidden.png"):
        (root / "images" / name).write_bytes(b"\0junk")
        (root / "masks" / name).write_bytes(b"\0junk")
    (root / "images" / "folder.png").mkdir()
    assert [p[0].name for p in spec_of(root).pairs] == ["a.jpg", "b.jpg"]


def test_unicode_and_spaces_in_paths(tmp_path):
    root = folder(tmp_path / "données d'été", stems=("chat ü 1", "狗 2"))
    dataset = SegmentationDataset(spec_of(root), 8).preload()
    assert len(dataset) == 2 and dataset[1][1].shape == (8, 8)


def test_symlinked_files_and_folders_are_followed(tmp_path):
    source = folder(tmp_path / "source")
    root = tmp_path / "linked"
    (root / "masks").mkdir(parents=True)
    (root / "images").symlink_to(source / "images", target_is_directory=True)
    for mask in (source / "masks").iterdir():
        (root / "masks" / mask.name).symlink_to(mask)
    (root / "dataset.json").symlink_to(source / "dataset.json")
    assert len(SegmentationDataset(spec_of(root), 8).preload()) == 2


def test_uppercase_suffixes_and_untidy_split_lists(tmp_path):
    root = folder(tmp_path / "d")
    (root / "images" / "a.jpg").rename(root / "images" / "a.JPG")
    (root / "splits").mkdir()
    (root / "splits" / "train.txt").write_bytes(b"a\r\n\r\n  b  \r\n")
    assert [p[0].name for p in spec_of(root, "train").pairs] == ["a.JPG", "b.jpg"]


@pytest.mark.parametrize("setup, message", [
    (lambda r: None, r"images: no image files"),
    (lambda r: (r / "images" / "readme.txt").write_text("x"), r"images: no image files"),
], ids=["empty_folder", "only_non_image_files"])
def test_empty_folders(tmp_path, setup, message):
    root = tmp_path / "d"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    setup(root)
    with pytest.raises(DataError, match=message):
        spec_of(root)


@pytest.mark.parametrize("text, message", [
    ("{\"classes\": [\"x\", \"y\", \"z\"],}", r"not valid JSON"),
    (b"\xff\xfe{}", r"not valid JSON"),
    ("{\"clases\": [\"x\"]}", r"unknown key\(s\) \['clases'\].*Did you mean 'classes'\?"),
    ("{\"classes\": [\"x\", \"y\", \"z\"], \"palette\": []}", r"unknown key\(s\) \['palette'\]; valid keys"),
    ("{\"classes\": [\"x\", \"y\", \"z\"], \"ignore_index\": 300}", r"\"ignore_index\" must be an integer 0-255"),
], ids=["trailing_comma", "not_utf8", "misspelt_key", "unknown_key", "ignore_out_of_range"])
def test_malformed_dataset_json_names_it(tmp_path, text, message):
    root = folder(tmp_path / "d")
    path = root / "dataset.json"
    path.write_bytes(text) if isinstance(text, bytes) else path.write_text(text)
    with pytest.raises(DataError, match=rf"dataset\.json: {message}"):
        spec_of(root)


def test_every_pair_bad_stops_even_with_skip_bad(tmp_path):
    root = folder(tmp_path / "d")
    for mask in (root / "masks").iterdir():
        mask.write_bytes(b"")
    spec = open_split(make_config(data=str(root), skip_bad=True), "all")
    with pytest.raises(DataError, match=r"every pair of split 'all' is bad \(2\); the first: .*a\.png: file is empty"):
        SegmentationDataset(spec, 8, skip_bad=True).preload()


def test_dataset_folder_that_does_not_exist(tmp_path):
    with pytest.raises(DataError, match=r"nowhere: dataset folder does not exist"):
        spec_of(tmp_path / "nowhere")
