"""Image and mask readers: any stored format becomes RGB; bad files fail with a DataError naming them."""
import numpy as np
import pytest
from PIL import Image

from conftest import write_image, write_mask
from seglab.data.dataset import load_image
from seglab.data.io import DataError, identity_lut, image_size, map_labels, read_image, read_mask


@pytest.mark.parametrize("fmt, mode", [("GIF", "P"), ("PNG", "RGBA"), ("PNG", "L"), ("PNG", "P"), ("BMP", "RGB")])
def test_other_formats_behind_a_jpg_name_load_as_rgb(tmp_path, fmt, mode):
    path = write_image(tmp_path / "photo.jpg", (37, 23), fmt, mode)
    assert Image.open(path).format == fmt  # the name lies, as in the real Pet release
    image = read_image(path)
    assert image.mode == "RGB" and image.size == (37, 23)
    assert image_size(path) == (37, 23)
    # the fast JPEG path of load_image must not be taken for non-JPEG data
    assert load_image(path, 16).shape == (3, 16, 16)
    assert load_image(path, None).shape == (3, 23, 37)


def test_rgba_is_composited_on_black(tmp_path):
    rgba = np.zeros((4, 5, 4), dtype=np.uint8)
    rgba[..., 0] = 200
    rgba[:, :2, 3] = 255  # left two columns opaque red, the rest fully transparent red
    path = tmp_path / "a.jpg"
    Image.fromarray(rgba, "RGBA").save(path, format="PNG")
    pixels = np.asarray(read_image(path))
    assert (pixels[:, :2] == [200, 0, 0]).all()
    assert (pixels[:, 2:] == 0).all()


def test_exif_orientation_is_applied_to_image_and_size(tmp_path):
    image = Image.fromarray(np.zeros((10, 30, 3), dtype=np.uint8))  # 30 wide, 10 high as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees when shown
    path = tmp_path / "rotated.jpg"
    image.save(path, format="JPEG", exif=exif)
    assert read_image(path).size == (10, 30)
    assert image_size(path) == (10, 30)
    assert load_image(path, None).shape == (3, 30, 10)


def test_jpeg_draft_decode_matches_size_and_content(tmp_path):
    """The downscaling JPEG decoder gives the requested size and nearly the same pixels as a full decode."""
    y, x = np.mgrid[0:300, 0:400]
    smooth = np.stack([x * 255 // 400, y * 255 // 300, (x + y) * 255 // 700], -1).astype(np.uint8)
    path = tmp_path / "big.jpg"
    Image.fromarray(smooth).save(path, quality=95)
    fast = load_image(path, 32).astype(int)
    full = np.asarray(read_image(path).resize((32, 32), Image.BILINEAR)).transpose(2, 0, 1).astype(int)
    assert fast.shape == (3, 32, 32)
    assert np.abs(fast - full).mean() < 3


@pytest.mark.parametrize("content, message", [(b"", "empty"), (b"not an image at all", "not an image"),
                                              (b"\x89PNG\r\n\x1a\n" + b"\0" * 40, "")])
def test_unreadable_files_name_the_file(tmp_path, content, message):
    path = tmp_path / "broken.png"
    path.write_bytes(content)
    for reader in (read_image, read_mask):
        with pytest.raises(DataError, match=rf"broken\.png.*{message}"):
            reader(path)


def test_truncated_jpeg_names_the_file(tmp_path):
    path = write_image(tmp_path / "cut.jpg", (64, 64), "JPEG")
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(DataError, match=r"cut\.jpg"):
        read_image(path)
    with pytest.raises(DataError, match=r"cut\.jpg"):
        load_image(path, 16)  # the fast path falls back to the checked reader


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match=r"gone\.png: file does not exist"):
        read_mask(tmp_path / "gone.png")


def test_read_mask_l_and_palette_give_the_stored_values(tmp_path):
    labels = np.array([[0, 1, 2], [255, 7, 0]], dtype=np.uint8)
    assert np.array_equal(read_mask(write_mask(tmp_path / "l.png", labels)), labels)
    palette_image = Image.fromarray(labels, "L").convert("P")  # palette indices, not colours
    palette_image.putpalette([v for i in range(256) for v in (255 - i, i, 0)])
    palette_image.putdata(labels.flatten().tolist())
    palette_image.save(tmp_path / "p.png")
    assert Image.open(tmp_path / "p.png").mode == "P"
    assert np.array_equal(read_mask(tmp_path / "p.png"), labels)


def test_read_mask_16_bit(tmp_path):
    small = np.array([[0, 3], [255, 1]], dtype=np.uint16)
    Image.fromarray(small).save(tmp_path / "ok.png")
    assert np.array_equal(read_mask(tmp_path / "ok.png"), small.astype(np.uint8))
    Image.fromarray(np.array([[0, 300]], dtype=np.uint16)).save(tmp_path / "big.png")
    with pytest.raises(DataError, match=r"big\.png: 16-bit mask with label 300"):
        read_mask(tmp_path / "big.png")


def test_rgb_mask_is_refused(tmp_path):
    path = write_image(tmp_path / "colour.png", (4, 4), "PNG", "RGB")
    with pytest.raises(DataError, match=r"colour\.png: mask has mode RGB"):
        read_mask(path)


def test_map_labels_reports_value_file_and_position(tmp_path):
    lut = identity_lut(3, 255)
    raw = np.array([[0, 1, 2], [255, 2, 9]], dtype=np.uint8)
    with pytest.raises(DataError) as info:
        map_labels(raw, lut, tmp_path / "m.png", 255)
    message = str(info.value)
    assert "m.png" in message and "[9]" in message and "x=2, y=1" in message and "[0, 1, 2, 255]" in message
    good = raw.copy()
    good[1, 2] = 1
    assert np.array_equal(map_labels(good, lut, tmp_path / "m.png", 255), good)
