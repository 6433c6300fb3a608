"""Reading images and masks from disk, with errors that name the file and the problem."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif")


class DataError(ValueError):
    """A dataset file that cannot be used; the message names the file and the problem."""


def _open(path: Path) -> Image.Image:
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file does not exist")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: file is empty (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(path)
            image.load()
    except UnidentifiedImageError:
        raise DataError(f"{path}: not an image file PIL can read") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise DataError(f"{path}: image too large ({e})") from None
    except (OSError, SyntaxError) as e:
        raise DataError(f"{path}: cannot decode image ({e})") from None
    return image


def read_image(path: Path, draft_size: int | None = None) -> Image.Image:
    """An RGB image, any stored format (GIF/PNG behind a .jpg name, RGBA, palette, grayscale).

    EXIF orientation is applied, so the image is the way a photo viewer shows it. `draft_size`
    lets the JPEG decoder downscale while decoding (much faster when the image is resized anyway).
    """
    path = Path(path)
    if draft_size:
        try:
            with Image.open(path) as probe:
                if probe.format == "JPEG":
                    probe.draft("RGB", (draft_size, draft_size))
                    probe.load()
                    return ImageOps.exif_transpose(probe).convert("RGB")
        except (OSError, SyntaxError, Image.DecompressionBombError):
            pass  # fall through to the checked path, which reports the problem
    image = _open(path)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        image = image.convert("RGBA")
        background = Image.new("RGBA", image.size, (0, 0, 0, 255))
        image = Image.alpha_composite(background, image)
    return ImageOps.exif_transpose(image).convert("RGB")


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) as shown, i.e. after the EXIF orientation is applied."""
    with Image.open(path) as image:
        width, height = image.size
        orientation = image.getexif().get(0x0112, 1)
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def read_mask(path: Path) -> np.ndarray:
    """The raw label values of a mask as uint8 [H, W]: palette indices for palette PNGs."""
    image = _open(path)
    if image.mode in ("P", "L"):
        return np.asarray(image, dtype=np.uint8)
    if image.mode in ("I;16", "I;16B", "I", "I;16L"):
        values = np.asarray(image)
        if values.max() > 255:
            raise DataError(f"{path}: 16-bit mask with label {int(values.max())} above 255")
        return values.astype(np.uint8)
    raise DataError(f"{path}: mask has mode {image.mode}; expected a single-channel (L or P) label image")


def map_labels(raw: np.ndarray, lut: np.ndarray, path: Path, ignore_index: int) -> np.ndarray:
    """Map raw mask values through `lut` (int16[256], -1 = not a valid value) to class ids."""
    labels = lut[raw]
    bad = labels < 0
    if bad.any():
        values = sorted(int(v) for v in np.unique(raw[bad]))
        y, x = np.argwhere(bad)[0]
        valid = sorted(int(v) for v in np.flatnonzero(lut >= 0))
        raise DataError(
            f"{path}: label value(s) {values[:10]} not in the dataset's classes "
            f"(first at x={x}, y={y}); valid values: {valid[:20]}"
        )
    return labels.astype(np.uint8)


def identity_lut(num_classes: int, ignore_index: int) -> np.ndarray:
    """Class ids stored as themselves; the ignore value stays the ignore value."""
    lut = np.full(256, -1, dtype=np.int16)
    lut[:num_classes] = np.arange(num_classes)
    if 0 <= ignore_index < 256:
        lut[ignore_index] = ignore_index
    return lut
