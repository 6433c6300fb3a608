"""The classic U-Net: any input size in, the same size out; the paper's size; gradients; deterministic eval."""
import pytest
import torch

from seglab.models import MODELS, build_model, model_arguments
from seglab.models.unet import UNet


def count(model):
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("upsample", ["transpose", "bilinear"])
@pytest.mark.parametrize("depth", [1, 2, 3, 4])
@pytest.mark.parametrize("size", [(33, 47), (97, 131), (16, 16), (1, 1), (5, 3)])
def test_output_size_equals_input_size(depth, upsample, size):
    torch.manual_seed(0)
    model = UNet(num_classes=3, width=2, depth=depth, upsample=upsample).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, *size))
    assert out.shape == (2, 3, *size)
    assert torch.isfinite(out).all()


def test_padding_does_not_change_an_aligned_input():
    """Pad and crop keep pixels in place: one extra row/column (33x33, padded to 40) leaves the top-left alone."""
    torch.manual_seed(0)
    model = UNet(num_classes=2, width=4, depth=3).eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        aligned = model(x)
        padded = model(torch.nn.functional.pad(x, (0, 1, 0, 1), mode="reflect"))
    assert padded.shape == (1, 2, 33, 33)
    # far from the padded border the logits agree; a crop taken from the wrong corner would be 7 pixels off
    assert torch.allclose(aligned[..., :16, :16], padded[..., :16, :16], atol=1e-4)


def test_in_channels_and_classes():
    model = UNet(num_classes=5, in_channels=1, width=4, depth=2).eval()
    assert model(torch.randn(1, 1, 20, 24)).shape == (1, 5, 20, 24)


def test_paper_size_has_31m_parameters():
    with torch.device("meta"):
        model = UNet(num_classes=2, width=64, depth=4)
    assert count(model) == pytest.approx(31.04e6, rel=0.002)


def test_width_and_depth_scale_the_size():
    with torch.device("meta"):
        small, wide, deep = UNet(3, width=8, depth=2), UNet(3, width=16, depth=2), UNet(3, width=8, depth=3)
    assert 3.5 < count(wide) / count(small) < 4.1  # convolutions grow with width squared
    assert count(deep) > 3 * count(small)


@pytest.mark.parametrize("upsample", ["transpose", "bilinear"])
def test_backward_reaches_every_parameter(upsample):
    torch.manual_seed(0)
    model = UNet(num_classes=3, width=4, depth=3, upsample=upsample)
    x = torch.randn(2, 3, 21, 19)
    target = torch.randint(0, 3, (2, 21, 19))
    loss = torch.nn.functional.cross_entropy(model(x), target)
    loss.backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), name
        assert parameter.grad.abs().sum() > 0, name


def test_eval_is_deterministic_and_batch_independent():
    torch.manual_seed(0)
    model = UNet(num_classes=3, width=4, depth=2)
    model.train()
    model(torch.randn(4, 3, 24, 24))  # move the batch-norm statistics away from their initial values
    model.eval()
    x = torch.randn(3, 3, 23, 29)
    with torch.no_grad():
        first, second = model(x), model(x)
        single = model(x[1:2])
    assert torch.equal(first, second)
    assert torch.allclose(first[1:2], single, atol=1e-5)


def test_train_mode_differs_from_eval():
    torch.manual_seed(0)
    model = UNet(num_classes=3, width=4, depth=2)
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        train_out = model.train()(x)
        eval_out = model.eval()(x)
    assert not torch.allclose(train_out, eval_out)


def test_channels_last_gives_the_same_output():
    torch.manual_seed(0)
    model = UNet(num_classes=3, width=4, depth=2).eval()
    x = torch.randn(1, 3, 19, 25)
    with torch.no_grad():
        reference = model(x)
        fast = model.to(memory_format=torch.channels_last)(x.contiguous(memory_format=torch.channels_last))
    assert torch.allclose(reference, fast, atol=1e-5)


@pytest.mark.parametrize("kwargs, message", [({"depth": 0}, "depth"), ({"width": 0}, "width"),
                                             ({"upsample": "nearest"}, "upsample='nearest'")])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        UNet(num_classes=2, **kwargs)


def test_registry_builds_unet_from_config_options():
    assert MODELS["unet"] is UNet
    args = model_arguments("unet", 4, {"width": 8, "depth": 2, "upsample": "bilinear", "epochs": 30, "lr": 0.1})
    assert args == {"num_classes": 4, "width": 8, "depth": 2, "upsample": "bilinear"}
    model = build_model("unet", args)
    assert isinstance(model, UNet) and model.head.out_channels == 4 and model.depth == 2
    with pytest.raises(KeyError, match="unknown model 'unte'. Valid models: .*unet"):
        build_model("unte", args)
