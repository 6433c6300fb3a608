"""`seglab benchmark` for instance models: the whole predict path and the network alone, per backend, into
benchmark_<model>_<imgsz>.json; onnxruntime where the model exports, refused by name where it does not."""
from __future__ import annotations

import json

import pytest

from seglab.cli import main
from seglab.config import make_config
from seglab.models.source import resolve_model
from seglab.tasks.instance.benchmark import BACKENDS, model_files, pick_backends

pytest.importorskip("onnxruntime")

TINY = ["encoder=mobilenet_v2", "imgsz=64", "verbose=false"]


def check_rows(result: dict, backends: list[str], repeats: int) -> None:
    rows = result["results"]
    assert [(r["stage"], r["backend"]) for r in rows] == [(s, b) for s in ("predict", "network") for b in backends]
    for row in rows:
        assert row["batch"] == 1 and row["runs"] == repeats
        assert 0 < row["p50_ms"] <= row["p90_ms"] and row["img_per_s"] > 0 and row["setup_s"] > 0
    assert set(result["stages"]) == {"predict", "network"}
    machine = result["machine"]
    assert machine["threads"] >= 1 and isinstance(machine["isa"], list) and "torch" in machine
    assert result["load_average"]["before"] is not None


def test_yolo_seg_benchmark_times_pytorch_and_onnxruntime_on_the_same_detections(tmp_path):
    assert main(["benchmark", "model=yolo_seg", *TINY, "repeats=2", "backends=eager,onnxruntime",
                 "score_threshold=0", "max_detections=5", f"out={tmp_path}"]) == 0
    result = json.loads((tmp_path / "benchmark_yolo_seg_64.json").read_text())
    check_rows(result, ["eager", "onnxruntime"], 2)
    assert result["network"] == "forward_raw" and result["arch"]["name"] == "yolo_seg"
    assert result["options"] == {"score_threshold": 0.0, "max_detections": 5}
    predict = {r["backend"]: r["detections"] for r in result["results"] if r["stage"] == "predict"}
    assert predict["eager"] == predict["onnxruntime"] == 5  # score 0 keeps all; the cap applies on both paths


def test_maskrcnn_benchmark_times_its_backbone_as_the_network(tmp_path, capsys):
    assert main(["benchmark", "model=maskrcnn", *TINY, "repeats=1", "backends=eager", "max_detections=3",
                 f"out={tmp_path}", "verbose=true"]) == 0
    result = json.loads((tmp_path / "benchmark_maskrcnn_64.json").read_text())
    check_rows(result, ["eager"], 1)
    assert result["network"] == "backbone" and result["params_m"] > 0
    assert 0 <= result["results"][0]["detections"] <= 3
    out = capsys.readouterr().out
    assert "flags:" in out and "| eager |" in out and "benchmark_maskrcnn_64.json" in out


def test_backends_an_instance_model_cannot_run_are_left_out_or_refused(tmp_path):
    cfg = make_config({"model": "maskrcnn", "encoder": "mobilenet_v2", "imgsz": 64}, mode="benchmark")
    names = pick_backends(cfg, "architecture")
    assert names == list(BACKENDS)  # not given: the instance defaults (no compile)
    path, onnx_path, notes = model_files(cfg, resolve_model("maskrcnn"), names, tmp_path)
    assert path.is_file() and onnx_path is None and "onnxruntime" not in names and "no ONNX export" in notes[0]
    given = make_config({"model": "maskrcnn", "encoder": "mobilenet_v2", "imgsz": 64,
                         "backends": "eager,onnxruntime"}, mode="benchmark")
    with pytest.raises(ValueError, match="needs an ONNX export"):
        model_files(given, resolve_model("maskrcnn"), pick_backends(given, "architecture"), tmp_path)
    with pytest.raises(ValueError, match="compile"):
        pick_backends(make_config({"model": "yolo_seg", "backends": "eager,compile"}, mode="benchmark"),
                      "architecture")


def test_benchmark_of_an_exported_onnx_file_runs_onnxruntime_alone(tmp_path):
    from seglab.tasks.instance.benchmark import random_checkpoint

    cfg = make_config({"model": "yolo_seg", "encoder": "mobilenet_v2", "imgsz": 64}, mode="benchmark")
    checkpoint = random_checkpoint(cfg, "yolo_seg", tmp_path)
    assert main(["export", f"model={checkpoint}", f"out={tmp_path / 'tiny.onnx'}", "verbose=false"]) == 0
    assert main(["benchmark", f"model={tmp_path / 'tiny.onnx'}", "imgsz=64", "repeats=1", f"out={tmp_path}",
                 "verbose=false"]) == 0
    result = json.loads((tmp_path / "benchmark_tiny_64.json").read_text())
    check_rows(result, ["onnxruntime"], 1)
    assert result["arch"]["name"] == "yolo_seg" and result["network"] == "forward_raw"
