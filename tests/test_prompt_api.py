"""seglab.prompt.Predictor (SamPredictor's API) over a fake backend, and checkpoint errors that name the file."""
from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from seglab.prompt import BACKENDS, Predictor, PromptBackend, checkpoint_kind
from seglab.prompt.backend import check_prompts
from seglab.prompt.files import PromptCheckpointError, require
from seglab.prompt.sam_official import SAM_ARCHITECTURES, build_sam
from tests.prompt_fakes import RegionBackend, disc_image


@pytest.fixture
def predictor():
    p = Predictor(RegionBackend())
    p.set_image(disc_image()[0])
    return p


def test_predict_returns_sam_shapes_at_the_image_size(predictor):
    image, discs = disc_image()
    masks, scores, low_res = predictor.predict(point_coords=[[20, 18]], point_labels=[1])
    assert masks.shape == (3, *image.shape[:2]) and masks.dtype == bool
    assert scores.shape == (3,) and low_res.shape == (3, 256, 256)
    assert (masks[0] == discs[0]).all()
    single = predictor.predict(box=np.array([13, 35, 31, 53]), multimask_output=False)
    assert single[0].shape == (1, *image.shape[:2]) and (single[0][0] == discs[1]).all()
    logits = predictor.predict(point_coords=[[20, 18]], point_labels=[1], return_logits=True)[0]
    assert logits.dtype == np.float32 and ((logits > 0) == masks).all()


def test_low_res_logits_feed_back_as_mask_input(predictor):
    _, _, low_res = predictor.predict(point_coords=[[20, 18]], point_labels=[1], multimask_output=False)
    shifted = predictor.predict(point_coords=[[20, 18]], point_labels=[1], mask_input=low_res + 100.0,
                                multimask_output=False, return_logits=True)[0]
    plain = predictor.predict(point_coords=[[20, 18]], point_labels=[1], multimask_output=False, return_logits=True)[0]
    assert not np.allclose(shifted, plain)


def test_batched_prompts_equal_looping_single_prompts(predictor):
    points = np.array([[[20, 18], [60, 60]], [[22, 44], [1, 1]], [[50, 30], [2, 2]]], np.float32)
    labels = np.array([[1, 0], [1, 0], [1, -1]])
    boxes = np.array([[10, 10, 30, 30], [34, 36, 54, 54], [40, 20, 60, 40]], np.float32)
    for kwargs in ({"point_coords": points, "point_labels": labels}, {"boxes": boxes},
                   {"point_coords": points, "point_labels": labels, "boxes": boxes}):
        batched = predictor.predict_batch(**kwargs, return_logits=True)
        for b in range(3):
            single = {"point_coords": points[b], "point_labels": labels[b]} if "point_coords" in kwargs else {}
            if "boxes" in kwargs:
                single["box"] = boxes[b]
            for got, want in zip(batched, predictor.predict(**single, return_logits=True)):
                np.testing.assert_array_equal(got[b], want)


def test_set_image_embeds_once_per_image_and_reset_clears_it():
    backend = RegionBackend()
    p = Predictor(backend)
    with pytest.raises(RuntimeError, match="set_image"):
        p.predict(point_coords=[[1, 1]], point_labels=[1])
    p.set_image(disc_image()[0])
    for _ in range(3):
        p.predict(point_coords=[[20, 18]], point_labels=[1])
    assert backend.embed_calls == 1 and p.original_size == (64, 72)
    p.reset_image()
    assert not p.is_image_set
    with pytest.raises(RuntimeError, match="set_image"):
        p.predict(box=[1, 1, 5, 5])


def test_bgr_images_are_flipped_to_rgb():
    image, _ = disc_image()
    rgb, bgr = Predictor(RegionBackend()), Predictor(RegionBackend())
    rgb.set_image(image)
    bgr.set_image(np.ascontiguousarray(image[..., ::-1]), image_format="BGR")
    assert torch.equal(rgb.get_image_embedding().features, bgr.get_image_embedding().features)


@pytest.mark.parametrize("image, match", [
    (np.zeros((8, 8), np.uint8), r"\[H, W, 3\]"), (np.zeros((8, 8, 3), np.float32), "uint8"),
    ([[0]], "numpy array"), (np.zeros((0, 8, 3), np.uint8), "empty")])
