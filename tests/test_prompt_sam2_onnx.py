"""SAM 2.1 image models as encoder.onnx + decoder.onnx (seglab/prompt/sam2_onnx_export.py): onnxruntime equal to
the PyTorch Sam2Backend, and Predictor(OnnxSam2Backend) giving its masks; `seglab export task=prompt` writes them."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from seglab.prompt import Predictor
from seglab.prompt.sam2_official import Sam2Backend, build
from seglab.prompt.sam2_onnx_export import OnnxSam2Backend, export_sam2_onnx

pytest.importorskip("sam2", reason="SAM 2 export needs the official sam2 package: pip install 'seglab[sam2]'")
pytest.importorskip("onnxruntime", reason="running the exported files needs onnxruntime")
pytestmark = pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning", "ignore::UserWarning")  # tracing noise

# sam2.1_hiera_t with a shallower trunk, as tests/test_prompt_sam2.py builds it (the model's own 1024 input)
SHALLOW = ("++model.image_encoder.trunk.stages=[1,1,2,1]", "++model.image_encoder.trunk.global_att_blocks=[3]")
POINTS = np.array([[10.3, 20.7], [40.0, 5.0]], np.float32)
LABELS = np.array([1, 0])
BOX = np.array([5, 6, 50, 40], np.float32)
ATOL = 1e-4


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """(PyTorch predictor, onnxruntime predictor, export paths), both with the same 48 x 64 image set."""
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("sam2_onnx")
    torch.save({"model": build("sam2.1_hiera_t", SHALLOW).state_dict()}, folder / "sam2.1_shallow.pt")
    ours = Predictor(folder / "sam2.1_shallow.pt", device="cpu", model_type="sam2.1_hiera_t", overrides=SHALLOW)
    paths = export_sam2_onnx(ours, folder / "onnx")
    onnx = Predictor(OnnxSam2Backend(paths["encoder"], paths["decoder"]))
    image = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    ours.set_image(image)
    onnx.set_image(image)
    return ours, onnx, paths


def assert_same(got, want, image_shape):
    """masks logits [.., H, W], scores, low-res logits within ATOL; thresholded masks agree on >= 99.9% of pixels."""
    assert got[0].shape[-2:] == tuple(image_shape)
    for a, b in zip(got, want):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=0, atol=ATOL)
    assert ((got[0] > 0) == (want[0] > 0)).mean() >= 0.999


def test_export_leaves_the_model_in_eval_mode_and_the_encoder_equals_pytorch(pair):
    ours, onnx, _ = pair
    # a wrapper built in training mode made torch.onnx.export switch SAM 2 to training afterwards, which turns
    # off the mask decoder's single-mask stability fallback
    assert not any(m.training for m in ours.backend.model.modules())
    want, got = ours.get_image_embedding().features, onnx.get_image_embedding().features
    np.testing.assert_allclose(got["image_embed"], want["image_embed"].numpy(), rtol=0, atol=ATOL)
    for g, w in zip(got["high_res_feats"], want["high_res_feats"]):
        np.testing.assert_allclose(g, w.numpy(), rtol=0, atol=ATOL)
    assert [x.shape for x in got["high_res_feats"]] == [(1, 32, 256, 256), (1, 64, 128, 128)]


def test_points_box_and_mask_feedback_equal_pytorch(pair):
    ours, onnx, _ = pair
    shape = ours.original_size
    low_res = None
    for prompt, multimask in (({"point_coords": POINTS, "point_labels": LABELS}, True),
                              ({"point_coords": POINTS, "point_labels": LABELS}, False),
                              ({"box": BOX}, False),
                              ({"point_coords": POINTS, "point_labels": LABELS, "box": BOX}, True),
                              ({}, False)):  # the previous mask alone
        if low_res is not None:
            prompt = {**prompt, "mask_input": low_res}
        want = ours.predict(**prompt, multimask_output=multimask, return_logits=True)
        got = onnx.predict(**prompt, multimask_output=multimask, return_logits=True)
        assert len(got[1]) == (3 if multimask else 1)
        assert_same(got, want, shape)
        assert np.abs(got[2]).max() <= 32  # low-res logits clamped as SAM2ImagePredictor clamps them
        low_res = want[2][:1]


def test_a_batch_of_prompts_with_other_counts_than_traced(pair):
    """B = 3 prompts of N = 4 clicks + a box (7 points with the padding one; traced with B = 2, N = 3)."""
    ours, onnx, _ = pair
    rng = np.random.default_rng(1)
    points = rng.uniform(0, 48, (3, 4, 2)).astype(np.float32)
    labels = rng.integers(0, 2, (3, 4))
    boxes = np.array([[1, 1, 20, 20], [5, 8, 60, 31], [0, 0, 63, 47]], np.float32)
    for prompt in ({"boxes": boxes}, {"point_coords": points, "point_labels": labels, "boxes": boxes}):
        want = ours.predict_batch(**prompt, return_logits=True)
        got = onnx.predict_batch(**prompt, return_logits=True)
        assert got[0].shape == (3, 3, 48, 64)
        assert_same(got, want, (48, 64))


def test_predictor_over_the_files_gives_the_pytorch_masks_at_the_images_size(pair):
    ours, onnx, _ = pair
    want, _, _ = ours.predict(point_coords=POINTS, point_labels=LABELS, box=BOX)
    got, scores, low_res = onnx.predict(point_coords=POINTS, point_labels=LABELS, box=BOX)
    assert got.dtype == bool and got.shape == (3, 48, 64) and low_res.shape == (3, 256, 256)
    assert (got == want).mean() >= 0.99


def test_the_export_mode_uses_this_exporter_and_its_parity_check_passes(pair):
    from seglab.tasks.prompt.export import EXPORTERS, TOLERANCE, parity

    ours, _, paths = pair
    assert EXPORTERS[Sam2Backend].runner is OnnxSam2Backend
    report = parity(ours.backend, OnnxSam2Backend(paths["encoder"], paths["decoder"]))
    assert set(report) == {"low_res", "scores"} and max(report.values()) < TOLERANCE


def test_wrong_or_missing_files_are_named(pair, tmp_path):
    from tests.prompt_fakes import RegionBackend

    _, _, paths = pair
    with pytest.raises(TypeError, match="exports SAM 2 backends"):
        export_sam2_onnx(RegionBackend(), tmp_path)
    with pytest.raises(FileNotFoundError, match="nope.onnx: ONNX file not found"):
        OnnxSam2Backend(tmp_path / "nope.onnx", paths["decoder"])
    with pytest.raises(ValueError, match="decoder.onnx: outputs .* not a SAM 2 encoder's"):
        OnnxSam2Backend(paths["decoder"], paths["decoder"])  # a decoder given as the encoder


@pytest.mark.slow
def test_official_sam21_tiny_exports_through_seglab_export(tmp_path):
    """`seglab export task=prompt` on a full-size sam2.1_hiera_t file (random weights; its config is read from them)."""
    from seglab.config import make_config
    from seglab.modes import MODES

    torch.manual_seed(0)
    weights = tmp_path / "sam2.1_hiera_tiny.pt"
    torch.save({"model": build("sam2.1_hiera_t").state_dict()}, weights)
    out = MODES["export"](make_config({"task": "prompt", "model": str(weights), "out": str(tmp_path / "onnx"),
                                       "verbose": False}, mode="export"))
    report = json.loads((out / "export.json").read_text())
    assert report["backend"] == "sam2.1_hiera_t" and report["runner"] == "OnnxSam2Backend"
    assert max(report["parity"].values()) < 1e-3
    assert {p.name for p in out.iterdir()} >= {"encoder.onnx", "decoder.onnx", "export.json"}
