"""Official SAM / MobileSAM checkpoints through seglab.prompt: random-weight official architectures saved as
.pth, loaded by seglab, outputs equal to the official SamPredictor's on the same image and prompts."""
from __future__ import annotations

import importlib
import inspect

import numpy as np
import pytest
import torch

from seglab.prompt import Predictor
from seglab.prompt.files import PromptCheckpointError
from seglab.prompt.sam_official import SAM_ARCHITECTURES, build_sam, config_from_weights

segment_anything = pytest.importorskip("segment_anything")

SMALL = {"encoder": "vit", "embed_dim": 64, "depth": 2, "num_heads": 2, "global_attn_indexes": [1]}
POINTS = np.array([[10.3, 20.7], [40.0, 5.0]], np.float32)
LABELS = np.array([1, 0])
BOX = np.array([5, 6, 50, 40], np.float32)
PROMPTS = [{"point_coords": POINTS, "point_labels": LABELS}, {"box": BOX},
           {"point_coords": POINTS, "point_labels": LABELS, "box": BOX}]
CUDA = [pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA"))]


@pytest.fixture(scope="module")
def small_sam(tmp_path_factory):
    torch.manual_seed(0)
    model = build_sam(SMALL)
    path = tmp_path_factory.mktemp("sam") / "sam_small.pth"
    torch.save(model.state_dict(), path)
    return model, path


@pytest.fixture(scope="module")
def image():
    return np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)


def assert_same(ours, official, atol=0.0):
    for got, want in zip(ours, official):
        np.testing.assert_allclose(got.astype(np.float32), want.astype(np.float32), rtol=0, atol=atol)


@pytest.mark.parametrize("device", ["cpu", *CUDA])
def test_small_sam_equals_the_official_predictor(small_sam, image, device):
    model, path = small_sam
    ours = Predictor(path, device=device)  # architecture read from the weights' shapes
    official = segment_anything.SamPredictor(model.to(device))
    ours.set_image(image)
    official.set_image(image)
    assert ours.backend.name == "sam_custom"
    (points, box, both), low_res = PROMPTS, None  # few decodes: each is ~0.3 s on 2 idle cores
    for prompt, multimask, logits in ((points, True, True), (box, False, False), (both, True, False)):
        if low_res is not None:
            prompt = {**prompt, "mask_input": low_res}  # the previous answer fed back
        first = ours.predict(**prompt, multimask_output=multimask, return_logits=logits)
        assert_same(first, official.predict(**prompt, multimask_output=multimask, return_logits=logits))
        low_res = first[2][:1]
    model.to("cpu")


def test_batched_prompts_equal_looping_single_prompts(small_sam, image):
    predictor = Predictor(small_sam[1], device="cpu")
    predictor.set_image(image)
    boxes = np.array([[5, 6, 50, 40], [0, 0, 20, 20], [30, 10, 63, 47]], np.float32)
    points = np.array([[[10, 20], [40, 5]], [[3, 3], [30, 30]], [[60, 40], [1, 1]]], np.float32)
    labels = np.array([[1, 0], [1, 1], [1, -1]])
    batched = predictor.predict_batch(point_coords=points, point_labels=labels, boxes=boxes, return_logits=True)
    for b in range(3):
        single = predictor.predict(point_coords=points[b], point_labels=labels[b], box=boxes[b], return_logits=True)
        assert_same([x[b] for x in batched], single, atol=1e-4)
    only_boxes = predictor.predict_batch(boxes=boxes[:2], multimask_output=False)
    assert only_boxes[0].shape == (2, 1, 48, 64) and only_boxes[1].shape == (2, 1)


def test_the_official_architectures_are_built_as_the_package_builds_them():
    for name, build in (("vit_b", segment_anything.sam_model_registry["vit_b"]),):
        official = build().state_dict()
        ours = build_sam(SAM_ARCHITECTURES[name]).state_dict()
        assert {k: v.shape for k, v in ours.items()} == {k: v.shape for k, v in official.items()}
        assert config_from_weights(official) == {**SAM_ARCHITECTURES[name], "window_size": 14}
    for name in ("vit_l", "vit_h"):  # no build (300M-600M parameters): the declared facts against the registry
        fn = getattr(importlib.import_module("segment_anything.build_sam"), f"build_sam_{name}")
        assert str(SAM_ARCHITECTURES[name]["global_attn_indexes"]).replace(" ", "") in \
            inspect.getsource(fn).replace(" ", "")


def test_wrong_checkpoints_name_the_file_and_the_problem(small_sam, tmp_path):
    _, path = small_sam
    with pytest.raises(PromptCheckpointError, match="sam_small.pth: holds SAM custom weights, not model_type=vit_b"):
        Predictor(path, model_type="vit_b")
    with pytest.raises(PromptCheckpointError, match="sam_small.pth: the weights do not fit sam_custom.*missing"):
        Predictor(path, config={**SMALL, "depth": 3, "global_attn_indexes": [2]})
    state = torch.load(path, weights_only=True)
    state["mask_decoder.iou_token.weight"] = torch.zeros(2, 256)
    torch.save(state, tmp_path / "edited.pth")
    with pytest.raises(PromptCheckpointError, match=r"edited.pth: .*another shape.*iou_token.weight \(2, 256\)"):
        Predictor(tmp_path / "edited.pth")
    with pytest.raises(ValueError, match="model_type='vit_x'"):
        Predictor(path, model_type="vit_x")


@pytest.mark.slow
def test_official_vit_b_file_equals_the_official_predictor(tmp_path, image):
    torch.manual_seed(0)
    model = segment_anything.sam_model_registry["vit_b"]()
    torch.save(model.state_dict(), tmp_path / "sam_vit_b.pth")
    ours = Predictor(tmp_path / "sam_vit_b.pth", device="cpu")
    assert ours.backend.name == "sam_vit_b"
    official = segment_anything.SamPredictor(model)
    ours.set_image(image)
    official.set_image(image)
    assert_same(ours.predict(**PROMPTS[2]), official.predict(**PROMPTS[2]))


@pytest.mark.slow
def test_mobile_sam_vit_t_equals_the_official_predictor(tmp_path, image):
    mobile_sam = pytest.importorskip("mobile_sam")
    torch.manual_seed(0)
    model = mobile_sam.sam_model_registry["vit_t"]().eval()
    torch.save(model.state_dict(), tmp_path / "mobile_sam.pt")
    ours = Predictor(tmp_path / "mobile_sam.pt", device="cpu")
    assert ours.backend.name == "sam_vit_t"
    official = mobile_sam.SamPredictor(model)
    ours.set_image(image)
    official.set_image(image)
    for prompt in PROMPTS:
        assert_same(ours.predict(**prompt), official.predict(**prompt))


def test_mobile_sam_architecture_is_built_as_the_package_builds_it():
    mobile_sam = pytest.importorskip("mobile_sam")
    official = mobile_sam.sam_model_registry["vit_t"]().state_dict()
    ours = build_sam(SAM_ARCHITECTURES["vit_t"]).state_dict()
    assert {k: v.shape for k, v in ours.items()} == {k: v.shape for k, v in official.items()}
    assert config_from_weights(official) == SAM_ARCHITECTURES["vit_t"]
