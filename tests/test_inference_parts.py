"""Conv+BN folding, test-time augmentation and input padding, each against a direct computation."""
import pytest
import torch
import torch.nn.functional as F

from seglab.models.padding import pad_to_multiple
from seglab.inference.fuse import fold_batchnorm
from seglab.inference.tta import DEFAULT_SCALES, augmented_probs, parse_scales
from seglab.models import build_model


def unet_with_real_statistics(norm="batch"):
    torch.manual_seed(0)
    model = build_model("unet", {"num_classes": 3, "width": 4, "depth": 2, "norm": norm})
    model.train()
    with torch.no_grad():  # give every BatchNorm non-trivial running statistics
        for _ in range(3):
            model(torch.randn(4, 3, 32, 32) * 2 + 1)
    return model.eval()


def test_folding_batchnorm_keeps_the_outputs():
    model = unet_with_real_statistics()
    folded, count = fold_batchnorm(model)
    assert count == 2 * (1 + 2 + 2)  # two convs per DoubleConv: stem, 2 down, 2 up
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())  # the original is untouched
    x = torch.randn(2, 3, 40, 24)
    with torch.no_grad():
        assert torch.allclose(folded(x), model(x), atol=1e-4, rtol=1e-4)


def test_folding_leaves_groupnorm_models_alone():
    folded, count = fold_batchnorm(unet_with_real_statistics("group"))
    assert count == 0


def test_tta_of_a_flip_and_scale_invariant_model_is_its_softmax():
    forward = lambda x: x[:, :2] * 3  # pixelwise: flips commute; constant images make scales exact
    x = torch.ones(2, 3, 8, 12) * torch.tensor([0.1, -0.4, 0.0]).view(1, 3, 1, 1)
    want = forward(x).softmax(1)
    assert torch.allclose(augmented_probs(forward, x, flip=True, scales=(0.75, 1, 1.25)), want, atol=1e-6)


def test_tta_averages_the_flipped_view_flipped_back():
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 4, 3, padding=1)
    x = torch.randn(2, 3, 16, 20)
    with torch.no_grad():
        want = (conv(x).softmax(1) + conv(x.flip(-1)).flip(-1).softmax(1)) / 2
        got = augmented_probs(conv, x, flip=True, scales=(1.0,))
        assert torch.allclose(got, want, atol=1e-6)
        scaled = augmented_probs(conv, x, flip=False, scales=(0.5,))
        small = conv(F.interpolate(x, size=(8, 10), mode="bilinear", align_corners=False))
        assert torch.allclose(scaled, F.interpolate(small, size=(16, 20), mode="bilinear").softmax(1), atol=1e-6)
        assert torch.allclose(augmented_probs(conv, x, True, DEFAULT_SCALES).sum(1), torch.ones(2, 16, 20), atol=1e-5)


def test_parse_scales():
    assert parse_scales(None) == DEFAULT_SCALES
    assert parse_scales([0.5, 1, 2]) == (0.5, 1.0, 2.0)
    assert parse_scales("0.75,1") == (0.75, 1.0) == parse_scales("[0.75, 1]")
    assert parse_scales(1) == (1.0,)
    for bad in ([0, 1], "a,b", []):
        with pytest.raises(ValueError, match="scales"):
            parse_scales(bad)


def test_pad_to_multiple():
    x = torch.arange(2 * 3 * 5 * 7, dtype=torch.float32).view(2, 3, 5, 7)
    assert pad_to_multiple(x, 1, skip_empty=True) is x
    assert torch.equal(pad_to_multiple(x, 1), x)  # the models' setting still emits the (empty) pad
    zeros = pad_to_multiple(x, 4, "constant")
    assert zeros.shape == (2, 3, 8, 8) and zeros[..., 5:, :].abs().sum() == 0 and zeros[..., :, 7:].abs().sum() == 0
    with pytest.raises(ValueError, match="pad mode 'wrap': expected one of replicate, reflect, constant"):
        pad_to_multiple(x, 4, "wrap")
    padded = pad_to_multiple(x, 4, "reflect")
    assert padded.shape == (2, 3, 8, 8) and torch.equal(padded[..., :5, :7], x)
    assert torch.equal(padded[..., 5, :7], x[..., 3, :])  # reflect: the row before the last
    tiny = pad_to_multiple(x[..., :2, :2], 8, "reflect")  # too short to reflect: replicate
    assert tiny.shape[-2:] == (8, 8) and torch.equal(tiny[..., 7, 1], x[..., 1, 1])
