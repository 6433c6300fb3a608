"""Panoptic data: every layout read into the canonical form, problems named by file, splits, dataset, batch."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from seglab.cli import main
from seglab.data import splits as splitting
from seglab.data.panoptic import (
    OWN_FORMATS,
    PanopticDataset,
    open_panoptic_split,
    panoptic_format,
    verify_split,
)
from seglab.data.panoptic.canonical import (
    ids_from_rgb,
    paint_instances,
    segments_from_maps,
)
from seglab.data.panoptic.spec import compact
from seglab.metrics.panoptic import from_semantic_instance, id_to_rgb, rgb_to_id
from seglab.tasks import TASKS, resolve_task
from seglab.tasks.panoptic.batch import IGNORE, target_maps

HEIGHT, WIDTH = 40, 56
# COCO panoptic categories: ids with gaps, things and stuff interleaved (sorted: person, car, sky, grass)
CATEGORIES = [{"id": 184, "name": "sky", "isthing": 0, "color": [70, 130, 180]},
              {"id": 1, "name": "person", "isthing": 1, "color": [220, 20, 60]},
              {"id": 193, "name": "grass", "isthing": 0, "color": [152, 251, 152]},
              {"id": 7, "name": "car", "isthing": 1, "color": [0, 0, 142]}]
CLASS_OF = {1: 0, 7: 1, 184: 2, 193: 3}  # category id -> 0-based class


def disc(cy, cx, r, height=HEIGHT, width=WIDTH) -> np.ndarray:
    yy, xx = np.mgrid[:height, :width]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


def scene(k: int) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """(image, segment ids with COCO-like large ids, segments_info with COCO category ids) of image k."""
    rng = np.random.default_rng(k)
    ids = np.zeros((HEIGHT, WIDTH), np.int64)
    ids[: HEIGHT // 2] = 2330219 + k  # sky
    ids[HEIGHT // 2:] = 10025880 + k  # grass
    info = [{"id": 2330219 + k, "category_id": 184, "iscrowd": 0}, {"id": 10025880 + k, "category_id": 193, "iscrowd": 0}]
    for j, (cat, crowd) in enumerate([(1, 0), (7, 0), (1, 1 if k == 0 else 0)]):
        mask = disc(8 + 11 * j, 10 + 16 * j + k % 3, 5)
        sid = 3937500 + 1000 * j + k
        ids[mask] = sid
        info.append({"id": sid, "category_id": cat, "iscrowd": crowd})
    ids[0, :3] = 0  # a few void pixels
    image = (rng.integers(0, 60, (HEIGHT, WIDTH, 3)) + 120 * (ids >= 3937500)[..., None]).astype(np.uint8)
    return image, ids, info


def write_panoptic_json(path: Path, png_dir: Path, image_dir: Path, names: list[str], first: int = 0,
                        tamper=None) -> dict:
    images, annotations, truth = [], [], {}
    png_dir.mkdir(parents=True, exist_ok=True)
    image_dir.mkdir(parents=True, exist_ok=True)
    for n, name in enumerate(names):
        image, ids, info = scene(first + n)
        if tamper:
            ids, info = tamper(first + n, ids, info)
        Image.fromarray(image).save(image_dir / f"{name}.jpg", quality=95)
        Image.fromarray(id_to_rgb(ids)).save(png_dir / f"{name}.png")
        images.append({"id": 100 + first + n, "file_name": f"{name}.jpg", "width": WIDTH, "height": HEIGHT})
        annotations.append({"image_id": 100 + first + n, "file_name": f"{name}.png", "segments_info": info})
        truth[name] = (ids, info)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": CATEGORIES}))
    return truth


def write_coco_panoptic(root: Path, counts=(("train2017", 4), ("val2017", 2)), tamper=None) -> dict:
    truth, first = {}, 0
    for split, n in counts:
        names = [f"{split}_{k:03d}" for k in range(n)]
        truth.update(write_panoptic_json(root / "annotations" / f"panoptic_{split}.json",
                                         root / "annotations" / f"panoptic_{split}", root / split, names, first, tamper))
        first += n
    return truth


def write_sample_data(root: Path, n: int = 5) -> dict:
    return write_panoptic_json(root / "panoptic_examples.json", root / "panoptic_examples", root / "input_images",
                               [f"ex{k}" for k in range(n)])


def write_semantic_instance(root: Path, n: int = 4, orphan: bool = False) -> dict:
    """classes road (stuff), car (thing), sky (stuff), person (thing)."""
    for folder in ("images", "semantic", "instances"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    (root / "dataset.json").write_text(json.dumps({"classes": ["road", "car", "sky", "person"],
                                                   "things": ["car", "person"]}))
    drawn = {}
    for k in range(n):
        semantic = np.zeros((HEIGHT, WIDTH), np.uint8)
        semantic[: HEIGHT // 3] = 2
        instances = np.zeros((HEIGHT, WIDTH), np.uint16)
        instances[: HEIGHT // 3] = 9  # an instance id on stuff: ignored
        for j, cls in enumerate([1, 1, 3]):
            mask = disc(20 + 5 * j, 10 + 15 * j, 5)
            semantic[mask] = cls
            instances[mask] = 300 + j  # 16-bit ids
        semantic[-2:, -2:] = 255
        if orphan and k == 0:
            semantic[-5:-3, :4] = 1  # car pixels without an instance
        Image.fromarray(np.random.default_rng(k).integers(0, 255, (HEIGHT, WIDTH, 3)).astype(np.uint8)).save(
            root / "images" / f"im{k}.png")
        Image.fromarray(semantic).save(root / "semantic" / f"im{k}.png")
        Image.fromarray(instances).save(root / "instances" / f"im{k}.png")
        drawn[f"im{k}"] = (semantic, instances)
    return drawn


def write_dsb(root: Path, n: int = 6, size=(48, 64)) -> dict:
    """DSB2018's layout: stage1_train/<id>/images/<id>.png + masks/<m>.png, bright discs on a dark background."""
    height, width = size
    drawn = {}
    for k in range(n):
        rng = np.random.default_rng(k)
        sample = root / "stage1_train" / f"s{k:02d}"
        (sample / "images").mkdir(parents=True)
        (sample / "masks").mkdir()
        image = rng.integers(0, 40, (height, width, 3)).astype(np.uint8)
        masks = [disc(12 + 20 * (j % 2), 12 + 18 * j, 6, height, width) for j in range(3)]
        for j, mask in enumerate(masks):
            image[mask] = 200
            Image.fromarray(mask.astype(np.uint8) * 255).save(sample / "masks" / f"m{j}.png")
        Image.fromarray(image).save(sample / "images" / f"{sample.name}.png")
        drawn[sample.name] = masks
    return drawn


