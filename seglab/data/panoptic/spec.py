"""What every panoptic format hands over: a split of items, each loading its image's panoptic truth lazily.

Conventions (all readers):
- `PanopticTruth` is the canonical form of seglab/metrics/panoptic.py at the image's own size:
  `segment_ids` int64 [H, W] (0 = void: unlabelled, or outside every segment) and `segments`, a list of
  {"id", "category_id" (0-based index into the split's classes), "iscrowd"} with one entry per id in the map.
- `is_thing[c]` says whether class c has instances (things) or is one region per image (stuff).
- `category_ids[c]` is the dataset's own id of class c (COCO's 1..200 with gaps; the class index
  elsewhere), what predict's JSON writes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class PanopticTruth:
    segment_ids: np.ndarray  # int64 [H, W], 0 = void
    segments: list[dict]  # {"id", "category_id" (0-based), "iscrowd"}
    problems: list[str] = field(default_factory=list)  # what the reader tolerated (verify lists them)

    @property
    def size(self) -> tuple[int, int]:
        return int(self.segment_ids.shape[0]), int(self.segment_ids.shape[1])

    def as_target(self) -> dict:
        """The PanopticEvaluator target."""
        return {"segment_ids": self.segment_ids, "segments": self.segments}


@dataclass
class PanopticItem:
    """One image of a split: its file, a stable name, and how to load its truth.

    `load` is a picklable callable (a functools.partial of a module-level function), so items travel to
    DataLoader workers; it raises a DataError naming the file on bad input."""

    image: Path
    name: str
    load: Callable[[], PanopticTruth]
    image_id: int | str = 0
    annotation_file: Path | None = None  # the PNG / JSON holding this image's annotation (reports name it)


@dataclass
class PanopticSplit:
    name: str
    root: Path
    classes: list[str]
    is_thing: list[bool]
    items: list[PanopticItem]
    category_ids: list[int]
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    format: str = ""
    colors: list[tuple[int, int, int]] | None = None  # the dataset's class colours (COCO panoptic's), if any

    def __post_init__(self):
        if not len(self.classes) == len(self.is_thing) == len(self.category_ids):
            raise ValueError(f"PanopticSplit: {len(self.classes)} classes, {len(self.is_thing)} is_thing flags, "
                             f"{len(self.category_ids)} category ids; they must be equal")

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def compact(segment_ids: np.ndarray, segments: list[dict]) -> tuple[np.ndarray, list[dict]]:
    """Ids renumbered 1..S in the order of `segments` (0 stays void); segments without a pixel dropped."""
    segment_ids = np.asarray(segment_ids, np.int64)
    present = set(np.unique(segment_ids).tolist())
    kept = [s for s in segments if s["id"] in present and s["id"] != 0]
    lookup_from = np.array([0] + [s["id"] for s in kept], np.int64)
    order = np.argsort(lookup_from)
    position = np.searchsorted(lookup_from, segment_ids, sorter=order)
    position = np.clip(position, 0, len(lookup_from) - 1)
    found = lookup_from[order[position]] == segment_ids
    new_ids = np.where(found, order[position], 0).astype(np.int64)
    return new_ids, [{**s, "id": k} for k, s in enumerate(kept, start=1)]


# kind of finding -> problem (an image that cannot be trained on as it is; verify exits 1) or warning
SEVERITY = {"load": "problem", "listing": "problem", "missing_id": "problem", "unknown_category": "problem",
            "thing_without_instance": "problem", "empty": "warning", "overlap": "warning",
            "no_segments": "warning"}


def first_problem(truth: PanopticTruth) -> str | None:
    return next((message for kind, message in truth.problems if SEVERITY[kind] == "problem"), None)
