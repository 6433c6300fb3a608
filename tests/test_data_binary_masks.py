"""Binary masks stored as 0/255 (or 0/1) in a folder without dataset.json: background / foreground (issue 13).

The folders are made from the bundled Pet sample: pet = foreground, background and border = background.
"""
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import SAMPLE, write_image, write_mask
from seglab.cli import main
from seglab.data import load_mask
from seglab.data.class_presence import require_two_classes
from seglab.data.folder import load_split
from seglab.data.io import DataError

PET = 1  # the trimaps: 1 pet, 2 background, 3 border
# a fixed amount of work (a time budget would train for as long as it says, however busy the cores are):
# 8 epochs of 40 images, ~20 s on 2 idle cores
TRAIN_ARGS = ["imgsz=64", "width=8", "depth=3", "batch=4", "lr=0.01", "epochs=8", "augment=false", "samples=0"]
QUICK_ARGS = ["imgsz=32", "width=4", "depth=2", "batch=8", "epochs=1", "samples=0"]


def pet_stems(name: str) -> list[str]:
    return [line.split()[0] for line in (SAMPLE / "annotations" / name).read_text().splitlines() if line.strip()]


def make_binary_folder(root: Path, foreground: int, stems=None, splits: dict | None = None) -> Path:
    """images/ copied from the Pet sample, masks/ = 0 everywhere but `foreground` on the pet."""
    stems = stems or [*pet_stems("trainval.txt"), *pet_stems("test.txt")]
    (root / "images").mkdir(parents=True)
    for stem in stems:
        shutil.copy(SAMPLE / "images" / f"{stem}.jpg", root / "images")
        trimap = np.asarray(Image.open(SAMPLE / "annotations" / "trimaps" / f"{stem}.png"))
        write_mask(root / "masks" / f"{stem}.png", np.where(trimap == PET, foreground, 0))
    for split, names in (splits or {}).items():
        (root / "splits").mkdir(exist_ok=True)
        (root / "splits" / f"{split}.txt").write_text("".join(f"{n}\n" for n in names))
    return root


@pytest.fixture(scope="module")
def folder_0_255(tmp_path_factory):
    trainval, test = pet_stems("trainval.txt"), pet_stems("test.txt")
    splits = {"train": trainval[:-8], "val": trainval[-8:], "test": test}
    return make_binary_folder(tmp_path_factory.mktemp("binary") / "data", 255, splits=splits)


@pytest.mark.parametrize("foreground", [255, 1])
def test_binary_masks_read_as_background_and_foreground(tmp_path, foreground):
    root = make_binary_folder(tmp_path / "data", foreground, stems=pet_stems("trainval.txt")[:6])
    spec = load_split(root, "all")
    assert spec.classes.names == ["background", "foreground"] and spec.classes.ignore_index == 255
    assert spec.lut[0] == 0 and spec.lut[foreground] == 1
    assert len(spec.notes) == 1 and "background (0) / foreground" in spec.notes[0]
    assert f"only 0 and {foreground}" in spec.notes[0]
    for index, (_, mask_path) in enumerate(spec.pairs):
        labels = load_mask(spec, index)
        raw = np.asarray(Image.open(mask_path))
        assert np.array_equal(labels == 1, raw == foreground) and set(np.unique(labels).tolist()) == {0, 1}
    require_two_classes(spec)  # both classes occur: no error


def test_all_splits_of_a_folder_agree(tmp_path):
    stems = pet_stems("trainval.txt")[:10]
    root = make_binary_folder(tmp_path / "data", 255, stems=stems)
    train, val = load_split(root, "train"), load_split(root, "val")
    assert train.classes == val.classes and np.array_equal(train.lut, val.lut) and train.notes == val.notes
    assert not {p for p, _ in train.pairs} & {p for p, _ in val.pairs}


