"""Reading images and masks from disk, with errors that name the file and the problem.

Masks come as single-channel label images (L, P = palette indices, 1-bit, 16-bit), as colour
images decoded through a colour table (RGB -> raw value), or as SBD `.mat` files (GTcls.Segmentation).
"""

from __future__ import annotations

import json

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif")
EXIF_ORIENTATION = 0x0112
_MASK_VALUES: dict[tuple, np.ndarray] = {}  # (path, size, mtime, colour table) -> a mask's distinct raw values
_MASK_VALUES_LIMIT = 500_000


class DataError(ValueError):
    """A dataset file that cannot be used; the message names the file and the problem."""


def _peek(path: Path) -> Image.Image:
    """Image.open for reading the header only; size limits are checked (and reported) by `_open`."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        return Image.open(path)


def _too_large(image: Image.Image) -> bool:
    limit = Image.MAX_IMAGE_PIXELS
    return bool(limit) and image.size[0] * image.size[1] > limit


def _open(path: Path) -> Image.Image:
    path = Path(path)
    if not path.exists():
        kind = "broken symbolic link" if path.is_symlink() else "file does not exist"
        raise DataError(f"{path}: {kind}")
    if not path.is_file():
        raise DataError(f"{path}: not a file")
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
    except PermissionError:
        raise DataError(f"{path}: cannot read the file (permission denied)") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise DataError(f"{path}: cannot decode image ({e})") from None
    return image


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        image = image.convert("RGBA")
        background = Image.new("RGBA", image.size, (0, 0, 0, 255))
        return Image.alpha_composite(background, image).convert("RGB")
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):  # 16-bit grayscale: full range scaled to 8 bits
        values = np.asarray(image).astype(np.int64) // 257
        return Image.fromarray(values.clip(0, 255).astype(np.uint8), "L").convert("RGB")
    return image.convert("RGB")


def read_image(path: Path, draft_size: int | None = None) -> Image.Image:
    """An RGB image, any stored format (GIF/PNG behind a .jpg name, RGBA, palette, grayscale, 16-bit, CMYK).

    EXIF orientation is applied, so the image is the way a photo viewer shows it. `draft_size`
    lets the JPEG decoder downscale while decoding (much faster when the image is resized anyway).
    """
    path = Path(path)
    if draft_size:
        try:
            with _peek(path) as probe:
                if probe.format == "JPEG" and not _too_large(probe):
                    probe.draft("RGB", (draft_size, draft_size))
                    probe.load()
                    return ImageOps.exif_transpose(probe).convert("RGB")
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
            pass  # fall through to the checked path, which reports the problem
    return _to_rgb(ImageOps.exif_transpose(_open(path)))


def exif_orientation(path: Path) -> int:
    try:
        with _peek(path) as image:
            return int(image.getexif().get(EXIF_ORIENTATION, 1))
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return 1


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) as shown, i.e. after the EXIF orientation is applied."""
    try:
        with _peek(path) as image:
            width, height = image.size
            orientation = image.getexif().get(EXIF_ORIENTATION, 1)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        image = _open(path)  # raises the DataError that names the problem
        width, height = image.size
        orientation = image.getexif().get(EXIF_ORIENTATION, 1)
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def read_mat_mask(path: Path) -> np.ndarray:
    """SBD's cls/<name>.mat: the class ids of GTcls.Segmentation as uint8 [H, W]."""
    from scipy.io import loadmat

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file does not exist")
    try:
        content = loadmat(str(path), squeeze_me=False, struct_as_record=False)
    except PermissionError:
        raise DataError(f"{path}: cannot read the file (permission denied)") from None
    except Exception as e:  # scipy raises ValueError, TypeError, OSError... for damaged files
        raise DataError(f"{path}: not a readable MATLAB .mat file ({type(e).__name__}: {e})") from None
    gtcls = content.get("GTcls")
    gtcls = gtcls.flat[0] if isinstance(gtcls, np.ndarray) and gtcls.size == 1 else gtcls
    segmentation = getattr(gtcls, "Segmentation", None)
    if not isinstance(segmentation, np.ndarray) or segmentation.ndim != 2:
        raise DataError(f"{path}: has no 2-D GTcls.Segmentation (expected SBD's cls/*.mat)")
    if segmentation.size and (segmentation.min() < 0 or segmentation.max() > 255):
        raise DataError(f"{path}: GTcls.Segmentation values outside 0-255")
    return segmentation.astype(np.uint8)


