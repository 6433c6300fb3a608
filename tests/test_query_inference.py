"""MaskFormer's inference rules on hand-made outputs: semantic scores, panoptic segments, instances."""
from __future__ import annotations

import math

import torch

from seglab.models.query.inference import instances, panoptic, semantic_log_probs

BIG = 8.0  # a mask logit far from the 0.5 threshold


def logits_for(probs: list[list[float]]) -> torch.Tensor:
    """Class logits [Q, K + 1] whose softmax is `probs` (rows summing to 1)."""
    return torch.tensor(probs).log()


def box_mask(size, y0, y1, x0, x1) -> torch.Tensor:
    m = torch.full(size, -BIG)
    m[y0:y1, x0:x1] = BIG
    return m


def test_semantic_scores_are_a_distribution_and_the_weighted_sum_of_masks():
    torch.manual_seed(0)
    class_logits, mask_logits = torch.randn(2, 6, 4), torch.randn(2, 6, 8, 10) * 2
    out = semantic_log_probs(class_logits, mask_logits, 1, (7, 9))
    assert out.shape == (2, 3, 7, 9)
    torch.testing.assert_close(out.exp().sum(1), torch.ones(2, 7, 9))
    p = class_logits.softmax(-1)
    for n, c, y, x in [(0, 0, 0, 0), (1, 2, 6, 8), (0, 1, 3, 4)]:  # score(c, x) = sum_q p_q(c) m_q(x), normalised
        raw = [sum(float(p[n, q, k] * torch.sigmoid(mask_logits[n, q, y, x])) for q in range(6)) for k in range(3)]
        assert math.isclose(float(out[n, c, y, x].exp()), raw[c] / sum(raw), rel_tol=1e-4)


def test_semantic_scores_resize_to_the_input_and_keep_the_argmax():
    class_logits = logits_for([[0.9, 0.05, 0.05], [0.05, 0.9, 0.05]])[None]
    masks = torch.stack([box_mask((4, 4), 0, 4, 0, 2), box_mask((4, 4), 0, 4, 2, 4)])[None]
    out = semantic_log_probs(class_logits, masks, 4, (13, 15))  # stride 4: 16 x 16 padded, cut to 13 x 15
    labels = out.argmax(1)[0]
    assert out.shape == (1, 2, 13, 15) and (labels[:, :7] == 0).all() and (labels[:, 9:] == 1).all()


def test_panoptic_segments_of_hand_made_queries():
    size = (8, 8)
    is_thing = [False, True, True]  # class 0 stuff, 1 and 2 things
    probs = [[0.95, 0.02, 0.02, 0.01],  # q0: stuff 0 on the left half
             [0.02, 0.95, 0.02, 0.01],  # q1: thing 1, a square on the right
             [0.02, 0.02, 0.6, 0.36],  # q2: thing 2, not confident enough (0.6 < 0.8): dropped
             [0.01, 0.01, 0.01, 0.97],  # q3: no object
             [0.02, 0.92, 0.05, 0.01],  # q4: thing 1, a second instance at the bottom right
             [0.9, 0.05, 0.04, 0.01]]  # q5: stuff 0 again (top right strip): merged with q0
    masks = torch.stack([box_mask(size, 0, 8, 0, 4), box_mask(size, 1, 4, 5, 8), box_mask(size, 0, 8, 0, 8),
                         box_mask(size, 0, 8, 0, 8), box_mask(size, 5, 8, 5, 8), box_mask(size, 0, 1, 4, 8)])
    out = panoptic(logits_for(probs), masks, 1, size, is_thing, object_threshold=0.8, overlap_threshold=0.8)
    ids, segments = out["segment_ids"], out["segments"]
    by_category = sorted((s["category_id"], int((ids == s["id"]).sum())) for s in segments)
    assert by_category == [(0, 32 + 4), (1, 9), (1, 9)]  # one stuff segment (merged), two thing instances
    stuff = next(s for s in segments if s["category_id"] == 0)
    assert (ids[:, :4] == stuff["id"]).all() and (ids[0, 4:] == stuff["id"]).all()
    assert (ids[4, 4:] == 0).all() and (ids[1:, 4] == 0).all()  # no kept query covers these: void
    for s in segments:
        assert 0 < s["score"] <= 1 and s["iscrowd"] == 0
    assert len({s["id"] for s in segments}) == len(segments) and 0 not in {s["id"] for s in segments}


