"""Panoptic FPN's fusion rule (seglab/inference/panoptic_fusion.py) on hand-made cases with known answers."""
from __future__ import annotations

import numpy as np
import pytest

from seglab.inference.panoptic_fusion import FusionOptions, fuse, fusion_classes

SIZE = (10, 10)


def box(r0, r1, c0, c1):
    """A detection mask as (block, rows, cols) covering rows r0:r1, cols c0:c1."""
    return np.ones((r1 - r0, c1 - c0), bool), slice(r0, r1), slice(c0, c1)


# semantic model classes: 0 sky (stuff), 1 road (stuff), 2 car (a thing: no stuff segment)
STUFF_OF = np.array([0, 1, -1] + [-1] * 253)


def semantic_labels():
    labels = np.zeros(SIZE, np.uint8)
    labels[5:] = 1
    labels[0, 0] = 2
    return labels


def test_classes_are_the_semantic_ones_then_missing_things():
    assert fusion_classes(["sky", "road", "car"], ["car", "person"]) == (
        ["sky", "road", "car", "person"], [False, False, True, True])


def test_instances_best_first_overlap_drops_and_free_pixels():
    dets = [(0.9, 2, box(0, 4, 0, 4)),   # 16 px
            (0.8, 2, box(2, 6, 2, 6)),   # 16 px, 4 taken (0.25): kept with its 12 free pixels
            (0.7, 3, box(0, 4, 1, 5)),   # 16 px, 14 taken (0.875 > 0.5): dropped
            (0.4, 3, box(8, 10, 8, 10))]  # below the score threshold
    out = fuse(semantic_labels(), STUFF_OF, dets, FusionOptions(0.5, 0.5, 0), SIZE)
    things = [s for s in out.segments if s["category_id"] in (2, 3)]
    assert [(s["category_id"], s["score"]) for s in things] == [(2, 0.9), (2, 0.8)]
    assert (out.segment_ids == things[0]["id"]).sum() == 16 and (out.segment_ids == things[1]["id"]).sum() == 12
    loose = fuse(semantic_labels(), STUFF_OF, dets, FusionOptions(0.5, 0.9, 0), SIZE)
    assert len([s for s in loose.segments if s["category_id"] == 3]) == 1  # 14 of 16 taken (0.875 <= 0.9): kept


def test_stuff_takes_what_instances_leave_and_small_regions_become_void():
    dets = [(0.9, 2, box(0, 4, 0, 4))]
    out = fuse(semantic_labels(), STUFF_OF, dets, FusionOptions(0.5, 0.5, 0), SIZE)
    by_cat = {s["category_id"]: s["id"] for s in out.segments}
    sky = (out.segment_ids == by_cat[0]).sum()
    assert sky == 50 - 16 and (out.segment_ids == by_cat[1]).sum() == 50
    assert out.segment_ids[0, 0] != 0  # the semantic "car" pixel is covered by the instance
    small = fuse(semantic_labels(), STUFF_OF, dets, FusionOptions(0.5, 0.5, 40), SIZE)
    assert 0 not in {s["category_id"] for s in small.segments}  # 34 sky pixels < 40: void
    assert (small.segment_ids[:5] == 0).sum() == 34
    none = fuse(semantic_labels(), STUFF_OF, [], FusionOptions(), SIZE)
    assert none.segment_ids[0, 0] == 0  # a thing class without an instance stays void


def test_bad_parameters_fail():
    with pytest.raises(ValueError, match="fusion"):
        FusionOptions(score_threshold=1.5)