def partition(ids: np.ndarray, segments: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """(category per pixel, -1 void; segment index by first appearance in raster order): comparable across id schemes."""
    cat_of = {s["id"]: s["category_id"] for s in segments}
    cats = np.vectorize(lambda v: cat_of.get(int(v), -1))(ids)
    _, first, inverse = np.unique(ids.ravel(), return_index=True, return_inverse=True)
    rank = np.argsort(np.argsort(first))
    return cats, rank[inverse].reshape(ids.shape)


# --- conversions agree with seglab.metrics.panoptic -----------------------------------------------------
def test_the_data_layers_conversions_agree_with_the_metrics_ones():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (17, 23, 3)).astype(np.uint8)
    assert np.array_equal(ids_from_rgb(rgb), rgb_to_id(rgb))
    is_thing = [False, True, False, True]
    for seed in range(5):
        rng = np.random.default_rng(seed)
        category = rng.integers(0, 4, (20, 30))
        instance = rng.integers(1, 4, (20, 30))
        category[rng.random((20, 30)) < 0.1] = 255
        ours_ids, ours, orphans = segments_from_maps(category, instance, is_thing)
        theirs_ids, theirs = from_semantic_instance(category, instance, is_thing)
        assert orphans == 0
        for a, b in zip(partition(ours_ids, ours), partition(theirs_ids, theirs)):
            assert np.array_equal(a, b)


def test_thing_pixels_without_an_instance_become_void_and_are_counted():
    category = np.array([[0, 1, 1], [1, 1, 255]])
    instance = np.array([[5, 0, 2], [2, 3, 0]])
    ids, segments, orphans = segments_from_maps(category, instance, [False, True])
    assert orphans == 1 and ids[0, 1] == 0 and ids[1, 2] == 0
    assert sorted(s["category_id"] for s in segments) == [0, 1, 1]  # stuff once, instances 2 and 3


