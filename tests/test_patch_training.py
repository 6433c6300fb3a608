"""Patch training (resize=crop): windows at native resolution, seeded, padded with ignore; a tiny run; tiled val."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms import v2

from conftest import SAMPLE
from seglab.cli import main
from seglab.config import make_config
from seglab.data.augment import build_augment
from seglab.data.dataset import SegmentationDataset, load_mask
from seglab.data.patches import patch
from seglab.data.pet import load_split
from seglab.engine.checkpoint import load_checkpoint, model_from_checkpoint
from seglab.engine.device import Runtime
from seglab.inference.evaluate import training_validator
from seglab.inference.predictor import Predictor
from seglab.losses import build_loss
from seglab.tasks.semantic.train import use_cache

IGNORE = 255


def coordinate_pair(height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """An image whose pixels spell their own row and column (mod 251), and a mask of row parity."""
    rows = torch.arange(height).view(-1, 1).expand(height, width)
    cols = torch.arange(width).view(1, -1).expand(height, width)
    image = torch.stack([rows % 251, cols % 251, (rows // 251) * 16 + cols // 251]).to(torch.uint8)
    return image, (rows % 2).to(torch.uint8)


def window_of(image: torch.Tensor, out: torch.Tensor) -> tuple[int, int]:
    """Where `out` was cut from the coordinate image; asserts it is an exact, unscaled window."""
    top = int(out[0, 0, 0]) + 251 * (int(out[2, 0, 0]) // 16)
    left = int(out[1, 0, 0]) + 251 * (int(out[2, 0, 0]) % 16)
    h, w = out.shape[1:]
    assert torch.equal(out, image[:, top:top + h, left:left + w])
    return top, left


def test_patches_are_unscaled_windows_at_seeded_positions():
    image, mask = coordinate_pair(300, 520)
    positions = set()
    for seed in range(12):
        out, out_mask = patch(image, mask, (64, 96), seed, IGNORE)
        assert out.shape == (3, 64, 96) and out_mask.shape == (64, 96) and out.dtype == torch.uint8
        top, left = window_of(image, out)
        assert torch.equal(out_mask, mask[top:top + 64, left:left + 96])
        positions.add((top, left))
        again, again_mask = patch(image, mask, (64, 96), seed, IGNORE)
        assert torch.equal(again, out) and torch.equal(again_mask, out_mask)
    assert len(positions) >= 10  # positions spread over the image
    centre, _ = patch(image, mask, 64, None, IGNORE)
    assert window_of(image, centre) == ((300 - 64) // 2, (520 - 64) // 2)


def test_short_sides_are_padded_with_zero_and_the_ignore_index():
    image, mask = coordinate_pair(40, 200)
    image[:] = torch.clamp(image, min=1)  # no zero pixel in the source: zeros below are padding
    for seed in (None, 0, 1, 2):
        out, out_mask = patch(image, mask, 64, seed, IGNORE)
        assert out.shape == (3, 64, 64)
        padded = (out == 0).all(0)
        assert padded.sum() == 24 * 64 and torch.equal(padded, out_mask == IGNORE)
        rows = (~padded).any(1).nonzero().flatten()
        assert len(rows) == 40 and rows[-1] - rows[0] == 39  # the 40 image rows are kept together
        assert set(out_mask[~padded].unique().tolist()) <= {0, 1}


def test_the_patch_stream_is_not_the_augmentation_stream():
    """Seeded by the same key, the position must not repeat what the global generator would draw."""
    image, mask = coordinate_pair(200, 200)
    tops = []
    for seed in range(40):
        torch.manual_seed(seed)
        first_draw = torch.randint(0, 137, (1,)).item()
        tops.append((window_of(image, patch(image, mask, 64, seed, IGNORE)[0])[0], first_draw))
    assert sum(top == draw for top, draw in tops) < 5


def test_crop_presets_leave_out_the_resized_crop():
    for preset in ("light", "strong"):
        steps = build_augment(preset, 64, IGNORE, resize_crop=False).transforms
        assert not any(isinstance(t, v2.RandomResizedCrop) for t in steps)
        assert any(isinstance(t, v2.RandomHorizontalFlip) for t in steps)
        assert isinstance(build_augment(preset, 64, IGNORE).transforms[0], v2.RandomResizedCrop)


@pytest.mark.parametrize("preset", ["none", "light", "strong"])
def test_a_crop_dataset_cuts_native_pairs_into_seeded_patches(preset):
    spec = load_split(SAMPLE, "train")
    data = SegmentationDataset(spec, (48, 64), augment=preset, cache=True, resize="crop")
    labels = set(range(spec.classes.num_classes)) | {spec.classes.ignore_index}
    for index in range(3):
        native_image, native_mask = data.sample(index)
        width, height = Image.open(spec.pairs[index][0]).size
        assert native_image.shape == (3, height, width)  # cached at native resolution
        assert np.array_equal(native_mask.numpy(), load_mask(spec, index))
        image, mask, got = data[(index, 1234 + index)]
        assert got == index and image.shape == (3, 48, 64) and mask.shape == (48, 64) and mask.dtype == torch.int64
        assert set(mask.unique().tolist()) <= labels
        again, again_mask, _ = data[(index, 1234 + index)]
        assert torch.equal(again, image) and torch.equal(again_mask, mask)
        window, window_mask = patch(native_image, native_mask, (48, 64), 1234 + index, IGNORE)
        if preset == "none":  # exactly the seeded window of the native pixels: the scale is the file's
            assert torch.equal(image, window) and torch.equal(mask, window_mask.long())
        centre, centre_mask, _ = data[index]  # no seed: the centre window, never augmented
        want, want_mask = patch(native_image, native_mask, (48, 64), None, IGNORE)
        assert torch.equal(centre, want) and torch.equal(centre_mask, want_mask.long())


def test_cache_auto_measures_native_pairs_for_crop():
    specs = [load_split(SAMPLE, "train"), load_split(SAMPLE, "val")]
    crop = make_config({"resize": "crop", "imgsz": 64})
    assert use_cache(crop, 48, specs) is True
    assert use_cache(crop, 48) is False  # sizes unknown: do not risk the RAM
    assert use_cache(dataclasses.replace(crop, cache="ram"), 48) is True


@pytest.fixture(scope="module")
def crop_run(tmp_path_factory):
    project = tmp_path_factory.mktemp("runs")
    assert main(["train", "resize=crop", "imgsz=64", "epochs=1", "width=4", "depth=2", "batch=8", "samples=1",
                 "name=crop", f"project={project}", "verbose=false"]) == 0
    return project / "crop"


def test_a_crop_run_records_its_scale_and_predicts_by_tiling(crop_run):
    ckpt = load_checkpoint(crop_run / "best.pt")
    assert ckpt["preprocess"]["resize"] == "crop" and ckpt["preprocess"]["size"] == [64, 64]
    predictor = Predictor(crop_run / "best.pt")
    assert predictor.native and predictor.mode_for(192, 256) == "tile"
    labels = predictor.predict_files([SAMPLE / "images" / "Bengal_192.jpg"])[0]
    assert labels.shape == (198, 256)
    assert (crop_run / "metrics.csv").is_file()


def test_training_validation_of_a_crop_model_tiles_full_images(crop_run):
    ckpt = load_checkpoint(crop_run / "best.pt")
    model = model_from_checkpoint(ckpt).train()
    spec = load_split(SAMPLE, "val")
    val_set = SegmentationDataset(spec, 64, cache=True, resize="crop")
    classes = spec.classes
    loss = build_loss("ce", classes.num_classes, classes.ignore_index)
    runtime = Runtime(torch.device("cpu"), "fp32", True)
    result = training_validator(val_set, runtime, ckpt["preprocess"], 4, loss)(model)
    assert model.training  # put back as it was
    valid = sum(int((load_mask(spec, i) != classes.ignore_index).sum()) for i in range(len(spec.pairs)))
    assert result["resolution"] == "original" and result["dataset"]["num_pixels"] == valid  # every native pixel
    assert np.isfinite(result["loss"]) and result["loss"] > 0
    # a stretch model's validation is the fast path on the resized samples
    stretch_pre = {**ckpt["preprocess"], "resize": "stretch"}
    stretched = training_validator(SegmentationDataset(spec, 64, cache=True), runtime, stretch_pre, 4, loss)(model)
    assert stretched["resolution"] == "train" and stretched["dataset"]["num_pixels"] < valid
