"""Boundary F1: small hand-computed cases, ignore handling, streaming, and a brute-force cross-check."""
import math

import numpy as np
import pytest
import torch
from scipy import ndimage

from seglab.metrics import BoundaryF1, image_boundary_f1
from seglab.metrics.boundary import boundary_mask, disk_offsets

IGNORE = 255


def halves(h, w, split):
    x = np.zeros((h, w), dtype=np.int64)
    x[:, split:] = 1
    return x


def test_boundary_pixels_are_inner_and_4_connected():
    x = halves(3, 6, 3)
    b = boundary_mask(x)
    assert b[:, 2].all() and b[:, 3].all() and b.sum() == 6   # one pixel on each side, no border pixels


def test_disk_offsets_inclusive_and_nearest_first():
    off = disk_offsets(math.sqrt(2))
    assert len(off) == 9 and tuple(off[0]) == (0, 0)
    assert len(disk_offsets(0.99)) == 1


def test_identical_and_shifted_halves():
    t = halves(10, 10, 5)
    assert np.allclose(image_boundary_f1(t, t, 2), [1.0, 1.0])
    p = halves(10, 10, 6)   # boundary one column to the right
    radius1 = 1.0 / math.hypot(10, 10)
    assert np.allclose(image_boundary_f1(p, t, 2, tolerance=radius1), [1.0, 1.0])
    assert np.allclose(image_boundary_f1(p, t, 2, tolerance=0.99 * radius1), [0.0, 0.0])


def test_hand_computed_partial_match():
    # truth: class 1 from column 5; prediction: rows 0-1 as truth, rows 2-3 class 1 from column 8.
    t = halves(4, 10, 5)
    p = t.copy()
    p[2:, 5:8] = 0
    tol = 1.5 / math.hypot(4, 10)   # radius 1.5 px
    # class 0: pred boundary {(0,4),(1,4),(2,5),(2,6),(2,7),(3,7)}, 3 within 1.5 px of truth column 4 -> P = 1/2;
    #          truth column 4: all 4 within 1.5 px of the prediction ((3,4)-(2,5) is sqrt 2) -> R = 1; F1 = 2/3.
    # class 1: pred boundary {(0,5),(1,5),(1,6),(1,7),(2,8),(3,8)}: P = 3/6; truth column 5: rows 0-2 matched, R = 3/4;
    #          F1 = 0.6.
    scores = image_boundary_f1(p, t, 2, tolerance=tol)
    assert scores == pytest.approx([2 / 3, 0.6])
    bf = BoundaryF1(2, tolerance=tol)
    bf.update(torch.from_numpy(p), torch.from_numpy(t))
    out = bf.compute()
    assert out["bf"] == pytest.approx((2 / 3 + 0.6) / 2)
    assert out["bf_per_class"] == pytest.approx([2 / 3, 0.6]) and out["num_images"] == 1


def test_class_presence_rules():
    t = np.zeros((6, 6), dtype=np.int64)
    p = np.zeros((6, 6), dtype=np.int64)
    assert np.array_equal(np.isnan(image_boundary_f1(p, t, 3)), [False, True, True])
    assert image_boundary_f1(p, t, 3)[0] == 1.0          # fills the image in both: no boundary, perfect
    p[2:4, 2:4] = 2                                      # class 2 only predicted
    s = image_boundary_f1(p, t, 3)
    assert s[2] == 0.0 and np.isnan(s[1]) and s[0] == 0.0   # class 0: boundary only in the prediction
    full = np.full((6, 6), 2)
    assert np.allclose(image_boundary_f1(full, t, 3)[[0, 2]], [0.0, 0.0])   # wrong class everywhere


def test_ignored_pixels():
    t = halves(8, 8, 4)
    t[:, 4:] = IGNORE                 # right half unknown
    p = halves(8, 8, 4)               # predicts class 1 there: not a boundary, not counted
    assert np.allclose(image_boundary_f1(p, t, 2), [1.0, np.nan], equal_nan=True)
    bf = BoundaryF1(2)
    bf.update(torch.full((2, 8, 8), 0), torch.full((2, 8, 8), IGNORE))
    assert bf.compute()["bf"] is None and bf.compute()["num_images"] == 0


def test_streaming_merge_and_2d():
    gen = torch.Generator().manual_seed(0)
    low = torch.randint(0, 4, (6, 1, 4, 4), generator=gen).float()
    t = torch.nn.functional.interpolate(low, size=(32, 32), mode="nearest")[:, 0].long()
    p = torch.roll(t, 1, dims=2)
    whole, a, b = BoundaryF1(4), BoundaryF1(4), BoundaryF1(4)
    whole.update(p, t)
    for i in range(3):
        a.update(p[i], t[i])
    b.update(p[3:], t[3:])
    a.merge(b)
    got, want = a.compute(), whole.compute()
    assert got["bf"] == pytest.approx(want["bf"]) and got["num_images"] == want["num_images"] == 6
    assert got["bf_per_class"] == pytest.approx(want["bf_per_class"])
    with pytest.raises(ValueError):
        a.merge(BoundaryF1(4, tolerance=0.01))


def brute_force(pred, target, c, tol):
    """Independent reference: per-class masks, scipy erosion-free boundaries, exact EDT distances."""
    valid = target != IGNORE
    radius = tol * math.hypot(*target.shape)
    out = np.full(c, np.nan)
    for k in range(c):
        in_t, in_p = ((target == k) & valid).any(), ((pred == k) & valid).any()
        if not (in_t or in_p):
            continue
        if not (in_t and in_p):
            out[k] = 0.0
            continue
        bounds = []
        for lab in (target, pred):
            m = (lab == k) & valid
            other = (lab != k) & valid
            near_other = ndimage.binary_dilation(other, structure=ndimage.generate_binary_structure(2, 1))
            bounds.append(m & near_other)
        bt, bp = bounds
        if not bt.any() and not bp.any():
            out[k] = 1.0
        elif not bt.any() or not bp.any():
            out[k] = 0.0
        else:
            precision = (ndimage.distance_transform_edt(~bt)[bp] <= radius + 1e-9).mean()
            recall = (ndimage.distance_transform_edt(~bp)[bt] <= radius + 1e-9).mean()
            out[k] = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
    return out


@pytest.mark.parametrize("seed", range(6))
def test_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    c = 5
    low = rng.integers(0, c, (6, 8))
    t = np.kron(low, np.ones((7, 6), dtype=np.int64))
    p = np.roll(t, (rng.integers(-2, 3), rng.integers(-2, 3)), axis=(0, 1))
    p[rng.random(p.shape) < 0.05] = rng.integers(0, c)
    t[rng.random(t.shape) < 0.05] = IGNORE
    tol = float(rng.choice([0.0075, 0.02, 0.05]))
    np.testing.assert_allclose(image_boundary_f1(p, t, c, tolerance=tol), brute_force(p, t, c, tol), atol=1e-12)
