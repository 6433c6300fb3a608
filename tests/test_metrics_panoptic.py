"""Panoptic quality: hand-computed cases of panopticapi's rules, converters, and a torchmetrics cross-check."""
import json

import numpy as np
import pytest
import torch

from seglab.metrics.evaluator import Evaluator
from seglab.metrics.panoptic import (PanopticEvaluator, from_semantic_instance, id_to_rgb, image_pq_counts,
                                     rgb_to_id, segments_info, to_semantic_instance)

VOID = 255
# classes: 0 person (thing), 1 car (thing), 2 sky (stuff)
IS_THING = [True, True, False]


def panoptic(cat, inst=None):
    cat = np.asarray(cat)
    segment_ids, segments = from_semantic_instance(cat, np.zeros_like(cat) if inst is None else inst, IS_THING, VOID)
    return {"segment_ids": segment_ids, "segments": segments}


def scene(h=20, w=20):
    """Sky everywhere, a 10x10 person at the top left."""
    cat = np.full((h, w), 2)
    cat[0:10, 0:10] = 0
    return cat


def evaluate(*pairs, is_thing=IS_THING):
    ev = PanopticEvaluator(is_thing)
    assert isinstance(ev, Evaluator)
    for target, prediction in pairs:
        ev.process(target, prediction)
    return ev.evaluate()


def test_perfect_prediction():
    t = panoptic(scene())
    out = evaluate((t, t))
    assert out["pq"] == out["sq"] == out["rq"] == 1.0
    assert out["pq_things"] == 1.0 and out["pq_stuff"] == 1.0 and out["num_classes"] == 2
    assert out["per_class"]["pq"] == [1.0, None, 1.0]   # car absent: undefined, left out of the means
    json.dumps(out)


def test_wrong_class_is_a_false_negative_and_a_false_positive():
    p = scene()
    p[0:10, 0:10] = 1
    out = evaluate((panoptic(scene()), panoptic(p)))
    assert out["per_class"]["fn"] == [1, 0, 0] and out["per_class"]["fp"] == [0, 1, 0]
    assert out["per_class"]["pq"][:2] == [0.0, 0.0]
    assert out["pq_things"] == 0.0 and out["num_classes_things"] == 2


def test_match_needs_iou_above_one_half():
    t = scene()
    half = np.full((20, 20), 2)
    half[0:10, 0:5] = 0                 # person IoU 50 / 100 = 0.5: not a match
    out = evaluate((panoptic(t), panoptic(half)))
    assert out["per_class"]["tp"][0] == 0 and out["per_class"]["fn"][0] == 1 and out["per_class"]["fp"][0] == 1
    six = np.full((20, 20), 2)
    six[0:10, 0:6] = 0                  # IoU 60 / 100
    out = evaluate((panoptic(t), panoptic(six)))
    assert out["per_class"]["sq"][0] == pytest.approx(0.6) and out["per_class"]["rq"][0] == 1.0
    # sky: truth 300 px, prediction 340 px, overlap 300 -> IoU 300 / 340
    assert out["per_class"]["sq"][2] == pytest.approx(300 / 340)


def test_truth_void_leaves_the_union():
    t = scene()
    t[10:20, 0:10] = VOID               # void right below the person
    p = scene()
    p[0:20, 0:10] = 0                   # the person spills over the whole void region
    out = evaluate((panoptic(t), panoptic(p)))
    # person: |pred| 200 + |truth| 100 - |both| 100 - |pred on void| 100 -> IoU 1 (0.5 if void counted)
    assert out["per_class"]["tp"][0] == 1 and out["per_class"]["sq"][0] == pytest.approx(1.0)


def test_prediction_mostly_on_void_is_not_a_false_positive():
    t = scene()
    t[12:20, 12:20] = VOID
    for on_void, extra_fp in ((6, 0), (5, 1)):   # a 10-pixel car with 6 (ignored) or 5 (false positive) pixels on void
        p = scene()
        p[12, 12:12 + on_void] = 1
        p[11, 12:12 + 10 - on_void] = 1
        out = evaluate((panoptic(t), panoptic(p)))
        assert out["per_class"]["fp"][1] == extra_fp, on_void


