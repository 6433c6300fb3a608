"""`seglab train|val|predict` for instance segmentation, end to end on a Penn-Fudan folder made in tmp_path:
the task follows from the layout, val scores exactly what predict writes, resume continues exactly."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from seglab.cli import main
from seglab.data.instance import open_instance_split
from seglab.metrics.instance import InstanceEvaluator
from test_instance_data_layouts import write_penn_fudan

TINY = ["encoder=resnet18", "imgsz=64", "batch=2", "precision=fp32", "workers=0", "verbose=false"]
YOLO = ["model=yolo_seg", *TINY]
# every detection kept and drawn, so an untrained model still yields instances to compare
EVERYTHING = ["score_threshold=0", "min_score=0", "precision=fp32", "verbose=false"]


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("instance")
    root = tmp / "PennFudanPed"
    write_penn_fudan(root, n=8)  # 6 train / 2 val (seeded 80/20)
    assert main(["train", f"data={root}", *YOLO, "epochs=2", "samples=2", f"project={tmp}", "name=yolo"]) == 0
    return tmp / "yolo"


def test_train_infers_the_task_and_writes_the_run_folder(run):
    for name in ("config.yaml", "best.pt", "last.pt", "metrics.csv", "metrics.json", "curves.png"):
        assert (run / name).is_file(), name
    assert len(list((run / "samples").glob("*.png"))) == 2
    ckpt = torch.load(run / "best.pt", weights_only=True)
    assert ckpt["task"] == "instance" and ckpt["arch"]["name"] == "yolo_seg"
    assert ckpt["classes"]["names"] == ["person"] and ckpt["classes"]["colors"][0] != [0, 0, 0]
    assert ckpt["preprocess"]["resize"] == "longer_side" and ckpt["preprocess"]["size"] == 64
    train_images = [Image.open(p) for p in sorted((run.parent / "PennFudanPed" / "PNGImages").iterdir())]
    scales = sorted(64 / max(im.size) for im in train_images)  # every image (train and val) here is one size
    assert scales[0] == scales[-1] and ckpt["preprocess"]["native_scale"] == pytest.approx(scales[0])
    assert ckpt["config"]["metric"] == "mask_ap"
    with open(run / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["epoch"] for r in rows] == ["1", "2"] and "val_mask_ap" in rows[0]
    metrics = json.loads((run / "metrics.json").read_text())
    for key in ("mask_ap", "mask_ap50", "mask_ap75", "mask_ap_small", "box_ap", "matching_accuracy", "per_image"):
        assert key in metrics, key
    assert metrics["matching"]["thresholds"] == [0.5, 0.6, 0.7, 0.8, 0.9]
    assert len(metrics["per_image"]) == 2


def val_and_predict(run: Path, tmp_path: Path) -> tuple[dict, Path]:
    assert main(["val", f"model={run / 'best.pt'}", f"out={tmp_path / 'val'}", *EVERYTHING]) == 0
    result = json.loads((tmp_path / "val" / "val_val.json").read_text())
    root = Path(result["data"])
    assert main(["predict", f"model={run / 'best.pt'}", f"source={root / 'PNGImages'}", f"out={tmp_path / 'pred'}",
                 *EVERYTHING]) == 0
    return result, tmp_path / "pred"


def test_predict_writes_id_pngs_matching_its_predictions_json(run, tmp_path):
    from pycocotools import mask as coco_mask

    _, out = val_and_predict(run, tmp_path)
    entries = json.loads((out / "predictions.json").read_text())
    assert entries, "score_threshold=0 keeps detections even of an untrained model"
    for name in {e["file_name"] for e in entries}:
        ids = np.asarray(Image.open(out / f"{Path(name).stem}.png"))
        mine = [e for e in entries if e["file_name"] == name]
        assert ids.max() == len(mine)  # min_score=0: every detection is drawn
        assert (out / f"{Path(name).stem}_overlay.png").is_file()
        for entry in mine:
            assert entry["category_id"] == 1
            mask = coco_mask.decode(entry["segmentation"]).astype(bool)
            assert np.array_equal(mask, ids == entry["instance_id"])


def test_val_scores_exactly_what_predict_writes(run, tmp_path):
    result, out = val_and_predict(run, tmp_path)
    from pycocotools import mask as coco_mask

    entries = json.loads((out / "predictions.json").read_text())
    split = open_instance_split(result["data"], "val")
    evaluator = InstanceEvaluator(1, score_threshold=0.0, max_detections=100)
    for item in split.items:
        truth = item.load()
        mine = [e for e in entries if e["file_name"] == item.image.name]
        masks = np.stack([coco_mask.decode(e["segmentation"]) for e in mine]) if mine else \
            np.zeros((0, *truth.size), np.uint8)
        evaluator.process({"masks": truth.masks, "labels": truth.labels, "iscrowd": truth.iscrowd},
                          {"masks": masks, "scores": [e["score"] for e in mine],
                           "labels": [e["category_id"] - 1 for e in mine]})
    recount = evaluator.evaluate()
    assert result["num_pred"] == recount["num_pred"] > 0
    for key in ("mask_ap", "mask_ap50", "box_ap"):
        assert result[key] == pytest.approx(recount[key], abs=1e-12), key
    assert result["matching"]["accuracy"] == recount["matching"]["accuracy"]


def test_predict_skips_a_bad_file_and_fails_when_nothing_is_predicted(run, tmp_path, capsys):
    source = tmp_path / "source"
    source.mkdir()
    (source / "broken.png").write_bytes(b"not a png")
    assert main(["predict", f"model={run}", f"source={source}", f"out={tmp_path / 'a'}", "verbose=false"]) == 1
    assert "nothing could be predicted" in capsys.readouterr().err
    Image.fromarray(np.full((30, 40, 3), 128, np.uint8)).save(source / "good.png")
    assert main(["predict", f"model={run}", f"source={source}", f"out={tmp_path / 'b'}", "verbose=false"]) == 0
    assert "broken.png" in (tmp_path / "b" / "errors.txt").read_text()
    assert np.asarray(Image.open(tmp_path / "b" / "good.png")).shape == (30, 40)


def weights(path: Path) -> dict:
    return torch.load(path, weights_only=True)["model"]


@pytest.mark.slow
def test_resume_continues_exactly(tmp_path):
    root = tmp_path / "PennFudanPed"
    write_penn_fudan(root, n=5)
    common = [f"data={root}", *YOLO, "schedule=constant", "warmup_epochs=0", "samples=0", f"project={tmp_path}"]
    assert main(["train", *common, "epochs=2", "name=full"]) == 0
    assert main(["train", *common, "epochs=1", "name=cut"]) == 0
    last = tmp_path / "cut" / "last.pt"
    ckpt = torch.load(last, weights_only=True)
    ckpt["config"]["epochs"] = 2  # as if stopped after epoch 1 of 2 (constant lr: the same first epoch)
    torch.save(ckpt, last)
    assert main(["train", f"resume={tmp_path / 'cut'}"]) == 0
    a, b = weights(tmp_path / "full" / "last.pt"), weights(last)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert torch.load(last, weights_only=True)["epoch"] == 2


def test_train_on_a_penn_fudan_folder_alone_builds_maskrcnn_and_it_predicts(tmp_path):
    root = tmp_path / "PennFudanPed"
    write_penn_fudan(root, n=3)  # 2 train / 1 val: one step
    assert main(["train", f"data={root}", "imgsz=64", "batch=2", "precision=fp32", "verbose=false", "epochs=1",
                 "samples=0", f"project={tmp_path}", "name=m"]) == 0  # no task=, no model=: the layout says
    ckpt = torch.load(tmp_path / "m" / "best.pt", weights_only=True)
    assert ckpt["task"] == "instance" and ckpt["arch"]["name"] == "maskrcnn"
    assert ckpt["arch"]["args"]["max_detections"] == 100
    assert main(["predict", f"model={tmp_path / 'm'}", f"source={root / 'PNGImages'}", "score_threshold=0",
                 "max_detections=3", "verbose=false"]) == 0
    entries = json.loads((tmp_path / "m" / "predict" / "predictions.json").read_text())
    assert 0 < len(entries) <= 3 * 3  # predict's max_detections replaces the checkpoint's


def test_export_writes_the_yolo_seg_network_with_parity_and_refuses_mask_rcnn(run, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    from seglab.data.spec import ClassTable
    from seglab.engine.checkpoint import load_checkpoint, make_checkpoint, model_from_checkpoint
    from seglab.export.raw_network import raw_parity
    from seglab.models import build_model
    from seglab.models.source import resolve_model
    from seglab.modes.dispatch import file_task

    out = tmp_path / "yolo.onnx"
    assert main(["export", f"model={run / 'best.pt'}", f"out={out}"]) == 0
    assert "onnxruntime vs PyTorch" in capsys.readouterr().out
    assert file_task(resolve_model(out)) == "instance"
    model = model_from_checkpoint(load_checkpoint(run / "best.pt")).float().eval()
    assert max(raw_parity(model, out, [(64, 64), (61, 90)], seed=3).values()) < 1e-3
    ckpt = load_checkpoint(run / "best.pt")
    args = {"num_classes": 1, "encoder": "resnet18"}
    mask_rcnn = make_checkpoint(build_model("maskrcnn", args, pretrained=False), {"name": "maskrcnn", "args": args},
                                ClassTable.from_dict(ckpt["classes"]),
                                ckpt["preprocess"], ckpt["config"], 0, {}, task="instance")
    torch.save(mask_rcnn, tmp_path / "mrcnn.pt")
    assert main(["export", f"model={tmp_path / 'mrcnn.pt'}"]) == 1
    assert "maskrcnn has no ONNX export" in capsys.readouterr().err


def test_val_keeps_the_checkpoints_detection_limits_unless_given(run, tmp_path):
    """`seglab val model=best.pt` scores what training validated: the limits the model was trained with
    (here max_detections=7 written into a copy of the checkpoint), not the configuration table's default."""
    from seglab.config import given_keys, make_config
    from seglab.engine.device import Runtime
    from seglab.inference.instance import InstanceOptions, InstancePredictor

    ckpt = torch.load(run / "best.pt", weights_only=True)
    ckpt["arch"]["args"]["max_detections"] = 7
    path = tmp_path / "seven.pt"
    torch.save(ckpt, path)
    runtime = Runtime.from_config("cpu", "fp32", False)
    for overrides, expected in (({"model": str(path)}, 7), ({"model": str(path), "max_detections": 3}, 3)):
        cfg = make_config(overrides, mode="val")
        predictor = InstancePredictor(path, runtime, InstanceOptions.from_config(cfg, given_keys(cfg)))
        assert predictor.options.max_detections == expected
        assert predictor.model.inference["max_detections"] == expected
    assert main(["val", f"model={path}", f"out={tmp_path / 'val'}", *EVERYTHING]) == 0
    result = json.loads((tmp_path / "val" / "val_val.json").read_text())
    assert 0 < result["num_pred"] <= 7 * result["num_images"]
