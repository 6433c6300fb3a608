"""`seglab export task=prompt`: the click model as encoder.onnx + decoder.onnx, equal to PyTorch on onnxruntime,
and the two files behind seglab.prompt.Predictor giving the checkpoint's masks; SAM weights through the same mode."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from seglab.config import make_config
from seglab.data.io import read_image
from seglab.engine.checkpoint import (
    load_checkpoint,
    make_checkpoint,
    model_from_checkpoint,
)
from seglab.models import build_model, model_arguments
from seglab.modes import MODES
from seglab.prompt import Predictor
from seglab.prompt.click_onnx import NO_BOX, OnnxClickBackend
from seglab.tasks.prompt.train import OBJECT_CLASSES, RESIZE

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

SIZE = 64
PET = Path(__file__).resolve().parents[1] / "seglab" / "assets" / "pet_sample" / "images" / "Abyssinian_10.jpg"


def click_checkpoint(path: Path) -> Path:
    """A click_seg checkpoint as `seglab train task=prompt` writes it (random weights, non-trivial BatchNorm stats)."""
    torch.manual_seed(0)
    args = model_arguments("click_seg", 1, {"encoder_weights": "", "channels": 32})
    model = build_model("click_seg", args)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 2.0)
    preprocess = {"mean": list(model.normalization["mean"]), "std": list(model.normalization["std"]),
                  "resize": RESIZE, "size": SIZE}
    ckpt = make_checkpoint(model.eval(), arch={"name": "click_seg", "args": args}, classes=OBJECT_CLASSES,
                           preprocess=preprocess, config={}, epoch=1, metrics={}, task="prompt")
    torch.save(ckpt, path)
    return path


def export(model: Path, out: Path) -> Path:
    return MODES["export"](make_config({"task": "prompt", "model": str(model), "out": str(out), "verbose": False},
                                       mode="export"))


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    folder = tmp_path_factory.mktemp("click_onnx")
    ckpt = click_checkpoint(folder / "best.pt")
    out = export(ckpt, folder / "onnx")
    report = json.loads((out / "export.json").read_text())
    assert max(report["parity"].values()) < 1e-3  # checked by the mode itself
    return ckpt, out


def test_onnx_files_equal_the_unfolded_pytorch_model(exported):
    """Independent of the backend code: onnxruntime against model.embed / model.decode of the checkpoint
    (BatchNorm not folded), with prompt counts other than the traced ones (B=3, N=1; B=1, N=4)."""
    ckpt, out = exported
    model = model_from_checkpoint(load_checkpoint(ckpt)).float().eval()
    encoder = ort.InferenceSession(str(out / "encoder.onnx"), providers=["CPUExecutionProvider"])
    decoder = ort.InferenceSession(str(out / "decoder.onnx"), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    image = rng.uniform(0, 255, (1, 3, SIZE, SIZE)).astype(np.float32)
    mean = torch.tensor(model.normalization["mean"]).view(1, 3, 1, 1) * 255
    std = torch.tensor(model.normalization["std"]).view(1, 3, 1, 1) * 255
    with torch.no_grad():
        features = model.embed((torch.from_numpy(image) - mean) / std)
    s8, s4 = encoder.run(["s8", "s4"], {"image": image})
    np.testing.assert_allclose(s8, features["s8"].numpy(), atol=1e-4)
    np.testing.assert_allclose(s4, features["s4"].numpy(), atol=1e-4)
    for batch, points in ((3, 1), (1, 4)):
        coords = rng.uniform(0, SIZE, (batch, points, 2)).astype(np.float32)
        labels = rng.integers(-1, 2, (batch, points)).astype(np.int64)
        boxes = np.array([[4, 6, 40, 50]] * batch, np.float32)
        previous = rng.normal(0, 3, (batch, 1, 256, 256)).astype(np.float32)
        with torch.no_grad():
            want = model.decode(features, torch.from_numpy(coords), torch.from_numpy(labels), torch.from_numpy(boxes),
                                torch.from_numpy(previous))
        got = decoder.run(["logits", "iou"], {"s8": s8, "s4": s4, "point_coords": coords, "point_labels": labels,
                                              "boxes": boxes, "mask_input": previous,
                                              "has_mask_input": np.ones(batch, np.float32)})
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w.numpy(), atol=2e-4)
        with torch.no_grad():  # no box, no previous mask: the stand-ins change nothing
            want = model.decode(features, torch.from_numpy(coords), torch.from_numpy(labels), None, None)
        got = decoder.run(["logits", "iou"], {"s8": s8, "s4": s4, "point_coords": coords, "point_labels": labels,
                                              "boxes": np.array([NO_BOX] * batch, np.float32),
                                              "mask_input": previous, "has_mask_input": np.zeros(batch, np.float32)})
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w.numpy(), atol=2e-4)


def test_predictor_over_the_onnx_files_gives_the_checkpoints_masks(exported):
    ckpt, out = exported
    image = np.asarray(read_image(PET))[:-3, :-5]  # a real photo at odd sizes: resized, padded
    ours = Predictor(ckpt, device="cpu")
    onnx = Predictor(OnnxClickBackend(out / "encoder.onnx", out / "decoder.onnx"))
    assert onnx.backend.name.startswith("onnx:click_seg")
    ours.set_image(image)
    onnx.set_image(image)
    clicks = {"point_coords": np.array([[90.0, 120.0], [20.0, 170.0]]), "point_labels": np.array([1, 0])}
    previous = None
    for prompt in ({**clicks, "multimask_output": True}, {"box": np.array([30, 20, 160, 200]), "multimask_output": False},
                   {**clicks, "box": np.array([30, 20, 160, 200]), "multimask_output": False},
                   {**clicks, "feed_back": True, "multimask_output": False}):
        if prompt.pop("feed_back", False):
            prompt["mask_input"] = previous
        want_logits, want_scores, want_low = ours.predict(**prompt, return_logits=True)
        got_logits, got_scores, got_low = onnx.predict(**prompt, return_logits=True)
        np.testing.assert_allclose(got_low, want_low, atol=2e-4)
        np.testing.assert_allclose(got_logits, want_logits, atol=2e-4)
        np.testing.assert_allclose(got_scores, want_scores, atol=2e-4)
        masks, _, _ = onnx.predict(**prompt)
        decided = np.abs(want_logits) > 1e-3  # pixels whose sign a rounding difference cannot flip
        assert masks.shape == want_logits.shape == (len(want_scores), *image.shape[:2])
        assert np.array_equal(masks[decided], want_logits[decided] > 0)
        previous = want_low[:1]


def test_sam_weights_export_through_the_same_mode(tmp_path):
    pytest.importorskip("segment_anything")
    from seglab.prompt.sam_official import build_sam

    torch.manual_seed(0)
    weights = tmp_path / "sam_small.pth"
    torch.save(build_sam({"encoder": "vit", "embed_dim": 32, "depth": 1, "num_heads": 1,
                          "global_attn_indexes": [0]}).state_dict(), weights)
    out = export(weights, tmp_path / "sam_onnx")
    assert (out / "encoder.onnx").is_file() and (out / "decoder.onnx").is_file()
    report = json.loads((out / "export.json").read_text())
    assert report["backend"] == "sam_custom" and max(report["parity"].values()) < 1e-3

