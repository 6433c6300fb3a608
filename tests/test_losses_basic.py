"""build_loss contract: specs, registry errors, autocast bf16, channels_last, all-ignored."""
import pytest
import torch

from seglab.losses import LOSSES, WeightedSumLoss, build_loss

SPECS = ["ce", "dice", "focal", "tversky", "lovasz", "ce+dice", {"ce": 0.5, "dice": 0.5}, "0.3*ce+0.7*lovasz",
         "{ce: 1.0, focal: {weight: 0.5, gamma: 3}}"]


@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize("num_classes", [1, 4])
def test_forward_backward_bf16_channels_last(spec, num_classes):
    torch.manual_seed(0)
    loss_fn = build_loss(spec, num_classes, ignore_index=255)
    logits = torch.randn(2, num_classes, 9, 11, requires_grad=True)
    target = torch.randint(0, max(num_classes, 2), (2, 9, 11))
    target[0, :3] = 255
    reference = loss_fn(logits, target)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        x = torch.nn.functional.conv2d(logits.to(memory_format=torch.channels_last),
                                       torch.eye(num_classes).view(num_classes, num_classes, 1, 1))
        assert x.dtype == torch.bfloat16
        value = loss_fn(x, target)
    assert value.dtype == torch.float32 and value.dim() == 0 and torch.isfinite(value)
    value.backward()
    assert torch.isfinite(logits.grad).all()
    assert value.item() == pytest.approx(reference.item(), rel=0.05, abs=0.02)


@pytest.mark.parametrize("name", list(LOSSES))
def test_all_ignored_is_zero_with_grad(name):
    loss_fn = build_loss(name, 3)
    logits = torch.randn(2, 3, 4, 4, requires_grad=True)
    value = loss_fn(logits, torch.full((2, 4, 4), 255))
    value.backward()
    assert value.item() == 0.0 and torch.equal(logits.grad, torch.zeros_like(logits))


def test_spec_parsing_and_errors():
    loss = build_loss({"ce": 0.5, "dice": 0.25}, 3)
    assert isinstance(loss, WeightedSumLoss) and loss.weights == {"ce": 0.5, "dice": 0.25}
    logits, target = torch.randn(2, 3, 5, 5), torch.randint(0, 3, (2, 5, 5))
    expected = 0.5 * build_loss("ce", 3)(logits, target) + 0.25 * build_loss("dice", 3)(logits, target)
    assert loss(logits, target).item() == pytest.approx(expected.item(), rel=1e-6)
    assert set(loss.last_terms) == {"ce", "dice"}
    assert float(loss.last_terms["ce"]) == pytest.approx(float(build_loss("ce", 3)(logits, target)), rel=1e-6)
    assert not loss.last_terms["dice"].requires_grad
    with pytest.raises(KeyError, match="valid losses: ce, dice"):
        build_loss("ce+dise", 3)
    with pytest.raises(ValueError):
        build_loss({"ce": -1}, 3)
    with pytest.raises(ValueError):
        build_loss("ce", 3, class_weights=[1.0, 2.0])
    with pytest.raises(ValueError):
        build_loss("ce", 3)(torch.randn(1, 2, 4, 4), torch.zeros(1, 4, 4, dtype=torch.long))
