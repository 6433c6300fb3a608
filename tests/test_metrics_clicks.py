"""Clicker, click session and NoC / NoF / mIoU@k on hand-made cases with known answers."""
import numpy as np
import pytest
from scipy import ndimage

from seglab.metrics.clicks import Click, ClickEvaluator, mask_iou, next_click, number_of_clicks, run_click_session
from seglab.metrics.evaluator import Evaluator


def rect(h, w, y0, x0, y1, x1):
    m = np.zeros((h, w), bool)
    m[y0:y1, x0:x1] = True
    return m


def disk(h, w, cy, cx, r):
    yy, xx = np.mgrid[:h, :w]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


def test_first_click_is_the_centre_most_object_pixel():
    gt = rect(9, 9, 1, 1, 8, 8)                  # 7x7 square: unique centre
    assert next_click(gt, np.zeros_like(gt)) == Click(4, 4, True)
    gt = rect(9, 10, 2, 1, 7, 8)                 # 5x7: (4,3), (4,4), (4,5) are all 3 px deep; first in row-major
    assert next_click(gt, np.zeros_like(gt)) == Click(4, 3, True)


def test_image_border_counts_as_boundary():
    gt = rect(7, 12, 0, 0, 7, 6)                 # touches the top, bottom and left border
    # padded: 3 px deep at (2,2) first; unpadded the farthest pixel from the background would be column 0
    assert next_click(gt, np.zeros_like(gt)) == Click(2, 2, True)


def test_negative_click_on_the_larger_false_positive():
    gt = rect(12, 20, 2, 2, 6, 6)
    pred = gt | rect(12, 20, 2, 9, 11, 18)       # a 9x9 false-positive block, 5 px deep
    pred[3, 3] = False                           # a 1-pixel miss, 1 px deep
    assert next_click(gt, pred) == Click(6, 13, False)
    tie = gt & ~rect(12, 20, 3, 3, 4, 4)         # FN 1 px deep
    tie |= rect(12, 20, 9, 9, 10, 10)            # FP 1 px deep: a tie goes to the negative click
    assert next_click(gt, tie).is_positive is False


def test_clicked_pixels_are_skipped_and_perfect_masks_end_the_session():
    gt = rect(9, 9, 1, 1, 8, 8)
    first = next_click(gt, np.zeros_like(gt))
    second = next_click(gt, np.zeros_like(gt), clicked=[first])
    assert second != first and second.is_positive
    assert next_click(gt, gt) is None


def test_ignored_pixels_are_never_clicked():
    gt = rect(10, 10, 0, 0, 10, 5)
    ignore = rect(10, 10, 0, 0, 10, 3)
    click = next_click(gt, np.zeros_like(gt), ignore=ignore)
    assert click.x >= 3 and click.is_positive
    assert mask_iou(gt, rect(10, 10, 0, 3, 10, 5), ignore) == 1.0


def test_clicker_matches_brute_force_farthest_pixel():
    rng = np.random.default_rng(0)
    for _ in range(10):
        gt = ndimage.binary_opening(rng.random((24, 24)) > 0.4)
        pred = ndimage.binary_opening(rng.random((24, 24)) > 0.4)
        fn, fp = gt & ~pred, pred & ~gt
        # brute force: for each error pixel, the distance to the nearest non-error pixel or outside the image
        def depth(region):
            outside = [(y, x) for y in range(-1, 25) for x in range(-1, 25)
                       if not (0 <= y < 24 and 0 <= x < 24) or not region[y, x]]
            pts = np.array(outside)
            return {(y, x): float(np.sqrt(((pts - (y, x)) ** 2).sum(1)).min()) for y, x in zip(*np.nonzero(region))}
        d_fn, d_fp = depth(fn), depth(fp)
        best_fn, best_fp = max(d_fn.values(), default=0.0), max(d_fp.values(), default=0.0)
        click = next_click(gt, pred)
        if best_fn == 0 and best_fp == 0:
            assert click is None
            continue
        expected = d_fn if best_fn > best_fp else d_fp
        top = min(p for p, v in expected.items() if v == max(expected.values()))
        assert (click.y, click.x) == top and click.is_positive == (best_fn > best_fp)


def components_model(gt):
    """Fake model: the truth components containing a positive click."""
    labels, _ = ndimage.label(gt)

    def predict(clicks, prev_logits):
        ids = {labels[c.y, c.x] for c in clicks if c.is_positive} - {0}
        mask = np.isin(labels, list(ids))
        return mask, mask.astype(np.float32)
    return predict


