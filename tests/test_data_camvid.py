"""CamVid in the SegNet layout: list parsing, id 11 -> ignore, real data when present."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from seglab.config import make_config
from seglab.data import DataError, load_mask, open_split
from seglab.data.camvid import NAMES

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "camvid"


def make_camvid(root: Path, n: int = 3) -> Path:
    for split in ("train", "val"):
        (root / split).mkdir(parents=True)
        (root / f"{split}annot").mkdir()
        lines = []
        for i in range(n):
            name = f"{split}_{i}.png"
            Image.fromarray(np.full((6, 8, 3), 40 * i, np.uint8)).save(root / split / name)
            label = np.arange(48, dtype=np.uint8).reshape(6, 8) % 12  # 0..11, 11 = Unlabelled
            Image.fromarray(label).save(root / f"{split}annot" / name)
            lines.append(f"/SegNet/CamVid/{split}/{name} /SegNet/CamVid/{split}annot/{name}")
        (root / f"{split}.txt").write_text("\n".join(lines) + "\n")
    return root


def test_segnet_list_prefix_is_stripped_and_unlabelled_becomes_ignore(tmp_path):
    root = make_camvid(tmp_path / "camvid")
    spec = open_split(make_config(data=str(root)), "train")
    assert [p[0].name for p in spec.pairs] == ["train_0.png", "train_1.png", "train_2.png"]
    assert spec.classes.names == NAMES and spec.classes.ignore_index == 255
    mask = load_mask(spec, 0)
    raw = np.arange(48).reshape(6, 8) % 12
    assert (mask[raw == 11] == 255).all() and (mask[raw < 11] == raw[raw < 11]).all()
    assert len(open_split(make_config(data=str(root)), "trainval").pairs) == 6


def test_missing_listed_file_and_label_out_of_range_name_the_file(tmp_path):
    root = make_camvid(tmp_path / "camvid")
    (root / "train" / "train_1.png").unlink()
    with pytest.raises(DataError, match="train_1.png.*missing"):
        open_split(make_config(data=str(root)), "train")
    Image.fromarray(np.full((6, 8), 12, np.uint8)).save(root / "valannot" / "val_0.png")
    spec = open_split(make_config(data=str(root)), "val")
    with pytest.raises(DataError, match=r"valannot/val_0.png.*\[12\]"):
        load_mask(spec, 0)


@pytest.mark.skipif(not REAL.is_dir(), reason=f"real CamVid not found at {REAL}")
def test_real_camvid_splits_and_labels():
    cfg = make_config(data=str(REAL))
    train, val = open_split(cfg, "train"), open_split(cfg, "val")
    assert (len(train.pairs), len(val.pairs)) == (367, 101)
    mask = load_mask(train, 0)
    assert mask.shape == (360, 480)
    assert set(np.unique(mask)) <= set(range(11)) | {255}
