"""Rectangular training sizes (imgsz=HxW): parsing, data at H x W, and train -> val -> predict -> ONNX."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import SAMPLE
from seglab.cli import main
from seglab.config import ConfigError, make_config, parse_overrides
from seglab.data.augment import build_augment
from seglab.data.dataset import SegmentationDataset, load_mask, load_pair
from seglab.data.pet import load_split
from seglab.data.size import as_hw, canonical, size_text
from seglab.engine.checkpoint import load_checkpoint
from seglab.inference.predictor import Predictor


@pytest.mark.parametrize("value, hw", [(96, (96, 96)), ("96", (96, 96)), ("64x96", (64, 96)), (" 64 x 96 ", (64, 96)),
                                       ("64,96", (64, 96)), ([64, 96], (64, 96)), ((96, 64), (96, 64))])
def test_sizes_parse_to_height_width(value, hw):
    assert as_hw(value) == hw


@pytest.mark.parametrize("value", ["64x", "x64", "64x96x3", "big", 0, "0x64", [64], [64, 96, 3], [64.0, 96],
                                   True, 2.5, None])
def test_bad_sizes_are_refused(value):
    with pytest.raises(ValueError):
        as_hw(value)


def test_config_keeps_square_sizes_as_ints_and_rectangles_as_height_width():
    assert make_config(imgsz=128).imgsz == 128
    assert make_config(imgsz=[128, 128]).imgsz == 128
    assert make_config(parse_overrides(["imgsz=256x352"])).imgsz == [256, 352]
    assert make_config(parse_overrides(["imgsz=[256, 352]"])).imgsz == [256, 352]
    assert canonical("8x8") == 8 and size_text(8) == "8x8" and size_text([8, 12]) == "8x12"
    for bad in ("imgsz=256x", "imgsz=0", "imgsz=-3", "imgsz=[1, 2, 3]"):
        with pytest.raises(ConfigError, match="imgsz="):
            make_config(parse_overrides([bad]))


def test_pairs_load_at_height_by_width():
    spec = load_split(SAMPLE, "test")
    image, mask = load_pair(spec, 0, (40, 72))
    assert image.shape == (3, 40, 72) and mask.shape == (40, 72)
    # the same pixels as PIL's stretch of the decoded image to width 72, height 40
    want = np.asarray(Image.open(spec.pairs[0][0]).convert("RGB").resize((72, 40), Image.BILINEAR)).transpose(2, 0, 1)
    assert np.abs(image.astype(int) - want.astype(int)).max() <= 1  # JPEG draft decoding may differ by rounding


@pytest.mark.parametrize("preset", ["none", "flip", "light", "strong"])
def test_augmented_samples_keep_height_by_width_and_valid_labels(preset):
    spec = load_split(SAMPLE, "train")
    data = SegmentationDataset(spec, (40, 72), augment=preset, cache=True)
    labels = set(range(spec.classes.num_classes)) | {spec.classes.ignore_index}
    for index in range(3):
        image, mask, _ = data[index]
        assert image.shape == (3, 40, 72) and image.dtype == torch.uint8
        assert mask.shape == (40, 72)
        assert set(mask.unique().tolist()) <= labels


def test_crops_centre_their_aspect_on_the_training_sizes():
    square = build_augment("light", 64).transforms[0]
    wide = build_augment("light", (64, 128)).transforms[0]
    assert square.ratio == pytest.approx((3 / 4, 4 / 3))
    assert wide.ratio == pytest.approx((2 * 3 / 4, 2 * 4 / 3))  # crops of the 64x128 sample are 2:1 give or take
    assert tuple(wide.size) == (64, 128)
    assert build_augment("strong", (64, 128)).transforms[0].ratio == pytest.approx(wide.ratio)


@pytest.fixture(scope="module")
def rect_run(tmp_path_factory):
    project = tmp_path_factory.mktemp("runs")
    args = ["width=4", "depth=2", "imgsz=32x48", "epochs=1", "batch=4", "samples=1", "name=rect",
            f"project={project}", "verbose=false"]
    assert main(["train", *args]) == 0
    return project / "rect"


def test_training_at_height_by_width_records_it_and_val_scores_at_original_size(rect_run):
    ckpt = load_checkpoint(rect_run / "best.pt")
    assert ckpt["preprocess"]["size"] == [32, 48]
    assert ckpt["config"]["imgsz"] == [32, 48]
    predictor = Predictor(rect_run / "best.pt")
    assert predictor.train_size == (32, 48) and predictor.size == 48
    assert main(["val", f"model={rect_run / 'best.pt'}", "split=test", "verbose=false"]) == 0
    result = json.loads((rect_run / "val_test.json").read_text())
    spec = load_split(SAMPLE, "test")
    assert result["images"] == len(spec.pairs) and result["resolution"] == "original"
    # val's number is the predictor's 32x48 predictions, resized to each image, against the full-size masks
    correct = total = 0
    for index, (image_path, _) in enumerate(spec.pairs):
        truth = load_mask(spec, index)
        pred = predictor.predict_files([image_path])[0]
        valid = truth != spec.classes.ignore_index
        correct, total = correct + int((pred[valid] == truth[valid]).sum()), total + int(valid.sum())
    assert result["pixel_accuracy"] == pytest.approx(correct / total, abs=1e-3)


def test_predictions_of_a_rectangular_model_see_the_stretch_to_height_by_width(rect_run):
    predictor = Predictor(rect_run / "best.pt")
    spec = load_split(SAMPLE, "test")
    path = spec.pairs[0][0]
    labels = predictor.predict_files([path])[0]
    width, height = Image.open(path).size
    assert labels.shape == (height, width)
    # the same as running the model on load_image's 32x48 view and resizing the scores back
    image, _ = load_pair(spec, 0, (32, 48))
    with torch.no_grad():
        scores = predictor.logits(torch.from_numpy(image)[None])[0]
    want = torch.nn.functional.interpolate(scores[None], size=(height, width), mode="bilinear",
                                           align_corners=False)[0].argmax(0).numpy()
    assert (labels == want).mean() > 0.999


def test_export_of_a_rectangular_model_uses_its_size_and_matches_pytorch(rect_run, tmp_path):
    pytest.importorskip("onnxruntime")
    from seglab.export.checkpoint import export_checkpoint

    path, report = export_checkpoint(rect_run / "best.pt", tmp_path / "rect.onnx")
    assert report["export_size"] == [32, 48]
    assert set(report["max_abs_diff"]) == {"32x48", "33x51"}
    assert max(report["max_abs_diff"].values()) < 1e-3
