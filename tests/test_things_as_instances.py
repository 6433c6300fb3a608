"""Thing segments of a panoptic map scored as instances (seglab/tasks/panoptic/things_as_instances.py)."""

import numpy as np
import pytest

from seglab.metrics.instance import InstanceEvaluator
from seglab.tasks.panoptic.things_as_instances import ThingsAsInstances, as_instances

IS_THING = [False, True, True]  # background (stuff), cell, blob
NAMES = ["background", "cell", "blob"]


def disc_map(centres, radius=6, size=64, first_id=2):
    """segment_ids with background id 1 and one disc per centre; segments (category: 1 then 2 alternating)."""
    yy, xx = np.mgrid[:size, :size]
    ids = np.ones((size, size), np.int64)
    segments = [{"id": 1, "category_id": 0, "iscrowd": 0}]
    for k, (cy, cx) in enumerate(centres):
        sid = first_id + k
        ids[(yy - cy) ** 2 + (xx - cx) ** 2 <= radius ** 2] = sid
        segments.append({"id": sid, "category_id": 1 + k % 2, "iscrowd": 0, "score": 0.9 - 0.1 * k})
    return {"segment_ids": ids, "segments": segments}


CENTRES = [(10, 10), (10, 40), (40, 20), (50, 50)]


def test_stuff_is_left_out_and_labels_count_things_only():
    truth = disc_map(CENTRES)
    inst = as_instances(truth["segment_ids"], truth["segments"], [1, 2], with_scores=False)
    assert inst["masks"].shape == (4, 64, 64)
    assert inst["labels"].tolist() == [0, 1, 0, 1]
    assert not inst["iscrowd"].any()


def test_perfect_prediction_scores_one():
    scorer = ThingsAsInstances(IS_THING, NAMES)
    scorer.process(disc_map(CENTRES), disc_map(CENTRES))
    result = scorer.evaluate()
    assert result["mask_ap"] == pytest.approx(1.0)
    assert result["match_accuracy_50"] == pytest.approx(1.0)
    assert set(result["mask_ap_per_class"]) == {"cell", "blob"}


def test_a_missed_and_a_shifted_thing_match_the_instance_evaluator():
    truth = disc_map(CENTRES)
    pred = disc_map([(10, 10), (10, 43), (40, 20)], first_id=7)  # one shifted 3 px, one missing
    scorer = ThingsAsInstances(IS_THING, NAMES)
    scorer.process(truth, pred)
    got = scorer.evaluate()
    assert got["matching"]["fn"][0] == 1 and got["matching"]["fp"][0] == 0
    assert got["match_accuracy_50"] == pytest.approx(3 / 4)

    direct = InstanceEvaluator(2, score_threshold=0.0, max_detections=1000)
    yy, xx = np.mgrid[:64, :64]
    masks = lambda cs: np.stack([(yy - y) ** 2 + (xx - x) ** 2 <= 36 for y, x in cs])  # noqa: E731
    direct.process({"masks": masks(CENTRES), "labels": np.array([0, 1, 0, 1])},
                   {"masks": masks([(10, 10), (10, 43), (40, 20)]), "labels": np.array([0, 1, 0]),
                    "scores": np.array([0.9, 0.8, 0.7])})
    want = direct.evaluate()
    assert got["mask_ap"] == pytest.approx(want["mask_ap"])
    assert got["matching"]["accuracy"] == pytest.approx(want["matching"]["accuracy"])


def test_no_thing_classes_gives_none():
    scorer = ThingsAsInstances([False, False], ["sky", "road"])
    scorer.process(disc_map([]), disc_map([]))
    assert scorer.evaluate() is None
