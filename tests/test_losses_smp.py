"""Losses checked against segmentation-models-pytorch and torch on random inputs and hard cases.

Known, deliberate differences (converted in the checks below):
- Dice / Tversky: seglab averages the per-class loss over classes present in the target;
  smp zeroes absent classes but divides by all C -> smp = seglab * #present / C.
- Dice smoothing: seglab uses (2 tp + s) / (2 tp + fp + fn + s); smp's (tp + s) / (tp + (fp + fn) / 2 + s)
  equals seglab's with 2 s.
- Soft cross-entropy with ignored pixels: smp divides by all pixels, seglab (like
  F.cross_entropy) by the valid ones -> smp = seglab * #valid / #pixels.
- Focal, multiclass: smp sums one-vs-rest sigmoid focal losses; seglab uses the softmax
  focal loss, so it is checked against its formula and against cross-entropy at gamma = 0;
  binary mode is checked against smp directly.
"""
import pytest
import segmentation_models_pytorch as smp
import torch
import torch.nn.functional as F

from seglab.losses import (CrossEntropyLoss, DiceLoss, FocalLoss, LovaszLoss, TverskyLoss,
                           median_frequency_weights)

IGNORE = 255
CASES = ["random", "ignored", "empty_class", "single_pixel", "one_class", "unbalanced"]


def make(case, c=4, binary=False, seed=0):
    gen = torch.Generator().manual_seed(seed + CASES.index(case))
    k = 2 if binary else c
    logits = (2 * torch.randn(2, 1 if binary else c, 12, 10, generator=gen)).requires_grad_()
    target = torch.randint(0, k, (2, 12, 10), generator=gen)
    if case == "ignored":
        target[torch.rand(target.shape, generator=gen) < 0.3] = IGNORE
    elif case == "empty_class":
        target[target == k - 1] = 0
    elif case == "single_pixel":
        target[:] = IGNORE
        target[1, 3, 4] = k - 1
    elif case == "one_class":
        target[:] = k - 1
    elif case == "unbalanced":
        target[:] = 0
        target[0, 0, :2] = k - 1
    return logits, target


def present_factor(target, k):
    valid = target[target != IGNORE]
    return len(torch.unique(valid)) / k


