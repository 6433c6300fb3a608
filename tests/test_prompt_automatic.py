"""AutomaticMaskGenerator: point grid -> IoU / stability filters -> NMS -> COCO RLE, on a fake region backend."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from pycocotools import mask as mask_utils

from seglab.prompt import Predictor
from seglab.prompt.automatic import AutomaticMaskGenerator, point_grid, remove_small_regions, stability_score
from tests.prompt_fakes import RegionBackend, disc_image

RECORD_KEYS = {"segmentation", "area", "bbox", "predicted_iou", "point_coords", "stability_score", "crop_box"}


def iou(a, b):
    return (a & b).sum() / (a | b).sum()


def test_three_discs_give_three_distinct_rles_that_decode_to_the_discs():
    image, discs = disc_image()
    records = AutomaticMaskGenerator(RegionBackend(), points_per_side=12, points_per_batch=20).generate(image)
    assert len(records) == 3
    json.dumps(records)  # plain JSON: counts as str, numbers as Python floats / ints
    decoded = [mask_utils.decode(r["segmentation"]).astype(bool) for r in records]
    for disc in discs:
        assert max(iou(disc, d) for d in decoded) == 1.0
    for r, d in zip(records, decoded):
        assert set(r) == RECORD_KEYS
        assert r["area"] == d.sum()
        ys, xs = np.nonzero(d)
        assert r["bbox"] == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]
        x, y = r["point_coords"][0]
        assert d[int(y), int(x)], "the click that made a mask lies inside it"
        assert r["predicted_iou"] >= 0.88 and r["stability_score"] >= 0.95
        assert r["crop_box"] == [0, 0, image.shape[1], image.shape[0]]
    assert [r["area"] for r in records] == sorted((r["area"] for r in records), reverse=True)


def test_each_filter_is_what_removes_its_candidates():
    image, _ = disc_image()
    backend = RegionBackend()
    loose_stability = AutomaticMaskGenerator(backend, points_per_side=12, stability_score_thresh=0.0).generate(image)
    # the weak grown discs now pass (3 px wider: their boxes overlap the discs' below the NMS IoU)
    assert len(loose_stability) == 7  # and so does the grown background (score 0.93)
    loose_iou = AutomaticMaskGenerator(backend, points_per_side=12, pred_iou_thresh=0.4).generate(image)
    assert len(loose_iou) == 4  # + the background (score 0.5)
    no_nms = AutomaticMaskGenerator(backend, points_per_side=12, box_nms_thresh=1.0).generate(image)
    assert len(no_nms) > 3  # every click inside a disc gives its own copy


def test_binary_mask_output_and_an_image_with_nothing_to_find():
    image, _ = disc_image()
    records = AutomaticMaskGenerator(RegionBackend(), points_per_side=8, output_mode="binary_mask").generate(image)
    assert all(r["segmentation"].dtype == bool and r["segmentation"].shape == image.shape[:2] for r in records)
    flat = np.full((32, 40, 3), 7, np.uint8)  # one region touching the border: background only
    assert AutomaticMaskGenerator(RegionBackend(), points_per_side=4).generate(flat) == []
    with pytest.raises(ValueError, match="output_mode"):
        AutomaticMaskGenerator(RegionBackend(), output_mode="rle")


def test_the_generator_embeds_the_image_once_and_leaves_the_predictor_unset():
    backend = RegionBackend()
    predictor = Predictor(backend)
    AutomaticMaskGenerator(predictor, points_per_side=10, points_per_batch=7).generate(disc_image()[0])
    assert backend.embed_calls == 1 and not predictor.is_image_set


def test_point_grid_is_cell_centres_in_pixels():
    grid = point_grid(2, 10, 20)
    assert grid.tolist() == [[5, 2.5], [15, 2.5], [5, 7.5], [15, 7.5]]


def test_stability_score_is_the_iou_of_the_two_thresholded_masks():
    logits = torch.tensor([[[2.0, 0.5, -0.5, -2.0]]])
    assert stability_score(logits, 0.0, 1.0).item() == pytest.approx(1 / 3)  # inner {2}, outer {2, .5, -.5}
    assert stability_score(torch.full((1, 2, 2), -5.0), 0.0, 1.0).item() == 0.0


def test_small_region_cleanup_fills_holes_and_drops_islands():
    mask = np.zeros((20, 20), bool)
    mask[2:12, 2:12] = True
    mask[6, 6] = False  # a 1-px hole
    mask[17, 17] = True  # a 1-px island
    cleaned, changed = remove_small_regions(mask, min_area=4)
    expected = np.zeros_like(mask)
    expected[2:12, 2:12] = True
    assert changed and (cleaned == expected).all()
    again, changed = remove_small_regions(expected, 4)
    assert not changed and (again == expected).all()
    island_only = np.zeros((8, 8), bool)
    island_only[1, 1] = True
    assert remove_small_regions(island_only, 4)[0][1, 1], "the largest island stays when all are small"
