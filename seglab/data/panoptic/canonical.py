"""Turning stored annotations into the canonical panoptic form (segment ids + segments), inside the data layer.

The data layer may not import seglab.metrics (tests/test_layering.py), so the two conversions the readers
need live here; tests/test_panoptic_data.py checks that they agree with seglab.metrics.panoptic's
`rgb_to_id` and `from_semantic_instance`, which every layer above uses.
"""

from __future__ import annotations

import numpy as np

VOID_LABEL = 255  # semantic PNGs: unlabelled


def ids_from_rgb(rgb: np.ndarray) -> np.ndarray:
    """A COCO panoptic PNG's [H, W, 3] uint8 -> segment ids int64 [H, W] (id = R + 256 G + 256^2 B)."""
    rgb = np.asarray(rgb).astype(np.int64)
    return rgb[..., 0] + (rgb[..., 1] << 8) + (rgb[..., 2] << 16)


def segments_from_maps(category: np.ndarray, instance: np.ndarray, is_thing: list[bool]
                       ) -> tuple[np.ndarray, list[dict], int]:
    """Class map (255 void) + instance-id map -> (segment ids, segments, thing pixels without an instance).

    A stuff class is one segment whatever its instance ids; a thing class one segment per instance id > 0;
    thing pixels with instance id 0 have no instance and become void (their count is returned)."""
    category = np.asarray(category, np.int64)
    instance = np.asarray(instance, np.int64)
    thing_table = np.asarray(is_thing, bool)
    valid = category != VOID_LABEL
    thing = np.zeros(category.shape, bool)
    thing[valid] = thing_table[category[valid]]
    orphan = thing & (instance == 0)
    labelled = valid & ~orphan
    key = np.where(labelled, category * (int(instance.max(initial=0)) + 1) + np.where(thing, instance, 0), -1)
    keys, first, inverse = np.unique(key.ravel(), return_index=True, return_inverse=True)
    segment_ids = np.zeros(category.size, np.int64)
    segments = []
    for index, value in enumerate(keys):
        if value < 0:
            continue
        segments.append({"id": len(segments) + 1, "category_id": int(category.ravel()[first[index]]), "iscrowd": 0})
        segment_ids[inverse == index] = len(segments)
    return segment_ids.reshape(category.shape), segments, int(orphan.sum())


def paint_instances(masks: np.ndarray, labels: np.ndarray, iscrowd: np.ndarray, stuff_class: int = 0
                    ) -> tuple[np.ndarray, list[dict], int]:
    """Instance masks [N, H, W] (labels 0-based thing classes) on one stuff class -> (segment ids, segments,
    pixels two instances claim). Thing class k becomes class k + 1 (class 0 is the stuff); where instances
    overlap the first one keeps the pixel; everything outside every instance is the stuff segment."""
    masks = np.asarray(masks, bool)
    height, width = masks.shape[-2:]
    segment_ids = np.zeros((height, width), np.int64)
    segments = []
    shared = int((masks.sum(axis=0) > 1).sum()) if len(masks) else 0
    for k in range(len(masks)):
        free = masks[k] & (segment_ids == 0)
        if not free.any():
            continue
        segments.append({"id": len(segments) + 1, "category_id": int(labels[k]) + 1, "iscrowd": int(bool(iscrowd[k]))})
        segment_ids[free] = len(segments)
    background = segment_ids == 0
    if background.any():
        segments.append({"id": len(segments) + 1, "category_id": stuff_class, "iscrowd": 0})
        segment_ids[background] = len(segments)
    return segment_ids, segments, shared