def test_crowd_regions():
    cat = scene()
    cat[10:20, 10:20] = 0               # a crowd of people at the bottom right
    seg = panoptic(cat, inst=np.where(np.arange(20)[None, :] >= 10, 2, 1) * (cat == 0))
    crowd_id = int(seg["segment_ids"][15, 15])
    for s in seg["segments"]:
        s["iscrowd"] = int(s["id"] == crowd_id)
    person = scene()
    person[12:18, 12:18] = 0            # a second person predicted inside the crowd: ignored
    two = np.zeros_like(person)
    two[12:18, 12:18] = 1
    out = evaluate((seg, panoptic(person, two)))
    assert out["per_class"]["fp"][0] == 0 and out["per_class"]["fn"][0] == 0 and out["per_class"]["tp"][0] == 1
    car = scene()
    car[12:18, 12:18] = 1               # another class inside the crowd: a false positive
    out = evaluate((seg, panoptic(car)))
    assert out["per_class"]["fp"][1] == 1
    seg_no_crowd = {**seg, "segments": [{**s, "iscrowd": 0} for s in seg["segments"]]}
    out = evaluate((seg_no_crowd, panoptic(person, two)))
    assert out["per_class"]["fn"][0] == 1 and out["per_class"]["fp"][0] == 1   # without the flag: missed + spurious


def test_things_and_stuff_averages():
    t = scene()
    t[12:18, 12:18] = 0                 # a second person
    inst = np.zeros_like(t)
    inst[12:18, 12:18] = 1
    p = scene()
    p[0:10, 0:6] = 0                    # first person IoU 0.6, second missed
    p[0:10, 6:10] = 2
    out = evaluate((panoptic(t, inst), panoptic(p)))
    rq = 1 / (1 + 0.5)
    assert out["per_class"]["pq"][0] == pytest.approx(0.6 * rq)
    sky = (400 - 100 - 36) / (400 - 60)  # truth sky 264 px, predicted 340 px covering it
    assert out["pq_stuff"] == pytest.approx(sky)
    assert out["pq"] == pytest.approx((0.6 * rq + sky) / 2) and out["pq_things"] == pytest.approx(0.6 * rq)


def test_streaming_sums_counts_and_merge():
    a, b = panoptic(scene()), panoptic(np.full((20, 20), 2))
    one = PanopticEvaluator(IS_THING)
    one.process(a, a)
    one.process(a, b)
    other = PanopticEvaluator(IS_THING)
    other.process(a, a)
    both = PanopticEvaluator(IS_THING)
    both.process(a, b)
    both.merge(other)
    assert one.evaluate() == both.evaluate()
    out = one.evaluate()
    assert out["per_class"]["tp"][0] == 1 and out["per_class"]["fn"][0] == 1 and out["num_images"] == 2
    one.reset()
    assert one.evaluate()["pq"] is None


def test_png_ids_round_trip_and_formula():
    ids = np.array([[0, 1, 256], [65536, 256 ** 3 - 1, 1000]])
    rgb = id_to_rgb(ids)
    assert rgb.dtype == np.uint8 and tuple(rgb[0, 2]) == (0, 1, 0) and tuple(rgb[1, 0]) == (0, 0, 1)
    assert np.array_equal(rgb_to_id(rgb), ids)
    with pytest.raises(ValueError, match="256"):
        id_to_rgb(np.array([[256 ** 3]]))


def test_converters_and_segments_info():
    cat = np.array([[2, 2, 0, 0], [2, 2, 0, 0], [VOID, 1, 0, 0]])
    inst = np.array([[5, 6, 1, 1], [7, 8, 2, 2], [0, 3, 2, 2]])
    ids, segments = from_semantic_instance(cat, inst, IS_THING, VOID)
    by_cat = sorted((s["category_id"], int((ids == s["id"]).sum())) for s in segments)
    assert by_cat == [(0, 2), (0, 4), (1, 1), (2, 4)]   # stuff instance ids ignored, people 1 and 2 apart
    assert ids[2, 0] == 0
    back_cat, back_inst = to_semantic_instance(ids, segments, VOID, IS_THING)
    assert np.array_equal(back_cat, cat) and (back_inst[cat == 2] == 0).all()
    info = segments_info(ids, {s["id"]: s["category_id"] for s in segments})
    person2 = next(s for s in info if s["area"] == 4 and s["category_id"] == 0)
    assert person2["bbox"] == [2, 1, 2, 2] and person2["iscrowd"] == 0
    with pytest.raises(KeyError, match="no category"):
        segments_info(ids, {})


def test_bad_input_names_the_problem():
    t = panoptic(scene())
    with pytest.raises(ValueError, match="not in segments"):
        image_pq_counts(t, {"segment_ids": t["segment_ids"], "segments": t["segments"][:1]}, 3)
    with pytest.raises(ValueError, match="outside"):
        bad = [{**s, "category_id": 7} for s in t["segments"]]
        image_pq_counts(t, {"segment_ids": t["segment_ids"], "segments": bad}, 3)
    with pytest.raises(KeyError, match="segments"):
        image_pq_counts(t, {"segment_ids": t["segment_ids"]}, 3)