def test_compact_renumbers_and_drops_segments_without_pixels():
    ids = np.array([[7, 7, 0], [900, 900, 7]])
    new, segments = compact(ids, [{"id": 900, "category_id": 1}, {"id": 5, "category_id": 0},
                                  {"id": 7, "category_id": 2}])
    assert [s["id"] for s in segments] == [1, 2] and [s["category_id"] for s in segments] == [1, 2]
    assert new.tolist() == [[2, 2, 0], [1, 1, 2]]


# --- layouts --------------------------------------------------------------------------------------------
def test_coco_panoptic_as_coco_ships_it(tmp_path):
    truth = write_coco_panoptic(tmp_path)
    assert panoptic_format(tmp_path) == "coco_panoptic"
    split = open_panoptic_split(tmp_path, "val")  # a prefix naming one split
    assert split.name == "val2017" and len(split.items) == 2
    assert split.classes == ["person", "car", "sky", "grass"] and split.is_thing == [True, True, False, False]
    assert split.category_ids == [1, 7, 184, 193]
    for item in split.items:
        loaded = item.load()
        ids, info = truth[item.name]
        assert np.array_equal(loaded.segment_ids, ids) and not loaded.problems
        assert {s["id"]: (s["category_id"], s["iscrowd"]) for s in loaded.segments} == {
            i["id"]: (CLASS_OF[i["category_id"]], i["iscrowd"]) for i in info}
    crowd = open_panoptic_split(tmp_path, "train2017").items[0].load()
    assert sum(s["iscrowd"] for s in crowd.segments) == 1


def test_panopticapi_sample_data_uses_the_seeded_split_rule(tmp_path):
    write_sample_data(tmp_path, n=5)
    assert panoptic_format(tmp_path) == "panoptic_sample"
    train, val = (open_panoptic_split(tmp_path, s, seed=3, val_fraction=0.4) for s in ("train", "val"))
    names = [f"ex{k}" for k in range(5)]
    assert [i.name for i in val.items] == splitting.choose(tmp_path, names, "val", 3, 0.4)
    assert sorted(i.name for i in train.items + val.items) == names and len(val.items) == 2
    assert train.items[0].image.parent.name == "input_images"


def test_semantic_and_instance_png_folder(tmp_path):
    drawn = write_semantic_instance(tmp_path)
    assert panoptic_format(tmp_path) == "semantic_instance"
    split = open_panoptic_split(tmp_path, "all")
    assert split.is_thing == [False, True, False, True]
    truth = split.items[0].load()
    semantic, instances = drawn[split.items[0].name]
    cats = {s["id"]: s["category_id"] for s in truth.segments}
    assert sorted(cats.values()) == [0, 1, 1, 2, 3]  # road, two cars, sky (its instance id 9 ignored), a person
    for sid, cat in cats.items():
        where = truth.segment_ids == sid
        assert (semantic[where] == cat).all()
        if split.is_thing[cat]:
            assert len(np.unique(instances[where])) == 1
    assert (truth.segment_ids[semantic == 255] == 0).all()


def test_instance_layouts_get_background_as_the_one_stuff_class(tmp_path):
    drawn = write_dsb(tmp_path, n=3)
    split = open_panoptic_split(tmp_path, "all", fmt="per_object_png")
    assert split.classes == ["background", "nucleus"] and split.is_thing == [False, True]
    truth = split.items[0].load()
    masks = drawn[split.items[0].name]
    things = [s for s in truth.segments if s["category_id"] == 1]
    assert len(things) == len(masks)
    thing_pixels = np.isin(truth.segment_ids, [s["id"] for s in things])
    assert np.array_equal(thing_pixels, np.any(masks, axis=0))
    background = [s["id"] for s in truth.segments if s["category_id"] == 0]
    assert len(background) == 1 and np.array_equal(truth.segment_ids == background[0], ~thing_pixels)


def test_only_panopticss_own_layouts_name_the_task(tmp_path):
    coco, dsb = tmp_path / "coco", tmp_path / "dsb"
    write_coco_panoptic(coco)
    write_dsb(dsb, n=2)
    assert resolve_task(TASKS, data_root=coco).name == "panoptic"
    assert resolve_task(TASKS, data_root=dsb).name == "instance"  # DSB2018 stays instance unless task=panoptic
    assert "per_object_png" not in OWN_FORMATS


# --- verify names the problems --------------------------------------------------------------------------
def tampered(n, ids, info):
    if n == 0:
        ids = ids.copy()
        ids[-3:, -3:] = 777  # in the PNG, not in the JSON
        info = info + [{"id": 5555, "category_id": 42, "iscrowd": 0}]  # an unknown category
        ids[-6:-4, -3:] = 5555
    return ids, info


