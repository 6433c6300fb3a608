"""The query model under onnxruntime: forward_raw (what panoptic / instance export) and the semantic scores."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torch import nn

from seglab.models.query import MaskFormerPanoptic, MaskFormerSemantic

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

TINY = {"encoder": "mobilenet_v2", "num_queries": 6, "decoder_channels": 64}


@pytest.fixture(autouse=True)
def one_thread():
    """Small ops: one thread is faster than two competing for a shared CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class Raw(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model.forward_raw(x)


def images(*shape, seed=1):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def test_forward_raw_matches_onnxruntime_at_several_sizes(tmp_path):
    torch.manual_seed(0)
    model = MaskFormerPanoptic(3, [False, True, True], **TINY).eval()
    path = tmp_path / "raw.onnx"
    names = list(model.raw_outputs)
    axes = {"images": {0: "batch", 2: "height", 3: "width"}, names[0]: {0: "batch"},
            names[1]: {0: "batch", 2: "mask_height", 3: "mask_width"}}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(Raw(model).eval(), (torch.zeros(1, 3, 64, 64),), str(path), dynamo=False, opset_version=17,
                          input_names=["images"], output_names=names, dynamic_axes=axes)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for shape in [(1, 3, 64, 64), (2, 3, 96, 64), (1, 3, 67, 101)]:
        x = images(*shape)
        with torch.no_grad():
            want = [t.numpy() for t in model.forward_raw(x)]
        got = session.run(names, {"images": x.numpy()})
        assert got[0].shape == (shape[0], 6, 4) and got[1].shape == want[1].shape
        padded = [-(-s // model.multiple) * model.multiple // model.mask_stride for s in shape[2:]]
        assert list(got[1].shape[2:]) == padded
        for g, w in zip(got, want):
            assert np.abs(g - w).max() <= 1e-4 * max(1.0, float(np.abs(w).max())), shape
    # the postprocess reads onnxruntime's outputs as it reads PyTorch's
    x = images(1, 3, 67, 101)
    from_onnx = model.postprocess(tuple(torch.from_numpy(a) for a in session.run(names, {"images": x.numpy()})),
                                  (67, 101))
    with torch.no_grad():
        from_torch = model(x)
    assert torch.equal(from_onnx[0]["segment_ids"], from_torch[0]["segment_ids"])


def test_semantic_scores_export_through_seglab_export(tmp_path):
    from seglab.export import export_onnx

    torch.manual_seed(0)
    model = MaskFormerSemantic(4, **TINY).eval()
    path = export_onnx(model, tmp_path / "semantic.onnx", input_size=(64, 64))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for shape in [(1, 3, 64, 64), (1, 3, 45, 77)]:
        x = images(*shape)
        with torch.no_grad():
            want = model(x).numpy()
        got = session.run(None, {"images": x.numpy()})[0]
        assert got.shape == (1, 4, *shape[2:])
        np.testing.assert_allclose(np.exp(got).sum(1), 1.0, atol=1e-4)
        assert np.abs(np.exp(got) - np.exp(want)).max() <= 1e-4
