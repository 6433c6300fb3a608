"""An uploaded image file -> uint8 RGB, or an `UploadError` with the HTTP status and a message the page shows.

Limits: the file size (`max_upload_mb`), the formats (ALLOWED_FORMATS, as PIL names them; anything
else is 415 naming what it is), PIL's decompression-bomb pixel limit (413), and a file PIL cannot
decode (400 naming the problem). EXIF orientation is applied, as seglab's readers do, so the masks
drawn on the page fit the image `seglab train` reads back.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

# PIL format name -> the file suffix a saved copy keeps
ALLOWED_FORMATS = {"PNG": ".png", "JPEG": ".jpg", "GIF": ".gif", "BMP": ".bmp", "TIFF": ".tif", "WEBP": ".webp"}
ALLOWED_TEXT = ", ".join(ALLOWED_FORMATS)


class UploadError(Exception):
    """An upload the server refuses: `status` (HTTP) and `message` (shown in the page)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


@dataclass
class DecodedImage:
    rgb: np.ndarray  # uint8 [H, W, 3], EXIF orientation applied
    data: bytes  # the file as uploaded (saved unchanged next to its masks)
    format: str  # PIL's name: PNG, JPEG, ...

    @property
    def suffix(self) -> str:
        return ALLOWED_FORMATS[self.format]


def check_size(size: int, max_mb: float, name: str) -> None:
    if size > max_mb * 2**20:
        raise UploadError(413, f"{name}: file is {size / 2**20:.2f} MB; uploads are limited to {max_mb:g} MB "
                               f"(max_upload_mb=...)")


def decode_image(data: bytes, name: str, max_mb: float) -> DecodedImage:
    """The image in `data` (the bytes of the file called `name`), checked against the limits."""
    check_size(len(data), max_mb, name)
    if not data:
        raise UploadError(400, f"{name}: file is empty (0 bytes)")
    kind = "image"
    try:
        with Image.open(io.BytesIO(data)) as image:
            kind = image.format
            if kind not in ALLOWED_FORMATS:
                raise UploadError(415, f"{name}: a {kind} image; the page takes {ALLOWED_TEXT}")
            rgb = np.asarray(ImageOps.exif_transpose(image).convert("RGB"))
    except UnidentifiedImageError:
        raise UploadError(415, f"{name}: not an image file ({describe_bytes(data)}); the page takes "
                               f"{ALLOWED_TEXT}") from None
    except Image.DecompressionBombError as e:
        raise UploadError(413, f"{name}: too many pixels ({e})") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise UploadError(400, f"{name}: the {kind} file cannot be decoded ({e})") from None
    return DecodedImage(np.ascontiguousarray(rgb), data, kind)


def describe_bytes(data: bytes) -> str:
    """What a file that is not an image looks like, for the message: 'starts with b"%PDF-1.4"'."""
    head = data[:8]
    return f"it starts with {head!r}"
