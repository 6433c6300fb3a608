"""Pascal VOC 2012 layout and the SBD augmented set, on small trees written in tmp_path."""
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from PIL import Image

from conftest import write_image
from seglab.config import make_config
from seglab.data import DataError, SegmentationDataset, detect_format, load_mask, open_split
from seglab.data.voc import BORDER_COLOR, COLORS, NAMES, load_split, sbd_dir

VOC_TRAIN, VOC_VAL = ["2007_000032", "2007_000039"], ["2007_000033", "2007_000042"]
SBD_TRAIN, SBD_VAL = ["2008_000002", "2007_000032", "2007_000033"], ["2008_000003", "2008_000004"]
SIZE = (20, 14)  # width, height


def voc_labels(seed: int) -> np.ndarray:
    labels = np.random.default_rng(seed).integers(0, 21, (SIZE[1], SIZE[0])).astype(np.uint8)
    labels[0, :3] = [0, 15, 255]  # background, person, the object border
    return labels


def write_voc_png(path: Path, labels: np.ndarray) -> Path:
    """A palette PNG like VOC's: index = class id, palette = the VOC colours, 255 = the border colour."""
    image = Image.frombytes("P", (labels.shape[1], labels.shape[0]), labels.astype(np.uint8).tobytes())
    palette = [v for c in COLORS for v in c] + [0] * 3 * (256 - len(COLORS))
    palette[3 * 255:] = BORDER_COLOR
    image.putpalette(palette)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


