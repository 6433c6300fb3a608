"""Shared blocks and architecture details: unpooling, bilinear transposed convs, FCN skips, the models mode."""
import pytest
import torch
import torch.nn.functional as F

from seglab.config import make_config
from seglab.models import MODELS
from seglab.models.blocks import GemmConv2d, max_unpool, transposed_upsampler


def test_max_unpool_matches_torch():
    x = torch.randn(2, 3, 8, 12)
    pooled, indices = F.max_pool2d(x, 2, return_indices=True)
    ours = max_unpool(pooled, indices, x.shape[-2:])
    assert torch.equal(ours, F.max_unpool2d(pooled, indices, 2, output_size=x.shape[-2:]))
    assert (ours != 0).sum() == pooled.numel()  # bed of nails: one value per pooling window


@pytest.mark.parametrize("factor", [2, 8, 32])
def test_transposed_upsampler_starts_as_bilinear(factor):
    x = torch.randn(1, 2, 6, 7)
    up = transposed_upsampler(2, factor)(x)
    reference = F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False)
    assert up.shape == reference.shape
    inner = (slice(None), slice(None), slice(factor, -factor), slice(factor, -factor))
    torch.testing.assert_close(up[inner], reference[inner], atol=1e-5, rtol=1e-4)


def test_fcn_starts_as_the_paper_says():
    """Skip scores start at zero (16s/8s begin as their coarser parent); upsampling starts bilinear."""
    torch.manual_seed(0)
    fcn8 = MODELS["fcn8s"](num_classes=3, encoder="resnet18", decoder_channels=16).eval()
    assert len(fcn8.score_skips) == 2 and all((s.weight == 0).all() and (s.bias == 0).all() for s in fcn8.score_skips)
    fcn32 = MODELS["fcn32s"](num_classes=3, encoder="resnet18", decoder_channels=16).eval()
    x = torch.randn(1, 3, 128, 128)
    with torch.no_grad():
        coarse = fcn32.fc(fcn32.encoder(x)[-1])
        reference = F.interpolate(coarse, scale_factor=32, mode="bilinear", align_corners=False)
        ours = fcn32(x)
    torch.testing.assert_close(ours[..., 32:-32, 32:-32], reference[..., 32:-32, 32:-32], atol=1e-4, rtol=1e-4)


def test_pix2pix_uses_the_tutorial_taps_and_stages():
    model = MODELS["pix2pix"](num_classes=3)
    assert model.encoder.taps == ["features.2.conv.0", "features.4.conv.0", "features.7.conv.0",
                                  "features.14.conv.0", "features.17.conv.2"]
    assert [stage[0].out_channels for stage in model.up_stack] == [512, 256, 128, 64]
    assert all(stage[0].stride == (2, 2) and stage[0].kernel_size == (3, 3) for stage in model.up_stack)
    assert model.last.stride == (2, 2) and model.last.out_channels == 3


def test_setr_interpolates_position_embeddings():
    model = MODELS["setr_naive"](num_classes=2, encoder="vit_tiny_16").eval()
    assert model.encoder.position_embedding(14, 14).shape == model.encoder.encoder.pos_embedding.shape
    torch.testing.assert_close(model.encoder.position_embedding(14, 14), model.encoder.encoder.pos_embedding)
    assert model.encoder.position_embedding(5, 9).shape[1] == 1 + 45


def test_deeplab_atrous_rates_follow_output_stride():
    for stride, rates in [(16, [6, 12, 18]), (8, [12, 24, 36])]:
        model = MODELS["deeplabv3plus"](num_classes=2, encoder="resnet18", output_stride=stride)
        assert [b[0].dilation[0] for b in model.aspp.branches[1:4]] == rates
        assert model.encoder.reductions[-1] == stride


def test_segnet_refuses_encoders_without_indices():
    with pytest.raises(ValueError, match="max-pooling indices"):
        MODELS["segnet"](num_classes=2, encoder="resnet18")


def test_models_mode_lists_every_model(capsys):
    from seglab.modes import MODES

    rows = MODES["models"](make_config())
    out = capsys.readouterr().out
    from seglab.models import TASK_MODELS

    assert [(row["task"], row["model"]) for row in rows] == [(t, m) for t, r in TASK_MODELS.items() for m in r]
    assert all(name in out for name in MODELS) and "GFLOPs" in out and "efficientnet_lite0" in out
    assert all("error" not in row and row["params"] > 0 for row in rows)  # instance models too (params, no meta FLOPs)
    by_name = {row["model"]: row for row in rows}
    assert by_name["unet"]["gflops"] == pytest.approx(24.15, abs=0.1)  # width 32 U-Net, as in PERF_NOTES
    assert 134 < by_name["fcn8s"]["params"] < 135  # VGG16 FCN with 4096-wide fc6/fc7
    assert by_name["segformer"]["encoder"] == "mit_b0"


@pytest.mark.parametrize("kernel, padding, dilation, bias, size", [
    (7, 3, 1, True, (4, 4)), (3, (1, 2), (1, 2), False, (5, 9)), ((3, 5), 0, 1, True, (6, 7)),
    (3, 1, 1, True, (1, 1))])
def test_gemm_conv_matches_conv2d_forward_and_gradients(kernel, padding, dilation, bias, size):
    torch.manual_seed(0)
    reference = torch.nn.Conv2d(6, 5, kernel, padding=padding, dilation=dilation, bias=bias).double()
    gemm = GemmConv2d(6, 5, kernel, padding=padding, dilation=dilation, bias=bias).double()
    gemm.load_state_dict(reference.state_dict())
    x = torch.randn(3, 6, *size, dtype=torch.float64)
    outs, grads = [], []
    for conv, layout in ((reference, torch.contiguous_format), (gemm, torch.channels_last)):
        xi = x.clone().to(memory_format=layout).requires_grad_(True)
        out = conv(xi)
        (out * torch.linspace(-1, 1, out.numel(), dtype=torch.float64).view_as(out)).sum().backward()
        outs.append(out)
        grads.append([xi.grad] + [p.grad for p in conv.parameters()])
    assert outs[0].shape == outs[1].shape
    torch.testing.assert_close(outs[1], outs[0])
    for ours, theirs in zip(grads[1], grads[0]):
        torch.testing.assert_close(ours, theirs)


def test_gemm_conv_is_the_plain_convolution_without_gradients(monkeypatch):
    conv = GemmConv2d(4, 3, 7, padding=3)
    monkeypatch.setattr(F, "unfold", lambda *a, **k: pytest.fail("the inference path must not unfold"))
    with torch.no_grad():
        out = conv(torch.randn(1, 4, 5, 5))
    assert out.shape == (1, 3, 5, 5)
    assert set(conv.state_dict()) == set(torch.nn.Conv2d(4, 3, 7).state_dict())


def test_fcn_trains_fc6_as_a_gemm():
    model = MODELS["fcn8s"](num_classes=3, decoder_channels=16)
    assert isinstance(model.fc[0], GemmConv2d)
