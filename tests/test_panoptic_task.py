"""The panoptic task end to end: train (panoptic_deeplab, fusion), val, predict, export, benchmark; val scores exactly
what predict writes (PQ recomputed from predict's PNGs + predictions.json)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from test_panoptic_data import write_coco_panoptic, write_dsb

from seglab.cli import main
from seglab.data.panoptic import open_panoptic_split
from seglab.data.panoptic.dataset import checked
from seglab.metrics.panoptic import PanopticEvaluator, rgb_to_id

FAST = ["precision=fp32", "samples=1", "verbose=false", "batch=3"]


def train(tmp_path: Path, data: Path, name: str, *extra: str) -> Path:
    assert main(["train", "task=panoptic", f"data={data}", "imgsz=64", "epochs=1", *FAST, f"project={tmp_path}",
                 f"name={name}", *extra]) == 0
    return tmp_path / name


def predict_split(tmp_path: Path, model: str, split, *extra: str) -> Path:
    """predict on copies of the split's images in one folder; returns predict's output folder."""
    source = tmp_path / f"source_{split.name}"
    source.mkdir(exist_ok=True)
    for item in split.items:
        shutil.copy(item.image, source / item.image.name)
    out = tmp_path / f"pred_{split.name}"
    assert main(["predict", f"model={model}", f"source={source}", f"out={out}", "precision=fp32", "verbose=false",
                 *extra]) == 0
    return out


def pq_from_predict_files(out: Path, split) -> dict:
    """PQ of predict's PNGs + predictions.json against the split's truth (at each image's own size)."""
    document = json.loads((out / "predictions.json").read_text())
    class_of = {c["id"]: i for i, c in enumerate(document["categories"])}
    assert [c["name"] for c in document["categories"]] == split.classes
    assert [bool(c["isthing"]) for c in document["categories"]] == split.is_thing
    by_file = {a["file_name"]: a for a in document["annotations"]}
    evaluator = PanopticEvaluator(split.is_thing, split.classes)
    for item in split.items:
        annotation = by_file[f"{item.image.stem}.png"]
        ids = rgb_to_id(np.asarray(Image.open(out / annotation["file_name"]).convert("RGB")))
        listed = {s["id"] for s in annotation["segments_info"]}
        assert set(np.unique(ids).tolist()) - {0} == listed  # every id in the PNG is in the JSON, and back
        for s in annotation["segments_info"]:
            assert s["area"] == int((ids == s["id"]).sum())
        segments = [{"id": s["id"], "category_id": class_of[s["category_id"]], "iscrowd": 0}
                    for s in annotation["segments_info"]]
        evaluator.process(checked(item.load()).as_target(), {"segment_ids": ids, "segments": segments})
    return evaluator.evaluate()


def assert_val_is_predict(tmp_path: Path, run: Path, data: Path, split_name: str, *extra: str) -> dict:
    assert main(["val", f"model={run}", f"split={split_name}", f"data={data}", "precision=fp32", "verbose=false",
                 *extra]) == 0
    scores = json.loads((run / f"val_{split_name}.json").read_text())
    trained = torch.load(run / "best.pt", weights_only=True)["config"]  # val scores the split training used
    split = open_panoptic_split(data, split_name, seed=trained["seed"], val_fraction=trained["val_fraction"])
    recounted = pq_from_predict_files(predict_split(tmp_path, str(run), split, *extra), split)
    for key in ("pq", "sq", "rq", "pq_things", "pq_stuff"):
        assert scores[key] == pytest.approx(recounted[key]), key
    for i, name in enumerate(split.classes):
        assert scores["per_class"][name]["tp"] == recounted["per_class"]["tp"][i]
        assert scores["per_class"][name]["fp"] == recounted["per_class"]["fp"][i]
    instances = scores["things_as_instances"]  # thing segments as instances: void is not left out of the IoU, so TP <= PQ TP
    if any(split.is_thing):
        assert instances["num_images"] == len(split.items)
        assert instances["matching"]["tp"][0] <= sum(scores["per_class"][n]["tp"] for n, t in
                                                     zip(split.classes, split.is_thing) if t)
    return scores


def test_dsb_layout_train_val_predict_export_benchmark(tmp_path):
    data = tmp_path / "dsb"
    write_dsb(data, n=6)
    run = train(tmp_path, data, "run_dsb", "val_fraction=0.34")
    ckpt = torch.load(run / "best.pt", weights_only=True)
    assert ckpt["task"] == "panoptic" and ckpt["arch"]["name"] == "panoptic_deeplab"
    assert ckpt["classes"]["names"] == ["background", "nucleus"] and ckpt["is_thing"] == [False, True]
    assert ckpt["preprocess"]["resize"] == "longer_side" and ckpt["preprocess"]["size"] == 64
    metrics = json.loads((run / "metrics.json").read_text())
    assert {"pq", "sq", "rq", "pq_things", "pq_stuff"} <= set(metrics) and list((run / "samples").glob("*.png"))
    scores = assert_val_is_predict(tmp_path, run, data, "val")
    assert set(scores["per_class"]) == {"background", "nucleus"} and scores["images"] == 2
    assert main(["export", f"model={run / 'best.pt'}", f"out={tmp_path / 'p.onnx'}", "verbose=false"]) == 0
    from seglab.inference.backends import read_metadata
    meta = read_metadata(tmp_path / "p.onnx")
    assert meta["task"] == "panoptic" and meta["is_thing"] == [False, True]
    assert main(["benchmark", f"model={run / 'best.pt'}", "imgsz=32", "repeats=1", "backends=eager,onnxruntime",
                 f"out={tmp_path / 'bench'}", "verbose=false"]) == 0
    result = json.loads(next((tmp_path / "bench").glob("*.json")).read_text())
    assert {(r["stage"], r["backend"]) for r in result["results"]} == {
        (s, b) for s in ("predict", "network") for b in ("eager", "onnxruntime")}


def test_coco_panoptic_train_val_predict(tmp_path):
    data = tmp_path / "coco"
    write_coco_panoptic(data)
    run = train(tmp_path, data, "run_coco")
    ckpt = torch.load(run / "best.pt", weights_only=True)
    assert ckpt["category_ids"] == [1, 7, 184, 193] and ckpt["is_thing"] == [True, True, False, False]
    assert_val_is_predict(tmp_path, run, data, "val2017")
    document = json.loads((tmp_path / "pred_val2017" / "predictions.json").read_text())
    assert {c["id"] for c in document["categories"]} == {1, 7, 184, 193}  # the dataset's own category ids
    assert (tmp_path / "pred_val2017" / "val2017_000_overlay.png").exists()


@pytest.mark.slow  # three trainings (unet, yolo_seg, the fusion's run folder): ~1 min of CPU
def test_fusion_of_a_semantic_and_an_instance_checkpoint(tmp_path):
    dsb = tmp_path / "dsb"
    drawn = write_dsb(dsb, n=5)
    semantic = tmp_path / "sem_data"  # the same images as a semantic folder: background / nucleus
    (semantic / "images").mkdir(parents=True)
    (semantic / "masks").mkdir()
    (semantic / "dataset.json").write_text(json.dumps({"classes": ["background", "nucleus"]}))
    for name, masks in drawn.items():
        shutil.copy(dsb / "stage1_train" / name / "images" / f"{name}.png", semantic / "images" / f"{name}.png")
        Image.fromarray(np.any(masks, axis=0).astype(np.uint8)).save(semantic / "masks" / f"{name}.png")
    common = ["epochs=1", "precision=fp32", "samples=0", "verbose=false", f"project={tmp_path}"]
    assert main(["train", f"data={semantic}", "width=4", "depth=2", "imgsz=32", "name=sem", *common]) == 0
    assert main(["train", f"data={dsb}", "model=yolo_seg", "imgsz=64", "name=inst", *common]) == 0
    parts = [f"semantic_model={tmp_path / 'sem'}", f"instance_model={tmp_path / 'inst'}"]
    assert main(["train", "task=panoptic", *parts, f"data={dsb}", "fusion_score=0.01",
                 "fusion_stuff_area=16", "name=run_fusion", *common]) == 0
    ckpt = torch.load(tmp_path / "run_fusion" / "best.pt", weights_only=True)
    assert ckpt["task"] == "panoptic" and ckpt["fusion"]["stuff_area"] == 16 and ckpt["is_thing"] == [False, True]
    assert_val_is_predict(tmp_path, tmp_path / "run_fusion", dsb, "val")
    # the same fusion given on the command line, without a fusion checkpoint
    assert main(["val", "task=panoptic", *parts, f"data={dsb}", "fusion_score=0.01",
                 "fusion_stuff_area=16", f"out={tmp_path / 'direct'}", "precision=fp32", "verbose=false"]) == 0
    direct = json.loads((tmp_path / "direct" / "val_val.json").read_text())
    recorded = json.loads((tmp_path / "run_fusion" / "val_val.json").read_text())
    assert direct["pq"] == recorded["pq"] and direct["per_class"] == recorded["per_class"]
