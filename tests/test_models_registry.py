"""Tests generated from the model registry: every model in MODELS gets forward, odd input sizes,
save/load, deterministic eval, backward and ONNX export with onnxruntime parity.

Models are built with SMALL arguments (narrow decoders, light encoders) so the default run stays
quick; a model missing from SMALL is tested with its defaults. Backward and ONNX of the heavy
models, and every model at its default (paper-sized) arguments, are marked slow (`pytest -m slow`).
"""
import io

import numpy as np
import pytest
import torch

from seglab.config import Config
from seglab.models import MODELS, build_model, model_arguments

SMALL = {
    "unet": {"width": 8, "depth": 3},
    "unet_encoder": {"encoder": "resnet18", "decoder_channels": [32, 16, 16, 8, 8]},
    "pix2pix": {"decoder_channels": [64, 32, 16, 16], "dropout": 0.1},
    "fcn32s": {"encoder": "resnet18", "decoder_channels": 32, "dropout": 0.1},
    "fcn16s": {"encoder": "resnet18", "decoder_channels": 32},
    "fcn8s": {"encoder": "resnet18", "decoder_channels": 32},
    "segnet": {},
    "setr_naive": {"encoder": "vit_tiny_16", "decoder_channels": 32, "dropout": 0.1},
    "setr_pup": {"encoder": "vit_tiny_16", "decoder_channels": 32},
    "setr_mla": {"encoder": "vit_tiny_16", "decoder_channels": 32},
    "segformer": {"decoder_channels": 32, "dropout": 0.1},
    "deeplabv3plus": {"encoder": "resnet18", "decoder_channels": 32, "dropout": 0.1},
}
HEAVY = {"segnet"}  # backward and ONNX only with -m slow
NUM_CLASSES = 3
NAMES = list(MODELS)


def slow_if(heavy: bool):
    return [pytest.mark.slow] if heavy else []


def arguments(name: str, **extra) -> dict:
    """What `seglab train` would pass: the config's defaults, then the small overrides."""
    options = {**Config().to_dict(), **SMALL.get(name, {}), **extra}
    return model_arguments(name, NUM_CLASSES, options)


def make(name: str, seed: int = 0, **extra):
    torch.manual_seed(seed)
    return build_model(name, arguments(name, **extra))


def images(*shape, seed=1):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def test_small_arguments_name_registered_models():
    assert set(SMALL) <= set(MODELS), "SMALL names a model that is not registered"


@pytest.mark.parametrize("name", NAMES)
def test_forward_and_odd_sizes(name):
    model = make(name).eval()
    with torch.no_grad():
        for shape in [(2, 3, 64, 64), (1, 3, 97, 131), (1, 3, 33, 47)]:
            out = model(images(*shape))
            assert out.shape == (shape[0], NUM_CLASSES, *shape[2:]), (name, shape)
            assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", NAMES)
def test_save_load_round_trip(name, tmp_path):
    model = make(name, seed=3).eval()
    args = arguments(name)
    path = tmp_path / "model.pt"
    torch.save({"name": name, "args": args, "model": model.state_dict()}, path)
    saved = torch.load(path, weights_only=True)
    rebuilt = build_model(saved["name"], saved["args"], pretrained=False)
    rebuilt.load_state_dict(saved["model"])
    rebuilt.eval()
    x = images(1, 3, 64, 96)
    with torch.no_grad():
        assert torch.equal(model(x), rebuilt(x))
    assert getattr(model, "normalization", None) == getattr(rebuilt, "normalization", None)


@pytest.mark.parametrize("name", NAMES)
def test_eval_is_deterministic_and_per_sample(name):
    model = make(name).eval()
    x = images(3, 3, 64, 64)
    with torch.no_grad():
        first, second = model(x), model(x)
        alone = model(x[1:2])
    assert torch.equal(first, second)
    torch.testing.assert_close(alone, first[1:2], atol=1e-5, rtol=1e-4)  # eval: no batch statistics


@pytest.mark.parametrize("name", [pytest.param(n, marks=slow_if(n in HEAVY)) for n in NAMES])
def test_backward_reaches_every_parameter(name):
    model = make(name).train()
    x = images(2, 3, 64, 64)
    target = torch.randint(0, NUM_CLASSES, (2, 64, 64), generator=torch.Generator().manual_seed(2))
    loss = torch.nn.functional.cross_entropy(model(x), target)
    loss.backward()
    assert torch.isfinite(loss)
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f"{name}: no gradient for {missing[:5]}"


def onnx_case(name):
    marks = slow_if(name in HEAVY)
    return pytest.param(name, marks=marks)


@pytest.mark.parametrize("name", [onnx_case(n) for n in NAMES])
def test_onnx_export_matches_torch(name, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from seglab.export import export_onnx

    model = make(name).eval()
    path = export_onnx(model, tmp_path / f"{name}.onnx", input_size=(64, 64), metadata={"model": name})
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    shapes = [(2, 3, 64, 64), (1, 3, 96, 128)]
    if name != "unet":
        shapes.append((1, 3, 97, 131))
    for shape in shapes:
        x = images(*shape)
        with torch.no_grad():
            expected = model(x).numpy()
        got = session.run(None, {"images": x.numpy()})[0]
        assert got.shape == expected.shape, (name, shape)
        scale = max(1.0, float(np.abs(expected).max()))
        assert np.abs(got - expected).max() <= 1e-4 * scale, (name, shape)


def test_onnx_classic_unet_odd_size(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    from seglab.export import export_onnx

    model = make("unet").eval()
    session = ort.InferenceSession(str(export_onnx(model, tmp_path / "u.onnx", input_size=(64, 64))))
    x = images(1, 3, 97, 131)
    got = session.run(None, {"images": x.numpy()})[0]
    with torch.no_grad():
        np.testing.assert_allclose(got, model(x).numpy(), atol=1e-4)


@pytest.mark.parametrize("name", NAMES)
def test_one_and_four_input_channels(name):
    with torch.no_grad():
        for channels in (1, 4):
            model = make(name, in_channels=channels).eval()
            assert model(images(1, channels, 64, 64)).shape == (1, NUM_CLASSES, 64, 64)
            norm = getattr(model, "normalization", None)
            if norm is not None:
                assert len(norm["mean"]) == len(norm["std"]) == channels


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_default_arguments_forward(name):
    """The paper-sized defaults (VGG16 FCN with 4096-wide fc6, ViT-B/16 SETR, ResNet-50 DeepLab)."""
    torch.manual_seed(0)
    model = build_model(name, model_arguments(name, NUM_CLASSES, Config().to_dict())).eval()
    with torch.no_grad():
        assert model(images(1, 3, 97, 131)).shape == (1, NUM_CLASSES, 97, 131)
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    assert buffer.tell() > 0
