"""The query model's Hungarian matching: assignment, costs, boxes and point sampling, against independent computations."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torchvision.ops import masks_to_boxes

from seglab.models.query.matcher import (
    BOX_POINTS,
    Points,
    cost_matrix,
    hungarian,
    matching_points,
    sample_points,
    segment_boxes,
)

WEIGHTS = {"class": 2.0, "mask": 5.0, "dice": 5.0}


def brute_force(cost: np.ndarray) -> float:
    """The least total cost of any assignment of min(Q, M) distinct pairs."""
    q, m = cost.shape
    if q >= m:
        return min(sum(cost[r, c] for c, r in enumerate(rows)) for rows in itertools.permutations(range(q), m))
    return min(sum(cost[r, c] for r, c in enumerate(cols)) for cols in itertools.permutations(range(m), q))


@pytest.mark.parametrize("shape", [(1, 1), (3, 3), (5, 5), (6, 3), (3, 6), (7, 4)])
def test_hungarian_matches_brute_force(shape):
    rng = np.random.default_rng(sum(shape))
    for _ in range(5):
        cost = torch.from_numpy(rng.normal(size=shape)).float()
        rows, cols = hungarian(cost)
        assert len(rows) == min(shape) and len(set(rows.tolist())) == len(rows) and len(set(cols.tolist())) == len(cols)
        assert float(cost[rows, cols].sum()) == pytest.approx(brute_force(cost.numpy()), abs=1e-5)


def test_hungarian_of_no_segments_is_empty():
    rows, cols = hungarian(torch.zeros(4, 0))
    assert rows.numel() == cols.numel() == 0


def random_masks(m: int, size: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    masks = torch.zeros(m, size, size, dtype=torch.bool)
    for i in range(m):
        y, x = torch.randint(0, size - 4, (2,), generator=g).tolist()
        h, w = torch.randint(2, 8, (2,), generator=g).tolist()
        masks[i, y:y + h, x:x + w] = True
    return masks


def test_segment_boxes_agree_with_torchvision():
    masks = random_masks(6, 24, seed=3)
    masks[2, 0, 23] = True  # a second blob: the box spans both
    want = masks_to_boxes(masks).long() + torch.tensor([0, 0, 1, 1])  # torchvision: inclusive max pixel
    assert torch.equal(segment_boxes(masks), want)
    assert segment_boxes(torch.zeros(1, 5, 7, dtype=torch.bool)).tolist() == [[0, 0, 7, 5]]


def test_points_read_the_truth_and_skip_void():
    masks = random_masks(3, 32, seed=5)
    valid = torch.ones(32, 32, dtype=torch.bool)
    valid[:, :8] = False
    points = sample_points({"masks": masks, "valid": valid}, 64, torch.Generator().manual_seed(0))
    x, y = points.xy[..., 0], points.xy[..., 1]
    assert points.xy.shape == (3, 64, 2) and int(x.min()) >= 0 and int(x.max()) < 32 and int(y.max()) < 32
    assert torch.equal(points.values, masks[torch.arange(3)[:, None], y, x].float())
    assert torch.equal(points.weights, (x >= 8).float())
    boxes = segment_boxes(masks)
    for i in range(3):  # the first half lies in the box grown by the margin
        x0, y0, x1, y1 = boxes[i].tolist()
        half = points.xy[i, :32]
        assert (half[:, 0] >= x0 - max(2, (x1 - x0) // 4) - 1).all() and (half[:, 0] <= x1 + max(2, (x1 - x0) // 4)).all()
        assert points.values[i].sum() > 0  # the segment itself is sampled, however small


def direct_cost(class_logits, mask_logits, labels, points: Points) -> torch.Tensor:
    """The cost written out per pair, with logits read at the pixels (stride 1) and torch's BCE."""
    probs = class_logits.softmax(-1)
    q, m = class_logits.shape[0], len(labels)
    out = torch.zeros(q, m)
    for i in range(q):
        for j in range(m):
            xy, g, w = points.xy[j], points.values[j], points.weights[j]
            logit = mask_logits[i, xy[:, 1], xy[:, 0]]
            bce = F.binary_cross_entropy_with_logits(logit, g, weight=w, reduction="sum") / w.sum().clamp_min(1)
            p = torch.sigmoid(logit)
            dice = 1 - (2 * (p * g * w).sum() + 1) / ((p * w).sum() + (g * w).sum() + 1)
            out[i, j] = -WEIGHTS["class"] * probs[i, labels[j]] + WEIGHTS["mask"] * bce + WEIGHTS["dice"] * dice
    return out


def test_cost_matrix_equals_the_written_out_cost():
    torch.manual_seed(0)
    q, k, size = 5, 3, 20
    masks = random_masks(4, size, seed=7)
    labels = torch.tensor([0, 2, 1, 2])
    valid = torch.rand(size, size) > 0.1
    points = matching_points({"masks": masks, "valid": valid}, 40)
    class_logits, mask_logits = torch.randn(q, k + 1), torch.randn(q, size, size) * 3
    got = cost_matrix(class_logits, mask_logits, labels, points, (size, size), WEIGHTS)
    want = direct_cost(class_logits, mask_logits, labels, points.per_segment())
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)


def test_matching_points_are_shared_and_sample_every_segment():
    masks = random_masks(5, 48, seed=9)
    valid = torch.ones(48, 48, dtype=torch.bool)
    valid[:4] = False
    points = matching_points({"masks": masks, "valid": valid}, 32, torch.Generator().manual_seed(1))
    assert points.xy.shape == (32 + 5 * BOX_POINTS, 2)
    x, y = points.xy[:, 0], points.xy[:, 1]
    assert torch.equal(points.values, masks[:, y, x].float())
    assert torch.equal(points.weights, (y >= 4).float())
    boxes = segment_boxes(masks)
    for i in range(5):  # segment i's own points lie in its grown box
        own = points.xy[32 + i * BOX_POINTS: 32 + (i + 1) * BOX_POINTS]
        x0, y0, x1, y1 = boxes[i].tolist()
        margin = max(2, (x1 - x0) // 4) + 1
        assert (own[:, 0] >= x0 - margin).all() and (own[:, 0] <= x1 + margin).all()


def test_matching_recovers_the_queries_that_predict_each_segment():
    size, k = 24, 3
    masks = random_masks(3, size, seed=11)
    labels = torch.tensor([1, 0, 2])
    order = [4, 0, 2]  # segment j is predicted by query order[j]; queries 1 and 3 predict nothing
    class_logits = torch.full((5, k + 1), -4.0)
    class_logits[:, k] = 4.0
    mask_logits = torch.full((5, size, size), -6.0)
    for j, q in enumerate(order):
        class_logits[q, labels[j]], class_logits[q, k] = 4.0, -4.0
        mask_logits[q][masks[j]] = 6.0
    points = matching_points({"masks": masks, "valid": torch.ones(size, size, dtype=torch.bool)}, 64)
    rows, cols = hungarian(cost_matrix(class_logits, mask_logits, labels, points, (size, size), WEIGHTS))
    assert dict(zip(cols.tolist(), rows.tolist())) == dict(enumerate(order))