def random_maps(rng, h=48, w=48, num_classes=6, void=True):
    cell = 8
    coarse = rng.integers(0, num_classes, size=(h // cell, w // cell))
    cat = np.kron(coarse, np.ones((cell, cell), np.int64))
    inst = np.kron(rng.integers(1, 4, size=(h // cell * 2, w // cell * 2)), np.ones((cell // 2, cell // 2), np.int64))
    if void:
        y, x = rng.integers(0, h - 10, size=2)
        cat[y:y + int(rng.integers(2, 10)), x:x + int(rng.integers(2, 10))] = VOID
    return cat, inst


def perturb(rng, cat, inst, num_classes):
    p_cat = np.roll(cat, tuple(rng.integers(-3, 4, size=2)), axis=(0, 1))
    p_inst = np.roll(inst, tuple(rng.integers(-2, 3, size=2)), axis=(0, 1))
    for _ in range(3):                   # relabel a few blocks
        y, x = rng.integers(0, cat.shape[0] - 6, size=2)
        p_cat[y:y + 6, x:x + 6] = rng.integers(num_classes)
    p_cat[p_cat == VOID] = rng.integers(num_classes)   # predictions carry no void
    return p_cat, p_inst


@pytest.mark.parametrize("seed", range(4))
def test_against_torchmetrics_panoptic_quality(seed):
    from torchmetrics.detection import PanopticQuality
    rng = np.random.default_rng(seed)
    is_thing = [True, True, True, False, False, False]   # 3 thing and 3 stuff classes
    things, stuffs = [0, 1, 2], [3, 4, 5]
    tm = PanopticQuality(things=things, stuffs=stuffs, return_sq_and_rq=True, return_per_class=True)
    tm_avg = PanopticQuality(things=things, stuffs=stuffs, return_sq_and_rq=True)
    ev = PanopticEvaluator(is_thing)
    for _ in range(5):
        cat, inst = random_maps(rng)
        p_cat, p_inst = perturb(rng, cat, inst, 6)
        t_ids, t_segs = from_semantic_instance(cat, inst, is_thing, VOID)
        p_ids, p_segs = from_semantic_instance(p_cat, p_inst, is_thing, VOID)
        ev.process({"segment_ids": t_ids, "segments": t_segs}, {"segment_ids": p_ids, "segments": p_segs})
        preds = torch.from_numpy(np.stack([p_cat, p_inst], -1))[None]
        target = torch.from_numpy(np.stack([cat, inst], -1))[None]   # category 255 is unknown -> void
        tm.update(preds, target)
        tm_avg.update(preds, target)
    ours = ev.evaluate()
    per_class = tm.compute().double()                    # [C, 3]: pq, sq, rq
    for k in range(6):
        if ours["per_class"]["pq"][k] is not None:
            for j, name in enumerate(("pq", "sq", "rq")):
                assert ours["per_class"][name][k] == pytest.approx(float(per_class[k, j]), abs=1e-6), (name, k)
    pq, sq, rq = tm_avg.compute().tolist()
    assert (ours["pq"], ours["sq"], ours["rq"]) == pytest.approx((pq, sq, rq), abs=1e-6)
    for suffix, group in (("_things", things), ("_stuff", stuffs)):
        defined = [k for k in group if ours["per_class"]["pq"][k] is not None]
        assert ours["pq" + suffix] == pytest.approx(float(per_class[defined, 0].mean()), abs=1e-6)
    assert sum(ours["per_class"]["tp"]) > 0 and sum(ours["per_class"]["fp"]) > 0   # not a trivial case


def test_instance_and_panoptic_evaluators_side_by_side():
    from seglab.metrics.evaluator import EvaluatorGroup
    from seglab.metrics.instance import InstanceEvaluator
    cat = scene()
    seg = panoptic(cat)
    person = (cat == 0)[None]
    target = {**seg, "masks": person, "labels": [0]}
    prediction = {**seg, "masks": person, "scores": [0.9], "labels": [0]}
    group = EvaluatorGroup({"instance": InstanceEvaluator(3), "panoptic": PanopticEvaluator(IS_THING)})
    group.process(target, prediction)
    out = group.evaluate()
    assert set(out) == {"instance", "panoptic"}
    assert out["instance"]["mask_ap"] == pytest.approx(1.0) and out["panoptic"]["pq"] == 1.0
    group.reset()
    assert group.evaluate()["panoptic"]["num_images"] == 0 and group.evaluate()["instance"]["num_images"] == 0
    with pytest.raises(TypeError, match="lacks"):
        EvaluatorGroup({"bad": object()})
