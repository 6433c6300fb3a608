"""Folder datasets whose masks are RGB colour images: "colors" as the palette, or an explicit "color_map"."""
import json

import numpy as np
import pytest
from PIL import Image

from conftest import write_image
from seglab.data import DataError, SegmentationDataset, load_mask
from seglab.data.folder import load_split

PALETTE = [(0, 0, 0), (128, 64, 128), (220, 20, 60)]  # background, road, person


def colour_mask(labels: np.ndarray, palette=PALETTE) -> np.ndarray:
    lut = np.array(palette, dtype=np.uint8)
    return lut[labels]


def make_colour_folder(root, meta, labels_list, fmt="PNG", palette=PALETTE):
    for i, labels in enumerate(labels_list):
        write_image(root / "images" / f"p{i}.jpg", (labels.shape[1], labels.shape[0]), "JPEG", seed=i)
        (root / "masks").mkdir(parents=True, exist_ok=True)
        Image.fromarray(colour_mask(labels, palette)).save(root / "masks" / f"p{i}.png", format=fmt)
    (root / "dataset.json").write_text(json.dumps(meta))
    return root


def labels(seed, values=(0, 1, 2), shape=(10, 12)):
    out = np.random.default_rng(seed).choice(np.array(values), shape).astype(np.uint8)
    out[0, : len(values)] = values
    return out


def test_colors_are_the_palette_of_rgb_masks(tmp_path):
    truth = [labels(0), labels(1)]
    root = make_colour_folder(tmp_path / "d", {"classes": ["bg", "road", "person"],
                                               "colors": [list(c) for c in PALETTE]}, truth)
    spec = load_split(root, "all")
    for i in range(2):
        assert np.array_equal(load_mask(spec, i), truth[i])
    image, mask, _ = SegmentationDataset(spec, 8).preload()[0]
    assert image.shape == (3, 8, 8) and set(mask.unique().tolist()) <= {0, 1, 2}


def test_color_map_names_ids_hex_and_ignore(tmp_path):
    palette = PALETTE + [(255, 255, 255), (100, 100, 100)]
    truth = labels(0, values=(0, 1, 2, 3, 4))
    meta = {"classes": ["bg", "road", "person"], "ignore_index": 255,
            "color_map": {"0,0,0": "bg", "#804080": "road", " 220, 20, 60 ": 2, "255,255,255": "ignore",
                          "100,100,100": 1}}  # two colours for road
    root = make_colour_folder(tmp_path / "d", meta, [truth], palette=palette)
    spec = load_split(root, "all")
    expected = np.array([0, 1, 2, 255, 1], np.uint8)[truth]
    assert np.array_equal(load_mask(spec, 0), expected)
    assert spec.classes.colors == [(0, 0, 0), (128, 64, 128), (220, 20, 60)]  # first colour mapped to each class


def test_classes_read_off_colour_masks_with_an_id_color_map(tmp_path):
    meta = {"color_map": {"0,0,0": 0, "128,64,128": 1, "220,20,60": 2}}
    root = make_colour_folder(tmp_path / "d", meta, [labels(0), labels(1)])
    assert load_split(root, "all").classes.names == ["class_0", "class_1", "class_2"]


def test_unknown_colour_names_file_colour_and_position(tmp_path):
    truth = labels(0)
    root = make_colour_folder(tmp_path / "d", {"classes": ["bg", "road", "person"],
                                               "colors": [list(c) for c in PALETTE]}, [truth])
    rgb = colour_mask(truth)
    rgb[4, 7] = (1, 2, 3)
    rgb[5, 1] = (1, 2, 3)
    rgb[9, 9] = (9, 9, 9)
    Image.fromarray(rgb).save(root / "masks" / "p0.png")
    spec = load_split(root, "all")
    with pytest.raises(DataError) as info:
        load_mask(spec, 0)
    message = str(info.value)
    assert "masks/p0.png" in message and "(1, 2, 3) at (x=7, y=4)" in message
    assert "3 pixels, 2 unknown colour(s)" in message


def test_jpeg_colour_mask_gets_a_hint(tmp_path):
    y, x = np.mgrid[0:32, 0:32]
    truth = ((x // 8 + y // 8) % 3).astype(np.uint8)
    root = make_colour_folder(tmp_path / "d", {"colors": [list(c) for c in PALETTE]}, [truth], fmt="JPEG")
    with pytest.raises(DataError, match=r"p0\.png: colour .* not in the colour table .*store colour masks as PNG"):
        load_split(root, "all")


def test_rgb_mask_without_a_colour_table(tmp_path):
    root = make_colour_folder(tmp_path / "d", {"classes": ["bg", "road", "person"]}, [labels(0)])
    with pytest.raises(DataError, match=r"p0\.png: mask has mode RGB.*\"colors\" or \"color_map\""):
        load_mask(load_split(root, "all"), 0)


def test_rgba_colour_mask_drops_alpha_and_palette_masks_stay_indices(tmp_path):
    truth = labels(0)
    root = make_colour_folder(tmp_path / "d", {"colors": [list(c) for c in PALETTE]}, [truth, truth])
    rgba = np.dstack([colour_mask(truth), np.full(truth.shape, 7, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(root / "masks" / "p0.png")
    Image.fromarray(truth, "L").convert("P").save(root / "masks" / "p1.png")  # indices, whatever the palette
    spec = load_split(root, "all")
    assert np.array_equal(load_mask(spec, 0), truth) and np.array_equal(load_mask(spec, 1), truth)


@pytest.mark.parametrize("meta, message", [
    ({"classes": ["a", "b", "c"], "color_map": {"red": "a"}}, r"key 'red' is not a colour"),
    ({"classes": ["a", "b", "c"], "color_map": {"1,2": "a"}}, r"key '1,2' is not a colour"),
    ({"classes": ["a", "b", "c"], "color_map": {"0,0,300": "a"}}, r"is not a colour"),
    ({"classes": ["a", "b", "c"], "color_map": {"0,0,0": "sky"}}, r"maps '0,0,0' to 'sky', which is not in"),
    ({"classes": ["a", "b", "c"], "color_map": {"0,0,0": 3}}, r"maps '0,0,0' to 3; expected a class name"),
    ({"classes": ["a", "b", "c"], "color_map": {"0,0,0": 1.5}}, r"expected a class name"),
    ({"classes": ["a", "b", "c"], "color_map": {"0,0,0": 0, "#000000": 1}}, r"gives the colour \(0, 0, 0\) twice"),
    ({"classes": ["a", "b", "c"], "color_map": [[0, 0, 0]]}, r"must be an object"),
    ({"classes": ["a", "b", "c"], "colors": [[0, 0, 0], [0, 0, 0], [1, 1, 1]]}, r"same colour twice"),
    ({"color_map": {"0,0,0": "a"}}, r"not in \"classes\" \(none given\)"),
])
def test_bad_colour_tables_name_dataset_json(tmp_path, meta, message):
    root = make_colour_folder(tmp_path / "d", meta, [labels(0)])
    with pytest.raises(DataError, match=rf"dataset\.json: .*{message}"):
        load_split(root, "all")
