"""`seglab val` scores exactly what `seglab predict` writes, for every inference mode and both resize policies.

The invariant: val's dataset-level confusion matrix (in val_<split>.json) equals the one recounted
from the class-index PNGs `seglab predict` writes with the same options, against the masks as the
dataset reads them. It must hold for any weights, so the checkpoints have random weights (with
BatchNorm statistics from a few batches, so the labels form regions of several classes).
Real images: the bundled Pet sample, and ../shared/data/oxford-iiit-pet-subset when present, with
images above the auto-tile threshold (Abyssinian_24 is 800x600, Bengal_1 600x901).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import SAMPLE
from seglab.cli import main
from seglab.data.pet import load_split
from seglab.data.dataset import load_image, load_mask
from seglab.engine.checkpoint import atomic_save, make_checkpoint
from seglab.engine.device import Runtime, normalize
from seglab.inference.predictor import InferenceOptions, Job, Predictor
from seglab.metrics import batch_confusion
from seglab.models import build_model

SHARED_PET = Path(__file__).resolve().parents[2] / "shared" / "data" / "oxford-iiit-pet-subset"
# Two test images larger than 8 x 96 = 768 px (the case) and four ordinary ones
SHARED_NAMES = ["Abyssinian_24", "Bengal_1", "Abyssinian_1", "Bengal_10", "american_bulldog_10", "american_bulldog_100"]
TRAIN_SIZE = 32
CROP_SIZE = 128  # the crop model's patches: 6 tiles per 256 x 192 sample image
# mode settings run through both val and predict: a stretch model
STRETCH_CASES = {
    "stretch": ["mode=stretch"],
    "tile": ["mode=tile", "tile=24", "overlap=0.5"],  # several tiles over the 32 x 32 training view
    "auto": ["mode=auto", "auto_tile=7.9"],  # sample: longer side 256 > 7.9 x 32 tiles, 240 does not
}


def random_checkpoint(path: Path, resize: str, size: int = TRAIN_SIZE, seed: int = 0) -> Path:
    """A U-Net with random weights, BatchNorm statistics of sample images and its head's bias centred
    on them, so that its labels vary over an image (a plain random head predicts one class)."""
    torch.manual_seed(seed)
    args = {"num_classes": 3, "width": 6, "depth": 2}
    model = build_model("unet", args)
    preprocess = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225], "resize": resize,
                  "size": [size, size]}
    images = torch.from_numpy(np.stack([load_image(p, size) for p, _ in load_split(SAMPLE, "train").pairs[:16]]))
    x = normalize(images, preprocess["mean"], preprocess["std"], Runtime(torch.device("cpu"), "fp32", False))
    with torch.no_grad():
        model.train()
        for _ in range(5):
            model(x)
        model.eval()
        model.head.bias -= model(x).mean((0, 2, 3))
    classes = load_split(SAMPLE, "test").classes
    atomic_save(make_checkpoint(model, {"name": "unet", "args": args}, classes, preprocess,
                                {"data": str(SAMPLE)}, 0, {}), path)
    return path


@pytest.fixture(scope="module")
def stretch_model(tmp_path_factory):
    return random_checkpoint(tmp_path_factory.mktemp("stretch") / "best.pt", "stretch")


@pytest.fixture(scope="module")
def crop_model(tmp_path_factory):
    return random_checkpoint(tmp_path_factory.mktemp("crop") / "best.pt", "crop", size=CROP_SIZE, seed=1)


def pet_subset(root: Path, names: list[str], out: Path) -> Path:
    """A Pet-layout folder whose test split is `names` (links to the real files)."""
    (out / "images").mkdir(parents=True)
    (out / "annotations" / "trimaps").mkdir(parents=True)
    for name in names:
        (out / "images" / f"{name}.jpg").symlink_to(root / "images" / f"{name}.jpg")
        (out / "annotations" / "trimaps" / f"{name}.png").symlink_to(root / "annotations" / "trimaps" / f"{name}.png")
    (out / "annotations" / "test.txt").write_text("".join(f"{n} 1 1 1\n" for n in names))
    (out / "annotations" / "trainval.txt").write_text("")
    return out


def split_images(data: Path, out: Path) -> Path:
    """A folder holding exactly the test split's images (links), for `predict source=`."""
    out.mkdir(parents=True)
    for image, _ in load_split(data, "test").pairs:
        (out / image.name).symlink_to(image)
    return out


def val_matrix(model: Path, data: Path, out: Path, options: list[str]) -> tuple[list, dict]:
    assert main(["val", f"model={model}", f"data={data}", "split=test", f"out={out}", "verbose=false",
                 *options]) == 0
    result = json.loads((out / "val_test.json").read_text())
    return result["confusion_matrix"], result