def test_verify_names_missing_ids_unknown_categories_and_orphan_thing_pixels(tmp_path, capsys):
    coco = tmp_path / "coco"
    write_coco_panoptic(coco, tamper=tampered)
    assert main(["verify", f"data={coco}"]) == 1
    out = capsys.readouterr().out
    png = coco / "annotations" / "panoptic_train2017" / "train2017_000.png"
    assert f"{png}: segment ids [777] in the PNG are missing from the JSON" in out
    assert f"{png}: segment 5555 has category_id 42, not in the JSON's categories" in out
    assert "split train2017 (coco_panoptic): 4 images" in out and "things" in out and "stuff" in out
    folder = tmp_path / "folder"
    write_semantic_instance(folder, orphan=True)
    assert main(["verify", f"data={folder}"]) == 1
    assert f"{folder / 'instances' / 'im0.png'}: 8 thing pixel(s) without an instance" in capsys.readouterr().out
    report = verify_split(open_panoptic_split(tmp_path / "coco", "val2017"))
    assert not report.problems and report.things == 6 and report.stuff == 4


def test_a_problem_image_fails_training_data_by_name_unless_skipped(tmp_path):
    write_coco_panoptic(tmp_path, tamper=tampered)
    split = open_panoptic_split(tmp_path, "train2017")
    with pytest.raises(ValueError, match="train2017_000.png: .*not in the JSON's categories"):
        PanopticDataset(split, 32)[0]
    kept = PanopticDataset(split, 32, skip_bad=True).preload()
    assert len(kept) == 3 and len(kept.skipped) == 1


# --- dataset and batch ----------------------------------------------------------------------------------
def test_dataset_resizes_the_longer_side_and_augments_deterministically(tmp_path):
    write_coco_panoptic(tmp_path)
    dataset = PanopticDataset(open_panoptic_split(tmp_path, "train2017"), 28, augment="light")
    image, target, index = dataset[0]
    assert image.shape == (3, 20, 28) and target["segment_ids"].shape == (20, 28) and index == 0
    ids = target["segment_ids"]
    assert sorted(int(v) for v in ids.unique() if v) == [s["id"] for s in target["segments"]]
    a, b, c = dataset[(1, 5)], dataset[(1, 5)], dataset[(1, 6)]
    assert torch.equal(a[0], b[0]) and torch.equal(a[1]["segment_ids"], b[1]["segment_ids"])
    assert not torch.equal(a[0], c[0])
    moved = a[1]["segment_ids"]
    assert sorted(int(v) for v in moved.unique() if v) == list(range(1, len(a[1]["segments"]) + 1))


def test_training_targets_ignore_void_crowd_and_padding(tmp_path):
    write_coco_panoptic(tmp_path)
    dataset = PanopticDataset(open_panoptic_split(tmp_path, "train2017"), None)
    _, target, _ = dataset[0]  # image 0 has a crowd person
    is_thing = [True, True, False, False]
    semantic, instances = target_maps(target, is_thing, (HEIGHT + 8, WIDTH + 8))
    ids = target["segment_ids"]
    crowd = [s["id"] for s in target["segments"] if s["iscrowd"]]
    assert crowd and (semantic[:HEIGHT, :WIDTH][torch.isin(ids, torch.tensor(crowd))] == IGNORE).all()
    assert (semantic[HEIGHT:] == IGNORE).all() and (instances[:, WIDTH:] == 0).all()
    assert (semantic[:HEIGHT, :WIDTH][ids == 0] == IGNORE).all()
    things = [s for s in target["segments"] if is_thing[s["category_id"]] and not s["iscrowd"]]
    found = sorted(int(v) for v in instances.unique() if v)
    assert found == list(range(1, len(things) + 1))
    for k in found:  # one instance = one segment, of a thing class
        assert len(ids[instances[:HEIGHT, :WIDTH] == k].unique()) == 1
        assert is_thing[int(semantic[instances == k][0])]


def test_paint_instances_lets_the_first_of_overlapping_instances_keep_pixels():
    a, b = np.zeros((4, 4), bool), np.zeros((4, 4), bool)
    a[:2, :2], b[1:3, 1:3] = True, True
    ids, segments, shared = paint_instances(np.stack([a, b]), np.array([0, 0]), np.array([False, True]))
    assert shared == 1 and ids[1, 1] == 1 and segments[1]["iscrowd"] == 1 and segments[2]["category_id"] == 0