def read_mask(path: Path, colors: dict | None = None) -> np.ndarray:
    """The raw label values of a mask as uint8 [H, W].

    L and 16-bit: the stored values; P: the palette indices; 1-bit: 0 and 1; .mat: SBD's
    GTcls.Segmentation; RGB (and RGBA, alpha dropped): each colour's value in `colors`
    ({(r, g, b): value}), an error naming the first unknown colour and where it is.
    EXIF orientation is ignored: masks are used as stored."""
    path = Path(path)
    if path.suffix.lower() == ".mat":
        return read_mat_mask(path)
    image = _open(path)
    if image.mode in ("P", "L"):
        return np.asarray(image, dtype=np.uint8)
    if image.mode == "1":
        return np.asarray(image, dtype=np.uint8)
    if image.mode in ("I;16", "I;16B", "I", "I;16L"):
        values = np.asarray(image)
        if values.size and (values.max() > 255 or values.min() < 0):
            bad = int(values.max()) if values.max() > 255 else int(values.min())
            raise DataError(f"{path}: 16-bit mask with label {bad} outside 0-255")
        return values.astype(np.uint8)
    if image.mode in ("RGB", "RGBA") and colors:
        hint = " (JPEG compression changes colours: store colour masks as PNG)" if image.format == "JPEG" else ""
        return decode_colors(np.asarray(image.convert("RGB")), colors, path, hint)
    if image.mode in ("RGB", "RGBA"):
        raise DataError(f"{path}: mask has mode {image.mode}; expected a single-channel (L or P) label image, or "
                        f"give a colour table (\"colors\" or \"color_map\" in dataset.json) for colour masks")
    raise DataError(f"{path}: mask has mode {image.mode}; expected a single-channel (L or P) label image")


def mask_values(path: Path, colors: dict | None = None) -> np.ndarray:
    """The distinct raw values of one mask (sorted), cached by path, file size, modification time and colour table."""
    try:
        stat = Path(path).stat()
        key = (str(path), stat.st_size, stat.st_mtime_ns, tuple(sorted(colors.items())) if colors else None)
    except OSError:
        key = None  # read_mask names the problem
    if key in _MASK_VALUES:
        return _MASK_VALUES[key]
    values = np.flatnonzero(np.bincount(read_mask(path, colors).ravel(), minlength=256))
    values.setflags(write=False)  # shared through the cache
    if key is not None:
        if len(_MASK_VALUES) >= _MASK_VALUES_LIMIT:
            _MASK_VALUES.clear()
        _MASK_VALUES[key] = values
    return values


def color_code(rgb) -> int:
    r, g, b = (int(v) for v in rgb)
    return (r << 16) | (g << 8) | b


def decode_colors(rgb: np.ndarray, colors: dict, path: Path, hint: str = "") -> np.ndarray:
    """uint8 [H, W, 3] colours -> uint8 [H, W] values via {(r, g, b): value}; unknown colours are an error."""
    keys = np.array(sorted(color_code(c) for c in colors), dtype=np.int64)
    values = np.array([colors[tuple(((k >> 16) & 255, (k >> 8) & 255, k & 255))] for k in keys.tolist()], np.uint8)
    codes = (rgb[..., 0].astype(np.int64) << 16) | (rgb[..., 1].astype(np.int64) << 8) | rgb[..., 2]
    position = np.searchsorted(keys, codes).clip(max=len(keys) - 1)
    known = keys[position] == codes
    if not known.all():
        y, x = np.argwhere(~known)[0]
        unknown = np.unique(codes[~known])
        colour = tuple(int(v) for v in rgb[y, x])
        raise DataError(f"{path}: colour {colour} at (x={x}, y={y}) is not in the colour table "
                        f"({int((~known).sum())} pixels, {len(unknown)} unknown colour(s)){hint}")
    return values[position]


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


def read_json_object(path: Path) -> dict | None:
    """A JSON object file (dataset.json), None when absent; a DataError naming the file otherwise."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(meta, dict):
        raise DataError(f"{path}: must hold a JSON object")
    return meta