def predict_matrix(model: Path, data: Path, source: Path, out: Path, options: list[str]) -> tuple[list, set]:
    """The confusion matrix recounted from predict's PNGs, and the class ids they hold."""
    assert main(["predict", f"model={model}", f"source={source}", f"out={out}", "verbose=false", *options]) == 0
    spec = load_split(data, "test")
    total, seen = torch.zeros(3, 3, dtype=torch.int64), set()
    for index, (image, _) in enumerate(spec.pairs):
        labels = np.array(Image.open(out / f"{image.stem}.png"))
        truth = load_mask(spec, index)
        assert labels.shape == truth.shape
        seen |= set(np.unique(labels).tolist())
        total += batch_confusion(torch.from_numpy(labels).long(), torch.from_numpy(truth).long(), 3,
                                 spec.classes.ignore_index)[0]
    return total.tolist(), seen


def assert_val_scores_what_predict_writes(model, data, tmp_path, options):
    source = split_images(data, tmp_path / "source")
    from_val, result = val_matrix(model, data, tmp_path / "val", options)
    from_predict, seen = predict_matrix(model, data, source, tmp_path / "predict", options)
    assert len(seen) >= 2, "the model predicts one class everywhere: the comparison would prove nothing"
    assert from_val == from_predict
    assert result["num_pixels"] == sum(map(sum, from_predict))
    return result


@pytest.mark.parametrize("case", list(STRETCH_CASES))
def test_val_equals_predict_on_the_bundled_sample(stretch_model, tmp_path, case):
    assert_val_scores_what_predict_writes(stretch_model, SAMPLE, tmp_path, STRETCH_CASES[case])


def test_auto_tiles_some_sample_images_and_stretches_others(stretch_model):
    predictor = Predictor(stretch_model, options=InferenceOptions(mode="auto", auto_tile=7.9))
    modes = {predictor.mode_for(*Job.from_file(image).image.shape[:2]) for image, _ in load_split(SAMPLE, "test").pairs}
    assert modes == {"stretch", "tile"}


def test_val_equals_predict_for_a_crop_model(crop_model, tmp_path):
    """A crop model tiles at native resolution (128-pixel tiles over 256-pixel images), in auto mode too."""
    result = assert_val_scores_what_predict_writes(crop_model, SAMPLE, tmp_path, ["mode=auto"])
    assert "crops at native resolution" in result["inference"]
    auto = Predictor(crop_model, options=InferenceOptions(mode="auto", auto_tile=1000))
    assert {auto.mode_for(h, w) for h, w in [(20, 30), (192, 256), (9000, 9000)]} == {"tile"}


@pytest.fixture(scope="module")
def shared_subset(tmp_path_factory):
    if not SHARED_PET.is_dir():
        pytest.skip(f"{SHARED_PET} is absent (the shared Oxford-IIIT Pet subset)")
    return pet_subset(SHARED_PET, SHARED_NAMES, tmp_path_factory.mktemp("pet_subset"))


@pytest.mark.parametrize("case", list(STRETCH_CASES))
def test_val_equals_predict_on_real_images_over_the_auto_tile_threshold(stretch_model, shared_subset, tmp_path, case):
    options = [o if not o.startswith("auto_tile=") else "auto_tile=24" for o in STRETCH_CASES[case]]  # 768 px
    predictor = Predictor(stretch_model, options=InferenceOptions(mode="auto", auto_tile=24))
    sizes = [Image.open(shared_subset / "images" / f"{n}.jpg").size for n in SHARED_NAMES]
    assert [predictor.mode_for(h, w) for w, h in sizes] == ["tile", "tile"] + ["stretch"] * 4
    assert_val_scores_what_predict_writes(stretch_model, shared_subset, tmp_path, options)


def test_val_equals_predict_for_a_crop_model_on_real_images(crop_model, shared_subset, tmp_path):
    assert_val_scores_what_predict_writes(crop_model, shared_subset, tmp_path, ["mode=tile", "overlap=0.1"])


def test_tiling_a_stretch_model_on_a_large_photo_gives_the_stretch_labels(stretch_model):
    """Tiling first resamples to the training scale, so the objects are as large as in stretch mode."""
    path = SHARED_PET / "images" / "Abyssinian_24.jpg"
    if not path.is_file():
        path = SAMPLE / "images" / "Bengal_193.jpg"
    job = Job.from_file(path)
    big = Job(np.asarray(Image.fromarray(job.image).resize((job.image.shape[1] * 3, job.image.shape[0] * 3))))
    stretch = Predictor(stretch_model, options=InferenceOptions(mode="stretch"))
    tile = Predictor(stretch_model, options=InferenceOptions(mode="tile"))
    for image_job in (job, big):
        a, b = stretch.run([image_job])[0], tile.run([Job(image_job.image, image_job.source)])[0]
        assert len(np.unique(a)) >= 2
        assert (a == b).mean() > 0.9999


def test_stretch_refuses_a_crop_model(crop_model, tmp_path, capsys):
    assert main(["predict", f"model={crop_model}", f"source={SAMPLE / 'images' / 'Bengal_192.jpg'}",
                 f"out={tmp_path}", "mode=stretch"]) == 1
    assert "crops at native resolution" in capsys.readouterr().err