def test_panoptic_overlap_rule_drops_a_query_mostly_covered_by_a_better_one():
    size = (6, 6)
    probs = [[0.02, 0.97, 0.01],  # q0: thing, the whole left 6 x 4
             [0.02, 0.85, 0.13]]  # q1: thing, 6 x 3 overlapping q0 on 2 of its 3 columns: keeps 1/3 < 0.8
    masks = torch.stack([box_mask(size, 0, 6, 0, 4), box_mask(size, 0, 6, 2, 5)])
    out = panoptic(logits_for(probs), masks, 1, size, [False, True], object_threshold=0.8, overlap_threshold=0.8)
    assert len(out["segments"]) == 1 and int((out["segment_ids"] > 0).sum()) == 24
    kept = panoptic(logits_for(probs), masks, 1, size, [False, True], object_threshold=0.8, overlap_threshold=0.3)
    assert len(kept["segments"]) == 2  # a lower overlap threshold keeps its remaining column


def test_panoptic_with_no_confident_query_is_all_void():
    out = panoptic(logits_for([[0.1, 0.1, 0.8]]), box_mask((4, 4), 0, 4, 0, 4)[None], 1, (4, 4), [False, True],
                   object_threshold=0.8, overlap_threshold=0.8)
    assert out["segments"] == [] and (out["segment_ids"] == 0).all()


def test_instances_score_is_class_prob_times_mean_mask_prob():
    size = (10, 10)
    probs = [[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.05, 0.05, 0.9], [0.5, 0.3, 0.2]]
    masks = torch.stack([box_mask(size, 0, 4, 0, 4), box_mask(size, 5, 9, 5, 10), box_mask(size, 0, 10, 0, 10),
                         torch.full(size, -BIG)])  # q3: an empty mask, no instance
    masks[0, 0, 0] = 0.5  # one weaker pixel inside q0 (sigmoid 0.62)
    out = instances(logits_for(probs), masks, 1, size, [True, True], score_threshold=0.0, max_detections=10)
    inside = torch.sigmoid(masks[0])[torch.sigmoid(masks[0]) >= 0.5].mean()
    want = {1: 0.8 * float(torch.sigmoid(torch.tensor(BIG))), 0: 0.7 * float(inside), 2: 0.05 * float(torch.sigmoid(torch.tensor(BIG)))}
    scores = out["scores"].tolist()
    assert scores == sorted(scores, reverse=True) and len(scores) == 3  # q3 (empty) is no instance
    expected = sorted(want.values(), reverse=True)
    assert all(math.isclose(a, b, rel_tol=1e-5) for a, b in zip(scores, expected))
    assert out["labels"].tolist() == [2, 1, 1]  # 1-based: q1 class 1, q0 class 0, q2 best non-void class 1 (0.05 tie: first)
    assert out["boxes"][0].tolist() == [5, 5, 10, 9] and out["masks"].shape == (3, 1, 10, 10)
    few = instances(logits_for(probs), masks, 1, size, [True, True], score_threshold=0.3, max_detections=1)
    assert len(few["scores"]) == 1 and math.isclose(float(few["scores"][0]), expected[0], rel_tol=1e-5)


def test_instances_skip_stuff_classes():
    probs = [[0.9, 0.05, 0.05], [0.05, 0.9, 0.05]]
    masks = torch.stack([box_mask((6, 6), 0, 3, 0, 3), box_mask((6, 6), 3, 6, 3, 6)])
    out = instances(logits_for(probs), masks, 1, (6, 6), [False, True], score_threshold=0.0, max_detections=5)
    assert out["labels"].tolist() == [2]
