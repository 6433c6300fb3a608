"""export_onnx: dynamic batch/height/width, metadata, and the model left as it was."""
import json

import numpy as np
import pytest
import torch

from seglab.export import export_onnx
from seglab.models import MODELS

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return MODELS["segformer"](num_classes=4, decoder_channels=16)


def test_dynamic_axes_metadata_and_model_untouched(model, tmp_path):
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    meta = {"classes": ["bg", "a", "b", "c"], "normalization": model.normalization, "arch": "segformer"}
    path = export_onnx(model, tmp_path / "sub" / "m.onnx", input_size=(64, 64), metadata=meta)
    assert model.training and all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto)
    props = {p.key: p.value for p in proto.metadata_props}
    assert props["arch"] == "segformer" and json.loads(props["classes"]) == meta["classes"]
    assert json.loads(props["normalization"]) == model.normalization
    dims = [d.dim_param for d in proto.graph.input[0].type.tensor_type.shape.dim]
    assert proto.graph.input[0].name == "images" and dims == ["batch", "", "height", "width"]
    assert proto.graph.output[0].name == "logits"
    assert proto.opset_import[0].version == 17
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = torch.randn(3, 3, 40, 72)
    with torch.no_grad():
        expected = model.eval()(x).numpy()
    np.testing.assert_allclose(session.run(None, {"images": x.numpy()})[0], expected, atol=1e-4)


def test_single_channel_input(tmp_path):
    model = MODELS["unet_encoder"](num_classes=2, in_channels=1, encoder="mobilenet_v2",
                                   decoder_channels=8).eval()
    session = ort.InferenceSession(str(export_onnx(model, tmp_path / "g.onnx", input_size=(32, 32))))
    x = torch.randn(1, 1, 50, 30)
    with torch.no_grad():
        np.testing.assert_allclose(session.run(None, {"images": x.numpy()})[0], model(x).numpy(), atol=1e-4)
