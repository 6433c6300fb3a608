"""The query model end to end through the command line: task=semantic on the bundled sample, task=instance
on a Penn-Fudan folder (tiny sizes; what runs is the real train -> best.pt -> val path of each task)."""
from __future__ import annotations

import json

import pytest
import torch

from seglab.cli import main
from test_instance_data_layouts import write_penn_fudan

TINY = ["encoder=mobilenet_v2", "num_queries=8", "decoder_channels=64", "imgsz=64", "epochs=1", "precision=fp32",
        "workers=0"]


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_train_maskformer_semantic_on_the_sample_then_val(tmp_path):
    assert main(["train", "model=maskformer_semantic", *TINY, "batch=8", "lr=0.002", "samples=1",
                 f"project={tmp_path}", "name=mf", "verbose=false"]) == 0
    run = tmp_path / "mf"
    ckpt = torch.load(run / "best.pt", weights_only=True)
    assert ckpt["task"] == "semantic" and ckpt["arch"]["name"] == "maskformer_semantic"
    assert ckpt["arch"]["args"]["num_queries"] == 8 and ckpt["arch"]["args"]["decoder_channels"] == 64
    metrics = json.loads((run / "metrics.json").read_text())
    assert 0 <= metrics["miou"] <= 1 and list(metrics["iou_per_class"]) == ["pet", "background", "border"]
    assert main(["val", f"model={run / 'best.pt'}", f"out={tmp_path / 'val'}", "precision=fp32",
                 "verbose=false"]) == 0
    scored = json.loads((tmp_path / "val" / "val_val.json").read_text())
    assert scored["miou"] == pytest.approx(metrics["miou"], abs=1e-6)  # val rebuilds the model from the checkpoint


def test_train_maskformer_instance_on_a_penn_fudan_folder_then_val(tmp_path):
    root = tmp_path / "PennFudanPed"
    write_penn_fudan(root, n=4)
    assert main(["train", f"data={root}", "model=maskformer_instance", *TINY, "batch=2", f"project={tmp_path}",
                 "name=mfi", "samples=1", "verbose=false"]) == 0
    run = tmp_path / "mfi"
    ckpt = torch.load(run / "last.pt", weights_only=True)
    assert ckpt["task"] == "instance" and ckpt["arch"]["name"] == "maskformer_instance"
    metrics = json.loads((run / "metrics.json").read_text())
    assert "mask_ap" in metrics and "matching_accuracy" in metrics
    assert main(["val", f"model={run / 'last.pt'}", f"out={tmp_path / 'val'}", "score_threshold=0", "min_score=0",
                 "precision=fp32", "verbose=false"]) == 0
    assert (tmp_path / "val" / "val_val.json").is_file()


def test_train_maskformer_panoptic_then_val_and_export(tmp_path):
    root = tmp_path / "PennFudanPed"
    write_penn_fudan(root, n=4)  # background = stuff, person = thing
    assert main(["train", "task=panoptic", f"data={root}", "model=maskformer", *TINY, "batch=2",
                 f"project={tmp_path}", "name=mfp", "samples=1", "verbose=false"]) == 0
    run = tmp_path / "mfp"
    ckpt = torch.load(run / "last.pt", weights_only=True)
    assert ckpt["task"] == "panoptic" and ckpt["arch"]["name"] == "maskformer"
    assert ckpt["arch"]["args"]["is_thing"] == [False, True]
    assert main(["val", f"model={run / 'last.pt'}", f"out={tmp_path / 'val'}", "precision=fp32",
                 "verbose=false"]) == 0
    assert "pq" in json.loads((tmp_path / "val" / "val_val.json").read_text())
    assert main(["export", f"model={run / 'last.pt'}", "format=onnx", "verbose=false"]) == 0
    assert (run / "last.onnx").is_file()
