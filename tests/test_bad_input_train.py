"""skip_bad=true end to end: training continues past bad files and <run>/skipped.txt lists them."""
import numpy as np

from conftest import write_mask
from seglab.cli import main

TRAIN = ["width=4", "depth=2", "imgsz=32", "epochs=1", "batch=4", "samples=0", "verbose=false", "val_fraction=0.25"]


def test_train_skips_bad_pairs_and_lists_them(make_folder, tmp_path, capsys):
    root = make_folder([f"s{i:02d}" for i in range(12)], image_suffix=".jpg", meta={"classes": ["a", "b", "c"]})
    (root / "images" / "s03.jpg").write_bytes(b"")  # zero bytes
    write_mask(root / "masks" / "s07.png", np.full((13, 19), 9))  # label 9 with 3 classes
    write_mask(root / "masks" / "orphan.png", np.zeros((4, 4)))  # a mask without an image

    args = [f"data={root}", f"project={tmp_path}", *TRAIN]
    assert main(["train", *args, "name=strict"]) == 1
    assert "orphan.png: mask without an image" in capsys.readouterr().err
    assert not (tmp_path / "strict").exists()  # nothing was made before the data was checked

    assert main(["train", *args, "name=lenient", "skip_bad=true", "augment_preset=strong"]) == 0
    lines = (tmp_path / "lenient" / "skipped.txt").read_text().splitlines()
    files = [line.split("\t")[0] for line in lines]
    assert sorted(files) == sorted([str(root / "images" / "s03.jpg"), str(root / "masks" / "s07.png"),
                                    str(root / "masks" / "orphan.png")])
    reasons = dict(line.split("\t") for line in lines)
    assert reasons[str(root / "images" / "s03.jpg")] == "file is empty (0 bytes)"
    assert "label value(s) [9]" in reasons[str(root / "masks" / "s07.png")]
    assert "skip_bad: left out" in capsys.readouterr().err
    assert (tmp_path / "lenient" / "best.pt").is_file()


def test_clean_run_writes_no_skipped_list(make_folder, tmp_path):
    root = make_folder([f"s{i:02d}" for i in range(8)])
    assert main(["train", f"data={root}", f"project={tmp_path}", "name=clean", "skip_bad=true", *TRAIN]) == 0
    assert not (tmp_path / "clean" / "skipped.txt").exists()
