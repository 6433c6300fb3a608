"""What every instance format hands over: a split of items, each loading its image's instances lazily.

Conventions (all readers, all sizes):
- `Instances` are numpy arrays at the image's own size: `masks` bool [N, H, W], `labels` int64 [N]
  (0-based indices into the split's `classes`; there is no background entry), `iscrowd` bool [N].
- Boxes are derived from the masks, never read: xyxy float32 in pixel-edge coordinates, so a mask
  covering columns 2..5 has x1 = 2, x2 = 6 (the COCO convention: x2 = x + w). An empty mask has the
  box [0, 0, 0, 0].
- Polygons (COCO, YOLO) are rasterised by pycocotools with the same convention: a polygon corner at
  (2, 3) is the top-left corner of pixel (2, 3).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from seglab.data.io import DataError

MIN_POLYGON_POINTS = 3


@dataclass
class Instances:
    masks: np.ndarray  # bool [N, H, W]
    labels: np.ndarray  # int64 [N], 0-based class indices
    iscrowd: np.ndarray  # bool [N]
    sources: list[str] | None = None  # where each instance was read from, for messages ("annotation 17")

    def __post_init__(self):
        self.masks = np.asarray(self.masks, dtype=bool).reshape(-1, *np.shape(self.masks)[-2:])
        self.labels = np.asarray(self.labels, dtype=np.int64).reshape(-1)
        self.iscrowd = np.asarray(self.iscrowd, dtype=bool).reshape(-1)
        if not len(self.masks) == len(self.labels) == len(self.iscrowd):
            raise ValueError(f"Instances: {len(self.masks)} masks, {len(self.labels)} labels, "
                             f"{len(self.iscrowd)} iscrowd flags; they must be equal")
        if self.sources is not None and len(self.sources) != len(self.labels):
            raise ValueError(f"Instances: {len(self.sources)} sources for {len(self.labels)} instances")

    def source(self, i: int) -> str:
        return self.sources[i] if self.sources is not None else f"instance {i}"

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) of the masks."""
        return int(self.masks.shape[1]), int(self.masks.shape[2])

    @property
    def areas(self) -> np.ndarray:
        """Pixels per mask, int64 [N]."""
        return self.masks.reshape(len(self), -1).sum(axis=1).astype(np.int64)

    @property
    def boxes(self) -> np.ndarray:
        """xyxy float32 [N, 4] of each mask (pixel edges: x2 = last column + 1); zeros for an empty mask."""
        return boxes_of(self.masks)

    @classmethod
    def empty(cls, height: int, width: int) -> "Instances":
        return cls(np.zeros((0, height, width), bool), np.zeros(0, np.int64), np.zeros(0, bool))


def boxes_of(masks: np.ndarray) -> np.ndarray:
    """xyxy float32 [N, 4] boxes of bool masks [N, H, W] (pixel edges); [0, 0, 0, 0] for an empty mask."""
    boxes = np.zeros((len(masks), 4), dtype=np.float32)
    rows, cols = masks.any(axis=2), masks.any(axis=1)  # [N, H], [N, W]
    for i in np.flatnonzero(rows.any(axis=1)):
        ys, xs = np.flatnonzero(rows[i]), np.flatnonzero(cols[i])
        boxes[i] = (xs[0], ys[0], xs[-1] + 1, ys[-1] + 1)
    return boxes


@dataclass
class InstanceItem:
    """One image of a split: its file, a stable name for reports, and how to load its instances.

    `load` is a picklable callable (a functools.partial of a module-level function), so items travel
    to DataLoader workers; it raises a DataError naming the file and the annotation on bad input."""

    image: Path
    name: str  # image stem (folders) or file_name (COCO): what reports and splits/<split>.txt use
    load: Callable[[], Instances]
    image_id: int = 0  # COCO's image id; the position in the sorted listing for the other layouts
    annotation_file: Path | None = None  # the file holding this image's annotations (reports name it)
    boxes_given: np.ndarray | None = None  # COCO only: the stored bbox fields (xyxy), for verify


@dataclass
class InstanceSplit:
    name: str
    root: Path
    classes: list[str]  # class names; label i of Instances is classes[i]
    items: list[InstanceItem]
    skipped: list[tuple[Path, str]] = field(default_factory=list)  # skip_bad: (file, reason) left out
    category_ids: list[int] | None = None  # COCO: the original category id of each class (for results JSON)
    format: str = ""

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def check_masks_match(instances: Instances, image_size: tuple[int, int], path: Path, what: str = "mask") -> None:
    """A DataError naming `path` when the masks are not at the image's (width, height)."""
    width, height = image_size
    if len(instances) and instances.size != (height, width):
        got_h, got_w = instances.size
        raise DataError(f"{path}: {what} is {got_w}x{got_h} but its image is {width}x{height}")


def polygon_problem(coords) -> str | None:
    """Why a flat [x1, y1, x2, y2, ...] list is not a usable polygon, or None when it is."""
    if not isinstance(coords, (list, tuple)) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in coords):
        return "polygon must be a flat list of numbers [x1, y1, x2, y2, ...]"
    if not all(np.isfinite(coords)):
        return "polygon holds a NaN or infinite coordinate"
    if len(coords) % 2:
        return f"polygon has an odd number of coordinates ({len(coords)}); expected x, y pairs"
    if len(coords) < 2 * MIN_POLYGON_POINTS:
        return f"polygon has {len(coords) // 2} point(s); at least {MIN_POLYGON_POINTS} are needed"
    return None


def decode_rle(rle) -> np.ndarray:
    """bool [H, W] of a pycocotools RLE (pycocotools' own NumPy 2 DeprecationWarning silenced)."""
    from pycocotools import mask as coco_mask

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "__array__ implementation", DeprecationWarning)
        return coco_mask.decode(rle).astype(bool)


def rasterize_polygons(polygons: list[list[float]], height: int, width: int) -> np.ndarray:
    """bool [H, W]: the union of polygons given in pixel coordinates (already checked with polygon_problem)."""
    from pycocotools import mask as coco_mask

    rles = coco_mask.frPyObjects([[float(v) for v in p] for p in polygons], height, width)
    return decode_rle(coco_mask.merge(rles))
