"""Instance test-time augmentation (seglab/inference/instance_tta.py): views mirrored back exactly, one
detection per object over the views, agreement as confidence, and the views the checkpoint trained on."""
from __future__ import annotations

import numpy as np

from seglab.config import make_config
from seglab.data.instance.spec import boxes_of
from seglab.inference.instance import InstanceOptions, InstancePredictor
from seglab.inference.instance_tta import FLIPS, merge, tta_views, unflip
from test_instance_tiling import CPU, DiscFinder, draw_discs, metadata

DISCS = [(20, 18, 7), (44, 50, 9), (16, 52, 5)]


def found(masks: np.ndarray, scores, labels) -> dict:
    return {"scores": np.asarray(scores, np.float32), "labels": np.asarray(labels),
            "boxes": boxes_of(masks).astype(np.float32), "probs": masks.astype(np.float32)}


def blob(height, width, y0, y1, x0, x1) -> np.ndarray:
    mask = np.zeros((height, width), bool)
    mask[y0:y1, x0:x1] = True
    return mask


def test_unflip_mirrors_boxes_and_masks_back_exactly():
    mask = blob(20, 30, 3, 9, 2, 13)[None]
    original = found(mask, [0.9], [0])
    for name, dims in FLIPS.items():
        flipped = found(np.flip(mask, tuple(d + 3 for d in dims)) if dims else mask, [0.9], [0])
        back = unflip(flipped, dims, 20, 30)
        np.testing.assert_array_equal(back["probs"], original["probs"], err_msg=name)
        np.testing.assert_array_equal(back["boxes"], original["boxes"], err_msg=name)


def test_merge_one_detection_per_object_agreement_as_confidence():
    a, b, c = blob(40, 40, 2, 12, 2, 12), blob(40, 40, 20, 30, 20, 32), blob(40, 40, 2, 12, 25, 35)
    shifted_a = blob(40, 40, 3, 13, 2, 12)  # the same object seen one pixel lower (box IoU 0.82)
    view1 = found(np.stack([a, b]), [0.9, 0.6], [0, 0])
    view2 = found(np.stack([shifted_a, b, c]), [0.7, 0.8, 0.4], [0, 1, 0])  # b has another class here
    out = merge([view1, view2])
    # a + shifted_a (0.8), b of class 0 alone (0.3), b of class 1 alone (0.4), c alone (0.2)
    np.testing.assert_allclose(out["scores"], [0.8, 0.4, 0.3, 0.2], rtol=1e-6)
    assert out["labels"].tolist() == [0, 1, 0, 0]
    np.testing.assert_allclose(out["probs"][0], (a.astype(np.float32) + shifted_a) / 2)
    np.testing.assert_allclose(out["boxes"][0], [2, 2.5, 12, 12.5])
    np.testing.assert_array_equal(out["probs"][3], c)


def test_merge_takes_at_most_one_detection_per_other_view():
    a = blob(30, 30, 5, 15, 5, 15)
    twin = blob(30, 30, 5, 15, 6, 15)
    out = merge([found(a[None], [0.9], [0]), found(np.stack([a, twin]), [0.8, 0.7], [0, 0])])
    np.testing.assert_allclose(out["scores"], [0.85, 0.35], rtol=1e-6)  # the twin stays a detection of its own
    empty = found(np.zeros((0, 30, 30), bool), [], [])
    assert len(merge([empty, empty])["scores"]) == 0
    nothing = found(np.zeros((1, 30, 30), bool), [0.6], [0])  # masks empty at full size: zero boxes stay apart
    np.testing.assert_allclose(merge([nothing, nothing])["scores"], [0.3, 0.3], rtol=1e-6)


def test_views_follow_the_training_augmentation():
    both = ("identity", "horizontal", "vertical", "both")
    assert tta_views({"augment": True, "augment_preset": "flips"}) == both
    assert tta_views({"augment": True, "augment_preset": "microscopy"}) == both
    assert tta_views({"augment": True, "augment_preset": "light"}) == ("identity", "horizontal")
    assert tta_views({"augment": False, "augment_preset": "flips"}) == ("identity", "horizontal")
    assert tta_views(None) == ("identity", "horizontal")
    assert InstanceOptions.from_config(make_config(tta=True)).tta


def test_a_mirror_symmetric_model_gives_the_same_instances_with_and_without_tta():
    image, _ = draw_discs(64, 72, DISCS)
    meta = {**metadata(72), "config": {"augment": True, "augment_preset": "flips"}}
    plain = InstancePredictor(DiscFinder(), CPU, InstanceOptions(), meta)
    tta = InstancePredictor(DiscFinder(), CPU, InstanceOptions(tta=True), meta)
    assert tta.views == ("identity", "horizontal", "vertical", "both") and "tta over" in tta.describe()
    a, b = plain.predict(image), tta.predict(image)
    assert len(a) == len(DISCS)
    np.testing.assert_array_equal(a.ids, b.ids)
    np.testing.assert_allclose(a.scores, b.scores, rtol=1e-6)


class LeftHalfFinder(DiscFinder):
    """Finds only the discs whose centre lies in the left half of what it is shown."""

    def forward(self, x):
        out = super().forward(x)
        for o in out:
            centre = (o["boxes"][:, 0] + o["boxes"][:, 2]) / 2
            keep = centre < x.shape[-1] / 2
            for k in o:
                o[k] = o[k][keep]
        return out


def test_an_object_one_view_alone_finds_keeps_its_share_of_the_score():
    image, _ = draw_discs(64, 72, DISCS)
    plain = InstancePredictor(LeftHalfFinder(), CPU, InstanceOptions(min_score=0.0), metadata(72)).predict(image)
    tta = InstancePredictor(LeftHalfFinder(), CPU, InstanceOptions(tta=True, min_score=0.0), metadata(72))
    merged = tta.predict(image)
    assert len(plain) == 1 and len(merged) == len(DISCS)  # the mirror image shows the right-hand discs
    every = InstancePredictor(DiscFinder(), CPU, InstanceOptions(min_score=0.0), metadata(72)).predict(image)
    np.testing.assert_allclose(merged.scores, every.scores / 2, rtol=1e-5)  # every disc in one view of two
    np.testing.assert_array_equal(merged.ids, every.ids)
    high = InstancePredictor(LeftHalfFinder(), CPU, InstanceOptions(tta=True, score_threshold=0.6 * every.scores.max(),
                                                                     min_score=0.0), metadata(72)).predict(image)
    assert len(high) == 0  # score_threshold applies to the merged score, not to each view's


def test_the_upside_down_presets_are_the_ones_that_flip_vertically():
    from torchvision.transforms import v2

    from seglab.data.instance.augment import PRESETS, VERTICAL_FLIP_PRESETS

    def steps(t):
        return [t] if not isinstance(t, v2.Compose) else [s for inner in t.transforms for s in steps(inner)]

    flipping = {name for name, build in PRESETS.items() if build(32, 32) is not None
                and any(isinstance(s, v2.RandomVerticalFlip) for s in steps(build(32, 32)))}
    assert flipping == set(VERTICAL_FLIP_PRESETS)