def test_verify_says_so_and_exits_0(folder_0_255, capsys):
    code = main(["verify", f"data={folder_0_255}"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "split train: 40 pairs, 40 ok, 0 problem(s); 2 classes, ignore index 255" in out
    notes = [line for line in out.splitlines() if line.strip().startswith("note:")]
    assert len(notes) == 1 and "read as background (0) / foreground (255)" in notes[0]  # once, not per split
    share = next(line for line in out.splitlines() if "class pixel share" in line)
    assert "background " in share and "foreground " in share and "ignored (255) 0.0%" in share
    assert "warning" not in out and "OK: every pair" in out


@pytest.mark.parametrize("meta, names, lut_255", [
    ({"classes": ["background", "object"]}, ["background", "object"], 255),  # 255 is the ignore value again
    ({"ignore_index": 255}, ["class_0"], 255),  # saying what 255 means turns the binary reading off
    ({"classes": ["bg", "a", "b"], "ignore_index": 7}, None, -1),  # 255 is then not a valid value
    ({"name": "toy", "description": "free text"}, ["background", "foreground"], 1),  # says nothing about values
])
def test_dataset_json_still_decides(tmp_path, meta, names, lut_255):
    root = make_binary_folder(tmp_path / "data", 255, stems=pet_stems("trainval.txt")[:4])
    (root / "dataset.json").write_text(json.dumps(meta))
    spec = load_split(root, "all")
    assert spec.classes.names == (names or meta["classes"]) and spec.lut[255] == lut_255
    assert bool(spec.notes) == (names == ["background", "foreground"])


@pytest.mark.parametrize("extra", [1, 128])
def test_other_value_sets_keep_todays_reading(tmp_path, extra):
    """Only exactly {0, 255} or {0, 1} is binary: one mask with another value turns it off for the folder."""
    root = make_binary_folder(tmp_path / "data", 255, stems=pet_stems("trainval.txt")[:4])
    mask = root / "masks" / f"{pet_stems('trainval.txt')[0]}.png"
    labels = np.asarray(Image.open(mask)).copy()
    labels[0, 0] = extra
    write_mask(mask, labels)
    spec = load_split(root, "all")
    assert spec.classes.names == [f"class_{i}" for i in range(extra + 1)] and spec.lut[255] == 255
    assert not spec.notes


def test_a_rewritten_mask_is_read_again(tmp_path):
    """The per-mask value cache must not keep a mask's old values once the file changes."""
    stems = pet_stems("trainval.txt")[:3]
    root = make_binary_folder(tmp_path / "data", 255, stems=stems)
    assert load_split(root, "all").classes.names == ["background", "foreground"]
    mask = root / "masks" / f"{stems[1]}.png"
    labels = np.asarray(Image.open(mask)).copy()
    labels[labels == 255] = 2
    write_mask(mask, labels)
    os.utime(mask, ns=(mask.stat().st_atime_ns, mask.stat().st_mtime_ns + 10**9))  # coarse file-system clocks
    spec = load_split(root, "all")
    assert spec.classes.names == ["class_0", "class_1", "class_2"] and not spec.notes


def write_single_class_folder(root: Path, value: int, meta: dict | None = None) -> Path:
    for i in range(5):
        write_image(root / "images" / f"m{i}.png", (20, 16), seed=i)
        labels = np.zeros((16, 20), np.uint8)
        labels[4:9, 5:12] = value
        write_mask(root / "masks" / f"m{i}.png", labels)
    if meta is not None:
        (root / "dataset.json").write_text(json.dumps(meta))
    return root


def test_only_one_class_in_the_training_set_is_an_error(tmp_path, capsys):
    root = write_single_class_folder(tmp_path / "zeros", 0)
    with pytest.raises(DataError) as info:
        require_two_classes(load_split(root, "train"))
    message = str(info.value)
    assert message.startswith(f"{root}: only class 'class_0' (id 0) occurs in the 4 mask(s) of split 'train'")
    assert "no other class is declared" in message and "dataset.json" in message

    code = main(["train", f"data={root}", f"project={tmp_path / 'runs'}", "epochs=1", "imgsz=32", "width=4"])
    err = capsys.readouterr().err
    assert code == 1 and "only class 'class_0' (id 0) occurs" in err
    assert not (tmp_path / "runs").exists()  # stopped before making a run folder


def test_declared_classes_with_0_255_masks_say_why(tmp_path, capsys):
    """dataset.json names two classes, but 255 is its ignore value: only background occurs in training."""
    root = write_single_class_folder(tmp_path / "declared", 255, meta={"classes": ["background", "object"]})
    with pytest.raises(DataError, match=r"'object' never occurs.*masks hold only class 0 and the ignore value 255; "
                                        r"binary masks stored as 0/255\?"):
        require_two_classes(load_split(root, "train"))
    code = main(["verify", f"data={root}"])
    out = capsys.readouterr().out
    assert code == 0 and "warning: only class 'background' (id 0) occurs in the 5 mask(s) of split 'all'" in out


def background_only_scores(spec) -> tuple[float, float]:
    """Foreground IoU and mIoU of predicting background everywhere, from the masks at their own size."""
    foreground = total = 0
    for index in range(len(spec.pairs)):
        labels = load_mask(spec, index)
        foreground += int((labels == 1).sum())
        total += labels.size
    return 0.0, (1 - foreground / total) / 2  # background IoU = its pixel share; foreground IoU = 0


def train_and_score_test(folder: Path, project: Path, args: list[str], capsys) -> tuple[str, dict]:
    """`seglab train` then `seglab val split=test` through the CLI: (train output, val_test.json)."""
    assert main(["train", f"data={folder}", f"project={project}", "name=binary", *args]) == 0
    out = capsys.readouterr().out
    run_dir = project / "binary"
    assert main(["val", f"model={run_dir / 'best.pt'}", "split=test", "verbose=false"]) == 0
    return out, json.loads((run_dir / "val_test.json").read_text())


def test_0_255_folder_trains_through_the_cli(folder_0_255, tmp_path, capsys):
    """The quick form (~10 s): one tiny epoch; the start says how the masks were read, the model has both classes."""
    out, scores = train_and_score_test(folder_0_255, tmp_path / "runs", QUICK_ARGS, capsys)
    notes = [line for line in out.splitlines() if "read as background (0) / foreground (255)" in line]
    assert len(notes) == 1 and notes[0].startswith("note: ")
    assert "40 train / 8 val images, 2 classes" in out
    assert list(scores["iou_per_class"]) == ["background", "foreground"] and scores["images"] == 12


def test_0_255_folder_trains_to_a_sensible_score(folder_0_255, tmp_path, capsys):
    """8 epochs (~10 s on 2 cores), scored on the 12 held-out test images against predicting background."""
    _, scores = train_and_score_test(folder_0_255, tmp_path / "runs", TRAIN_ARGS, capsys)
    trivial_foreground, trivial_miou = background_only_scores(load_split(folder_0_255, "test"))
    assert scores["iou_per_class"]["foreground"] > trivial_foreground + 0.25, scores["iou_per_class"]
    assert scores["miou"] > trivial_miou + 0.1, (scores["miou"], trivial_miou)