def write_sbd_mat(path: Path, labels: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(path, {"GTcls": {"Segmentation": labels.astype(np.uint8), "Boundaries": np.zeros(1),
                                      "CategoriesPresent": np.unique(labels)}})
    return path


def make_voc(base: Path, sbd: bool = True) -> Path:
    """base/VOCdevkit/VOC2012 (+ base/VOCdevkit/SBD); returns the VOCdevkit folder."""
    voc = base / "VOCdevkit" / "VOC2012"
    for i, name in enumerate(VOC_TRAIN + VOC_VAL):
        write_image(voc / "JPEGImages" / f"{name}.jpg", SIZE, "JPEG", seed=i)
        write_voc_png(voc / "SegmentationClass" / f"{name}.png", voc_labels(i))
    write_image(voc / "JPEGImages" / "2008_000004.jpg", SIZE, "JPEG", seed=40)  # SBD-only name whose photo VOC has
    sets = voc / "ImageSets" / "Segmentation"
    sets.mkdir(parents=True)
    for split, names in (("train", VOC_TRAIN), ("val", VOC_VAL), ("trainval", VOC_TRAIN + VOC_VAL)):
        (sets / f"{split}.txt").write_text("".join(f"{n}\n" for n in names))
    if sbd:
        root = base / "VOCdevkit" / "SBD"
        for i, name in enumerate(dict.fromkeys(SBD_TRAIN + SBD_VAL)):
            write_image(root / "img" / f"{name}.jpg", SIZE, "JPEG", seed=100 + i)
            write_sbd_mat(root / "cls" / f"{name}.mat", voc_labels(100 + i) % 21)
        (root / "train.txt").write_text("".join(f"{n}\n" for n in SBD_TRAIN))
        (root / "val.txt").write_text("".join(f"{n}\n" for n in SBD_VAL))
    return base / "VOCdevkit"


def names(spec):
    return [image.stem for image, _ in spec.pairs]


def test_root_may_be_voc2012_vocdevkit_or_above(tmp_path):
    devkit = make_voc(tmp_path)
    for root in (devkit / "VOC2012", devkit, tmp_path):
        assert detect_format(root) == "voc"
        spec = open_split(make_config(data=str(root)), "train")
        assert names(spec) == VOC_TRAIN and spec.root == devkit / "VOC2012"
    assert names(load_split(devkit, "val")) == VOC_VAL
    assert names(load_split(devkit, "trainval")) == VOC_TRAIN + VOC_VAL


def test_classes_palette_and_border(tmp_path):
    devkit = make_voc(tmp_path, sbd=False)
    spec = load_split(devkit, "train")
    assert spec.classes.names == NAMES and len(NAMES) == 21 and spec.classes.ignore_index == 255
    assert spec.classes.colors[:5] == [(0, 0, 0), (128, 0, 0), (0, 128, 0), (128, 128, 0), (0, 0, 128)]
    assert spec.classes.colors[15] == (192, 128, 128) and spec.classes.colors[20] == (0, 64, 128)  # person, tv
    mask = load_mask(spec, 0)
    assert np.array_equal(mask, voc_labels(0))  # palette indices are the class ids; 255 stays ignored
    assert Image.open(spec.pairs[0][1]).mode == "P"


def test_voc_mask_saved_as_rgb_decodes_through_the_palette(tmp_path):
    devkit = make_voc(tmp_path, sbd=False)
    mask_path = devkit / "VOC2012" / "SegmentationClass" / f"{VOC_TRAIN[0]}.png"
    Image.open(mask_path).convert("RGB").save(mask_path)
    assert np.array_equal(load_mask(load_split(devkit, "train"), 0), voc_labels(0))


def test_train_aug_merges_sbd_and_leaves_out_voc_val(tmp_path):
    devkit = make_voc(tmp_path)
    assert sbd_dir(devkit) == devkit / "SBD"
    spec = load_split(devkit, "train_aug")
    # VOC train, then SBD train and val in list order, without the VOC val image 2007_000033
    assert names(spec) == ["2007_000032", "2007_000039", "2008_000002", "2008_000003", "2008_000004"]
    by_name = {image.stem: (image, mask) for image, mask in spec.pairs}
    assert by_name["2007_000032"][1].suffix == ".png"  # VOC's own mask wins over SBD's
    assert by_name["2008_000002"] == (devkit / "SBD" / "img" / "2008_000002.jpg", devkit / "SBD" / "cls" / "2008_000002.mat")
    assert by_name["2008_000004"][0] == devkit / "VOC2012" / "JPEGImages" / "2008_000004.jpg"
    index = names(spec).index("2008_000002")
    assert np.array_equal(load_mask(spec, index), voc_labels(100) % 21)
    assert not set(names(spec)) & set(VOC_VAL)


def test_voc_aug_true_trains_on_train_aug_and_keeps_val(tmp_path):
    devkit = make_voc(tmp_path)
    cfg = make_config(data=str(devkit), voc_aug=True)
    train, val = open_split(cfg, "train"), open_split(cfg, "val")
    assert train.name == "train_aug" and len(train.pairs) == 5 and names(val) == VOC_VAL
    dataset = SegmentationDataset(train, 16, augment="strong").preload()
    for key in [(i, 7) for i in range(len(dataset))]:
        image, mask, _ = dataset[key]
        assert image.shape == (3, 16, 16) and set(mask.unique().tolist()) <= set(range(21)) | {255}


def test_train_aug_without_sbd_says_where_to_put_it(tmp_path):
    devkit = make_voc(tmp_path, sbd=False)
    with pytest.raises(DataError, match=r"needs SBD's dataset/ folder"):
        load_split(devkit, "train_aug")


def test_sbd_as_benchmark_release(tmp_path):
    devkit = make_voc(tmp_path)
    (devkit / "benchmark_RELEASE").mkdir()
    (devkit / "SBD").rename(devkit / "benchmark_RELEASE" / "dataset")
    assert len(load_split(tmp_path, "train_aug").pairs) == 5


@pytest.mark.parametrize("content, message", [
    (b"", r"not a readable MATLAB \.mat file"),
    (b"MATLAB 5.0 MAT-file" + b"\0" * 50, r"not a readable MATLAB \.mat file"),
    (None, r"has no 2-D GTcls\.Segmentation"),
], ids=["empty", "garbage", "no_GTcls"])
def test_bad_sbd_mat_names_the_file(tmp_path, content, message):
    devkit = make_voc(tmp_path)
    path = devkit / "SBD" / "cls" / "2008_000002.mat"
    if content is None:
        scipy.io.savemat(path, {"GTinst": {"Segmentation": np.zeros((2, 2), np.uint8)}})
    else:
        path.write_bytes(content)
    spec = load_split(devkit, "train_aug")
    with pytest.raises(DataError, match=rf"2008_000002\.mat: {message}"):
        load_mask(spec, names(spec).index("2008_000002"))


def test_missing_listed_files_name_the_file_or_are_skipped(tmp_path):
    devkit = make_voc(tmp_path)
    (devkit / "VOC2012" / "JPEGImages" / f"{VOC_VAL[1]}.jpg").unlink()
    (devkit / "SBD" / "cls" / "2008_000003.mat").unlink()
    with pytest.raises(DataError, match=rf"JPEGImages/{VOC_VAL[1]}\.jpg: listed in Segmentation/val\.txt but missing"):
        load_split(devkit, "val")
    spec = load_split(devkit, "val", skip_bad=True)
    assert names(spec) == VOC_VAL[:1] and spec.skipped[0][0].name == f"{VOC_VAL[1]}.jpg"
    with pytest.raises(DataError, match=r"2008_000003\.mat: listed for train_aug but missing"):
        load_split(devkit, "train_aug")
    assert len(load_split(devkit, "train_aug", skip_bad=True).pairs) == 4


def test_unknown_split(tmp_path):
    with pytest.raises(ValueError, match="split='test'.*train_aug"):
        load_split(make_voc(tmp_path, sbd=False), "test")