def close(a, b):
    assert float(a.detach()) == pytest.approx(float(b.detach()), rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("smooth", [0.0, 1.0])
def test_dice_multiclass_vs_smp(case, smooth):
    logits, target = make(case)
    ours = DiceLoss(4, ignore_index=IGNORE, smooth=2 * smooth)(logits, target)
    theirs = smp.losses.DiceLoss("multiclass", ignore_index=IGNORE, smooth=smooth)(logits, target)
    close(ours * present_factor(target, 4), theirs)
    g_ours, = torch.autograd.grad(ours * present_factor(target, 4), logits)
    g_theirs, = torch.autograd.grad(theirs, logits)
    assert torch.allclose(g_ours, g_theirs, atol=1e-6)


@pytest.mark.parametrize("case", CASES)
def test_dice_binary_vs_smp(case):
    logits, target = make(case, binary=True)
    ours = DiceLoss(1, ignore_index=IGNORE, smooth=2.0)(logits, target)
    theirs = smp.losses.DiceLoss("binary", ignore_index=IGNORE, smooth=1.0)(logits, target.unsqueeze(1))
    close(ours, theirs)


def test_dice_global_is_micro():
    logits, target = make("random")
    loss = DiceLoss(4, smooth=0.0, per_class=False)(logits, target)
    probs = logits.softmax(1)
    onehot = F.one_hot(target, 4).permute(0, 3, 1, 2).float()
    close(loss, 1 - 2 * (probs * onehot).sum() / (probs.sum() + onehot.sum()))


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("alpha,beta,gamma", [(0.3, 0.7, 1.0), (0.7, 0.3, 0.75)])
def test_tversky_vs_smp(case, alpha, beta, gamma):
    logits, target = make(case)
    kw = dict(alpha=alpha, beta=beta, smooth=1.0)
    ours = TverskyLoss(4, ignore_index=IGNORE, gamma=1.0, **kw)(logits, target)
    theirs = smp.losses.TverskyLoss("multiclass", ignore_index=IGNORE, gamma=1.0, **kw)(logits, target)
    close(ours * present_factor(target, 4), theirs)
    if present_factor(target, 4) == 1.0:   # gamma applies to the class mean: comparable when all present
        close(TverskyLoss(4, ignore_index=IGNORE, gamma=gamma, **kw)(logits, target),
              smp.losses.TverskyLoss("multiclass", ignore_index=IGNORE, gamma=gamma, **kw)(logits, target))


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("alpha,gamma", [(None, 2.0), (0.25, 2.0), (0.8, 1.0)])
def test_focal_binary_vs_smp(case, alpha, gamma):
    logits, target = make(case, binary=True)
    ours = FocalLoss(1, ignore_index=IGNORE, alpha=alpha, gamma=gamma)(logits, target)
    theirs = smp.losses.FocalLoss("binary", alpha=alpha, gamma=gamma, ignore_index=IGNORE)(logits, target)
    close(ours, theirs)


@pytest.mark.parametrize("case", CASES)
def test_focal_multiclass_formula_and_ce_limit(case):
    logits, target = make(case)
    alpha = [0.1, 0.2, 0.3, 0.4]
    ours = FocalLoss(4, ignore_index=IGNORE, alpha=alpha, gamma=2.0)(logits, target)
    valid = target != IGNORE
    t = target.masked_fill(~valid, 0)
    logpt = logits.log_softmax(1).gather(1, t.unsqueeze(1))[:, 0]
    expected = (-torch.tensor(alpha)[t] * (1 - logpt.exp()) ** 2 * logpt)[valid].mean()
    close(ours, expected)
    close(FocalLoss(4, ignore_index=IGNORE, gamma=0.0)(logits, target),
          F.cross_entropy(logits, target, ignore_index=IGNORE))


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("per_image", [False, True])
def test_lovasz_vs_smp(case, per_image):
    logits, target = make(case)
    ours = LovaszLoss(4, ignore_index=IGNORE, per_image=per_image)(logits, target)
    if per_image and case == "single_pixel":   # image 0 is all ignored: seglab skips it (smp returns an empty tensor)
        theirs = smp.losses.LovaszLoss("multiclass", ignore_index=IGNORE)(logits[1:], target[1:])
    else:
        theirs = smp.losses.LovaszLoss("multiclass", ignore_index=IGNORE, per_image=per_image)(logits, target)
    close(ours, theirs)
    g_ours, = torch.autograd.grad(ours, logits)
    logits.grad = None
    assert torch.isfinite(g_ours).all()


@pytest.mark.parametrize("case", CASES)
def test_lovasz_hinge_binary_vs_smp(case):
    logits, target = make(case, binary=True)
    ours = LovaszLoss(1, ignore_index=IGNORE)(logits, target)
    theirs = smp.losses.LovaszLoss("binary", ignore_index=IGNORE)(logits, target.unsqueeze(1))
    close(ours, theirs)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_cross_entropy_vs_torch_and_smp(case, smoothing):
    logits, target = make(case)
    weights = [0.5, 1.0, 2.0, 4.0]
    ours = CrossEntropyLoss(4, ignore_index=IGNORE, class_weights=weights, label_smoothing=smoothing)
    close(ours(logits, target), F.cross_entropy(logits, target, weight=torch.tensor(weights),
                                                ignore_index=IGNORE, label_smoothing=smoothing))
    plain = CrossEntropyLoss(4, ignore_index=IGNORE, label_smoothing=smoothing)(logits, target)
    theirs = smp.losses.SoftCrossEntropyLoss(smooth_factor=smoothing, ignore_index=IGNORE)(logits, target)
    close(plain * (target != IGNORE).float().mean(), theirs)


def test_binary_cross_entropy():
    logits, target = make("ignored", binary=True)
    valid = target != IGNORE
    loss = CrossEntropyLoss(1, ignore_index=IGNORE, class_weights=[1.0, 3.0], label_smoothing=0.2)(logits, target)
    y = target.float() * 0.8 + 0.1
    w = torch.where(target == 1, 3.0, 1.0)
    per_pixel = F.binary_cross_entropy_with_logits(logits[:, 0], y, reduction="none") * w
    close(loss, per_pixel[valid].sum() / w[valid].sum())


def test_median_frequency_weights_by_hand():
    # image 1: 3 px of class 0, 1 px of class 1; image 2: 2 px of class 0, 2 px of class 2 (+ ignored px)
    masks = [torch.tensor([[0, 0], [0, 1]]), torch.tensor([[0, 2, 255], [0, 2, 255]])]
    w = median_frequency_weights(masks, num_classes=4, ignore_index=IGNORE)
    freq = [5 / 8, 1 / 4, 2 / 4]   # class pixels / pixels of images containing the class
    med = 1 / 2
    assert w == pytest.approx([med / freq[0], med / freq[1], med / freq[2], 0.0])
    assert median_frequency_weights([torch.stack(masks[:1] * 2)], 4) == pytest.approx(
        median_frequency_weights(masks[:1] * 2, 4))
    with pytest.raises(ValueError):
        median_frequency_weights([torch.full((2, 2), 255)], 4)
