"""seglab.prompt.export_onnx: SAM's image encoder and prompt decoder as ONNX, equal to PyTorch on onnxruntime."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from seglab.prompt import OnnxSamBackend, Predictor, export_onnx
from seglab.prompt.sam_official import build_sam

pytest.importorskip("segment_anything")
pytest.importorskip("onnxruntime")

SMALL = {"encoder": "vit", "embed_dim": 64, "depth": 2, "num_heads": 2, "global_attn_indexes": [1]}


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("sam_onnx")
    torch.save(build_sam(SMALL).state_dict(), folder / "small.pth")
    torch_predictor = Predictor(folder / "small.pth", device="cpu")
    paths = export_onnx(torch_predictor, folder / "onnx")
    return torch_predictor, Predictor(OnnxSamBackend(paths["encoder"], paths["decoder"])), paths


def test_onnx_encoder_and_decoder_equal_pytorch(pair):
    torch_predictor, onnx_predictor, _ = pair
    image = np.random.default_rng(1).integers(0, 256, (40, 56, 3), dtype=np.uint8)  # landscape: padded rows
    torch_predictor.set_image(image)
    onnx_predictor.set_image(image)
    np.testing.assert_allclose(onnx_predictor.get_image_embedding().features,
                               torch_predictor.get_image_embedding().features.numpy(), atol=1e-4)
    points, labels = np.array([[10.3, 20.7], [40.0, 5.0]], np.float32), np.array([1, 0])
    low_res = None
    for prompt, multimask in (({"point_coords": points, "point_labels": labels}, True),
                              ({"box": np.array([5, 6, 50, 30], np.float32)}, False),
                              ({"mask_input": np.ones((1, 256, 256), np.float32)}, True)):
        if low_res is not None and "mask_input" not in prompt:
            prompt = {**prompt, "mask_input": low_res}
        got = onnx_predictor.predict(**prompt, multimask_output=multimask, return_logits=True)
        want = torch_predictor.predict(**prompt, multimask_output=multimask, return_logits=True)
        assert got[0].shape == want[0].shape
        for a, b in zip(got, want):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-4)
        low_res = got[2][:1]


def test_onnx_decoder_takes_a_batch_of_prompts(pair):
    torch_predictor, onnx_predictor, _ = pair
    image = np.random.default_rng(2).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    torch_predictor.set_image(image)
    onnx_predictor.set_image(image)
    boxes = np.array([[1, 1, 20, 20], [5, 8, 30, 31], [0, 0, 31, 31]], np.float32)
    got, want = onnx_predictor.predict_batch(boxes=boxes), torch_predictor.predict_batch(boxes=boxes)
    assert got[0].shape == (3, 3, 32, 32)
    np.testing.assert_allclose(got[1], want[1], atol=1e-4)
    assert (got[0] == want[0]).mean() > 0.999  # thresholded masks: a logit within 1e-4 of 0 may flip


def test_export_refuses_what_it_cannot_export_and_missing_files_are_named(tmp_path):
    from tests.prompt_fakes import RegionBackend

    with pytest.raises(TypeError, match="exports SAM / MobileSAM backends"):
        export_onnx(RegionBackend(), tmp_path)
    with pytest.raises(FileNotFoundError, match="nope.onnx: ONNX file not found"):
        OnnxSamBackend(tmp_path / "nope.onnx", tmp_path / "nope.onnx")
