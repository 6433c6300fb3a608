"""`seglab verify data=...`: every pair of every split checked, a report, exit code 1 on problems."""
from pathlib import Path

import numpy as np
import pytest

from conftest import write_image, write_mask
from seglab.cli import main
from test_data_voc import make_voc

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def verify(capsys, *args):
    code = main(["verify", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_clean_folder_report(make_folder, capsys):
    root = make_folder([f"s{i}" for i in range(6)], num_classes=3, meta={"classes": ["sky", "road", "car"]})
    code, out, _ = verify(capsys, f"data={root}")
    assert code == 0, out
    assert f"seglab verify: {root} (folder)" in out
    assert "split all: 6 pairs, 6 ok, 0 problem(s); 3 classes, ignore index 255" in out
    assert "image sizes: " in out and "width 16-19" in out and "height 12-14" in out
    shares = out.split("class pixel share: ")[1].splitlines()[0]
    assert shares.startswith("sky ") and "road " in shares and "car " in shares and "ignored (255) 0.0%" in shares
    total = sum(float(part.rsplit(" ", 1)[1].rstrip("%")) for part in shares.split(", "))
    assert abs(total - 100) < 0.5
    assert "OK: every pair of every split is usable" in out


def test_problems_are_listed_by_file_and_fail(make_folder, capsys):
    stems = [f"s{i}" for i in range(6)]
    root = make_folder(stems, num_classes=3, meta={"classes": ["a", "b", "c"]},
                       splits={"train": stems[:4], "val": stems[4:]})
    (root / "images" / "s0.png").write_bytes(b"GIF89a broken")
    write_mask(root / "masks" / "s1.png", np.full((3, 3), 1))
    write_mask(root / "masks" / "s4.png", np.full((12, 16), 5))
    (root / "masks" / "s5.png").unlink()
    code, out, _ = verify(capsys, f"data={root}")
    assert code == 1
    assert "split train: 4 pairs, 2 ok, 2 problem(s)" in out
    assert "split val: 1 pairs, 0 ok, 2 problem(s)" in out
    assert f"[train] {root / 'images' / 's0.png'}: " in out
    assert f"[train] {root / 'masks' / 's1.png'}: mask is 3x3 but its image s1.png is 17x13" in out
    assert f"[val] {root / 'masks' / 's4.png'}: label value(s) [5]" in out
    assert f"{root / 'images' / 's5.png'}: no mask with the same stem" in out
    assert "4 problem(s):" in out and "FAILED" in out and "skip_bad=true" in out


def test_pet_layout_splits_and_overlap_warning(make_pet, capsys):
    root = make_pet(["Bengal_1", "Bengal_2", "Bengal_3"], ["Abyssinian_1", "Bengal_3"])
    code, out, _ = verify(capsys, f"data={root}")
    assert code == 0
    assert "split trainval: 3 pairs" in out and "split test: 2 pairs" in out
    assert "Bengal_3.jpg: in split 'trainval' and in split 'test'" in out


def test_voc_with_and_without_sbd(tmp_path, capsys):
    devkit = make_voc(tmp_path)
    code, out, _ = verify(capsys, f"data={devkit}")
    assert code == 0 and "(voc)" in out and "split train: 2 pairs" in out and "split val: 2 pairs" in out
    assert "21 classes" in out and "ignored (255)" in out
    code, out, _ = verify(capsys, f"data={devkit}", "voc_aug=true")
    assert code == 0 and "split train: 5 pairs, 5 ok" in out
    (devkit / "SBD" / "cls" / "2008_000003.mat").write_bytes(b"junk")
    code, out, _ = verify(capsys, f"data={devkit}", "voc_aug=true")
    assert code == 1 and "2008_000003.mat: not a readable MATLAB .mat file" in out


def test_warnings_do_not_fail(tmp_path, capsys):
    root = tmp_path / "binary"
    for i in range(3):
        write_image(root / "images" / f"m{i}.png", (8, 6), seed=i)
        labels = np.zeros((6, 8), np.uint8)
        labels[2:4, 2:5] = 255  # a 0/255 mask: the foreground is the ignore value
        write_mask(root / "masks" / f"m{i}.png", labels)
    (root / "dataset.json").write_text('{"classes": ["background", "object"]}')
    code, out, _ = verify(capsys, f"data={root}")
    assert code == 0
    assert "warning: split 'all': class(es) ['object'] never occur" in out
    assert "masks hold only class 0 and the ignore value 255; binary masks stored as 0/255?" in out


def test_unknown_layout_is_an_error(tmp_path, capsys):
    (tmp_path / "stuff").mkdir()
    code, _, err = verify(capsys, f"data={tmp_path / 'stuff'}")
    assert code == 1 and "not a dataset layout seglab knows" in err


def test_bundled_sample(capsys):
    code, out, _ = verify(capsys)
    assert code == 0 and "split trainval: 48 pairs, 48 ok" in out and "split test: 12 pairs, 12 ok" in out


@pytest.mark.slow
@pytest.mark.parametrize("name, splits", [("oxford-iiit-pet-subset", {"trainval": 300, "test": 298}),
                                          ("camvid", {"train": 367, "val": 101})])
def test_real_datasets_verify_clean(capsys, name, splits):
    if not (SHARED / name).is_dir():
        pytest.skip(f"{SHARED / name} not found")
    code, out, _ = verify(capsys, f"data={SHARED / name}")
    assert code == 0, out
    for split, count in splits.items():
        assert f"split {split}: {count} pairs, {count} ok, 0 problem(s)" in out