def test_session_with_two_blobs():
    big, small = rect(20, 30, 2, 2, 10, 10), rect(20, 30, 14, 20, 17, 23)
    gt = big | small
    session = run_click_session(components_model(gt), gt, max_clicks=5)
    assert session["clicks"][:2] == [Click(5, 5, True), Click(15, 21, True)]   # centres of the big then the small blob
    assert session["ious"][0] == pytest.approx(64 / 73) and session["ious"][1] == 1.0
    assert len(session["ious"]) == 2             # nothing left to click on a perfect mask
    ev = ClickEvaluator(max_clicks=5)
    ev.process({"id": "blobs"}, session)
    out = ev.evaluate()
    assert out["noc_85"] == 1 and out["noc_90"] == 2 and out["nof_90"] == 0
    assert out["miou_at_1"] == pytest.approx(64 / 73) and out["miou_at_5"] == 1.0


GT8 = rect(12, 20, 2, 2, 10, 10)                 # 8x8 object
LEAK = rect(12, 20, 4, 10, 7, 13)                # 3x3 block the model adds until a negative click


def leaky_model(clicks, prev_logits):
    negatives = [c for c in clicks if not c.is_positive]
    return (GT8.copy() if negatives else GT8 | LEAK), prev_logits


def test_session_with_a_negative_click():
    session = run_click_session(leaky_model, GT8, max_clicks=20)
    assert session["clicks"][0].is_positive and session["clicks"][1] == Click(5, 11, False)   # the block's centre
    assert session["ious"] == pytest.approx([64 / 73, 1.0])


def test_growing_disk_model_noc():
    h = w = 25
    gt = disk(h, w, 12, 12, 6)

    def predict(clicks, prev_logits):               # a disk of radius 2 per click around the first click
        c = clicks[0]
        return disk(h, w, c.y, c.x, 2 * len(clicks)), None
    session = run_click_session(predict, gt, max_clicks=20)
    area = {r: int(disk(h, w, 12, 12, r).sum()) for r in (2, 4, 6)}
    assert area == {2: 13, 4: 49, 6: 113}
    assert session["clicks"][0] == Click(12, 12, True)
    assert session["ious"][:3] == pytest.approx([13 / 113, 49 / 113, 1.0])
    ev = ClickEvaluator()
    ev.process(None, session)
    out = ev.evaluate()
    assert out["noc_85"] == out["noc_90"] == 3 and out["miou_at_3"] == 1.0


def test_a_model_that_never_gets_there_costs_max_clicks():
    gt = rect(16, 16, 2, 2, 14, 14)
    session = run_click_session(lambda clicks, logits: (rect(16, 16, 2, 2, 4, 4), logits), gt, max_clicks=6)
    assert len(session["ious"]) == 6
    ev = ClickEvaluator(max_clicks=6, miou_clicks=(1, 3))
    assert isinstance(ev, Evaluator)
    ev.process(None, session)
    out = ev.evaluate()
    assert out["noc_85"] == 6 and out["nof_85"] == 1 and out["nof_90"] == 1


def test_stop_iou_ends_the_session_early():
    assert len(run_click_session(leaky_model, GT8, stop_iou=0.85)["ious"]) == 1     # 64/73 = 0.877
    assert len(run_click_session(leaky_model, GT8, stop_iou=0.9)["ious"]) == 2


def test_evaluator_hand_cases():
    ev = ClickEvaluator(max_clicks=20)
    ev.process({"id": "a"}, {"ious": [0.5, 0.86, 0.91]})
    ev.process({"id": "b"}, {"ious": [0.2] * 20})
    ev.process({"id": "c"}, {"ious": [0.1] * 19 + [0.95]})   # reached at the last click: NoC 20, not a failure
    out = ev.evaluate()
    assert out["noc_85"] == pytest.approx((2 + 20 + 20) / 3) and out["noc_90"] == pytest.approx((3 + 20 + 20) / 3)
    assert out["nof_85"] == 1 and out["nof_90"] == 1
    assert out["miou_at_1"] == pytest.approx((0.5 + 0.2 + 0.1) / 3)
    assert out["miou_at_5"] == pytest.approx((0.91 + 0.2 + 0.1) / 3)   # "a" stopped at 3 clicks: keeps 0.91
    assert [r["noc_90"] for r in out["per_object"]] == [3, 20, 20] and out["per_object"][0]["id"] == "a"
    assert number_of_clicks([0.9], 0.9, 20) == 1
    ev.reset()
    assert ev.evaluate()["noc_85"] is None
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        ev.process(None, {"ious": [1.5]})
    with pytest.raises(KeyError, match="ious"):
        ev.process(None, {"masks": []})