def test_bad_images_are_refused_clearly(image, match):
    with pytest.raises((TypeError, ValueError), match=match):
        Predictor(RegionBackend()).set_image(image)


def test_bad_prompts_are_refused_clearly(predictor):
    with pytest.raises(ValueError, match="at least one prompt"):
        predictor.predict()
    with pytest.raises(ValueError, match="points and labels go together"):
        predictor.predict(point_coords=[[1, 2]])
    with pytest.raises(ValueError, match="labels must be"):
        predictor.predict(point_coords=[[1, 2], [3, 4]], point_labels=[1])
    with pytest.raises(ValueError, match="batch sizes differ"):
        predictor.predict_batch(point_coords=np.zeros((2, 1, 2)), point_labels=np.ones((2, 1)), boxes=np.zeros((3, 4)))
    with pytest.raises(ValueError, match="mask_input must be"):
        predictor.predict(box=[1, 1, 4, 4], mask_input=np.zeros((1, 64, 64)))
    with pytest.raises(ValueError, match="boxes must be"):
        check_prompts(None, None, torch.zeros(2, 3), None)


def test_the_fake_backend_satisfies_the_protocol_and_others_are_refused():
    assert isinstance(RegionBackend(), PromptBackend)
    with pytest.raises(TypeError, match="PromptBackend"):
        Predictor(object())
    with pytest.raises(ValueError, match="checkpoint path"):
        Predictor(RegionBackend(), model_type="vit_b")


def test_checkpoint_errors_name_the_file_and_the_problem(tmp_path):
    with pytest.raises(PromptCheckpointError, match="missing.pth: checkpoint not found"):
        Predictor(tmp_path / "missing.pth")
    (tmp_path / "empty.pth").write_bytes(b"")
    with pytest.raises(PromptCheckpointError, match="empty.pth: the file is empty"):
        Predictor(tmp_path / "empty.pth")
    torch.save({"image_encoder.blocks.0.w": torch.zeros(1000)}, tmp_path / "whole.pth")
    data = (tmp_path / "whole.pth").read_bytes()
    (tmp_path / "cut.pth").write_bytes(data[: len(data) // 2])
    with pytest.raises(PromptCheckpointError, match="cut.pth: cannot be read: truncated"):
        Predictor(tmp_path / "cut.pth")
    torch.save({"conv.weight": torch.zeros(3)}, tmp_path / "other.pth")
    with pytest.raises(PromptCheckpointError, match="other.pth: not a SAM, SAM 2 or seglab prompt checkpoint"):
        Predictor(tmp_path / "other.pth")
    torch.save({"task": "semantic", "arch": {}, "model": {}}, tmp_path / "semantic.pt")
    with pytest.raises(PromptCheckpointError, match="semantic.pt: a seglab 'semantic' checkpoint"):
        Predictor(tmp_path / "semantic.pt")
    with pytest.raises(KeyError, match="unknown prompt backend kind 'nope'.*known: click, sam, sam2"):
        Predictor(tmp_path / "other.pth", kind="nope")


def test_checkpoint_kinds_are_read_from_the_keys(tmp_path):
    sam = {f"{part}.x": torch.zeros(1) for part in ("image_encoder", "prompt_encoder", "mask_decoder")}
    torch.save(sam, tmp_path / "sam.pth")
    torch.save({"model": {"image_encoder.trunk.x": torch.zeros(1), "sam_mask_decoder.y": torch.zeros(1)}},
               tmp_path / "sam2.pt")
    torch.save({"task": "prompt", "arch": {}, "model": {}}, tmp_path / "click.pt")
    assert [checkpoint_kind(tmp_path / n) for n in ("sam.pth", "sam2.pt", "click.pt")] == ["sam", "sam2", "click"]
    assert set(BACKENDS) >= {"sam", "sam2", "click"}


def test_a_missing_extra_says_which_to_install(monkeypatch):
    for module in ("segment_anything", "segment_anything.modeling"):
        monkeypatch.setitem(sys.modules, module, None)  # None in sys.modules: the import fails as if not installed
    with pytest.raises(ImportError, match=r"needs the 'segment-anything' package .*pip install 'seglab\[sam\]'"):
        require("segment_anything.modeling", "SAM")
    with pytest.raises(ImportError, match=r"pip install 'seglab\[sam\]'"):
        build_sam(SAM_ARCHITECTURES["vit_b"])
