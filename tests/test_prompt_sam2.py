"""Official SAM 2.1 image models through seglab.prompt: the package's own config with random weights,
saved as an official checkpoint ({"model": state_dict}), loaded by seglab, equal to SAM2ImagePredictor."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from seglab.prompt import Predictor
from seglab.prompt.files import PromptCheckpointError
from seglab.prompt.sam2_official import build

pytest.importorskip("sam2")
from sam2.sam2_image_predictor import SAM2ImagePredictor

# sam2.1_hiera_t with a shallower trunk (4 blocks instead of 12): the same code path, a third of the time
SHALLOW = ("++model.image_encoder.trunk.stages=[1,1,2,1]", "++model.image_encoder.trunk.global_att_blocks=[3]")
POINTS = np.array([[10.3, 20.7], [40.0, 5.0]], np.float32)
LABELS = np.array([1, 0])
BOX = np.array([5, 6, 50, 40], np.float32)


def check_parity(ours: Predictor, official: SAM2ImagePredictor, image):
    ours.set_image(image)
    official.set_image(image)
    low_res = None
    for prompt, multimask in (({"point_coords": POINTS, "point_labels": LABELS}, True), ({"box": BOX}, False),
                              ({"point_coords": POINTS, "point_labels": LABELS, "box": BOX}, True)):
        if low_res is not None:
            prompt = {**prompt, "mask_input": low_res}
        got = ours.predict(**prompt, multimask_output=multimask, return_logits=True)
        want = official.predict(**prompt, multimask_output=multimask, return_logits=True)
        for a, b in zip(got, want):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-5)
        low_res = got[2][:1]


@pytest.fixture(scope="module")
def image():
    return np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)


def test_shallow_sam21_tiny_equals_the_official_predictor(tmp_path, image):
    torch.manual_seed(0)
    model = build("sam2.1_hiera_t", SHALLOW)
    torch.save({"model": model.state_dict()}, tmp_path / "sam2.1_shallow.pt")
    ours = Predictor(tmp_path / "sam2.1_shallow.pt", device="cpu", model_type="sam2.1_hiera_t", overrides=SHALLOW)
    check_parity(ours, SAM2ImagePredictor(model), image)
    # batched boxes equal looping single boxes
    boxes = np.array([[5, 6, 50, 40], [0, 0, 20, 30]], np.float32)
    batched = ours.predict_batch(boxes=boxes, return_logits=True)
    for b in range(2):
        for got, want in zip(batched, ours.predict(box=boxes[b], return_logits=True)):
            np.testing.assert_allclose(got[b], want, rtol=0, atol=1e-4)
    # its weights are not the official tiny's: without the overrides the file is refused, naming it
    with pytest.raises(PromptCheckpointError, match="sam2.1_shallow.pt: .*matches none"):
        Predictor(tmp_path / "sam2.1_shallow.pt", device="cpu")


def test_the_config_is_read_from_the_weights():
    from seglab.prompt.sam2_official import config_from_weights

    state = build("sam2.1_hiera_t").state_dict()
    assert config_from_weights(state) == "sam2.1_hiera_t"
    del state["no_obj_embed_spatial"]
    assert config_from_weights(state) == "sam2_hiera_t"  # SAM 2.0 lacks the parameter 2.1 added


@pytest.mark.slow
def test_official_sam21_tiny_file_equals_the_official_predictor(tmp_path, image):
    torch.manual_seed(0)
    model = build("sam2.1_hiera_t")
    torch.save({"model": model.state_dict()}, tmp_path / "sam2.1_hiera_tiny.pt")
    ours = Predictor(tmp_path / "sam2.1_hiera_tiny.pt", device="cpu")
    assert ours.backend.name == "sam2.1_hiera_t"
    check_parity(ours, SAM2ImagePredictor(model), image)
