"""`seglab predict|val model=FILE.onnx` for an exported yolo_seg: onnxruntime runs the network, the model's own
postprocess decodes it, and InstancePredictor's one path does the rest, so the outputs are the checkpoint's."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from seglab.cli import main
from seglab.engine.checkpoint import CheckpointError
from test_instance_data_layouts import write_penn_fudan

pytest.importorskip("onnxruntime")

# every detection kept and drawn (up to 20 per image), so a barely trained model still yields instances
EVERYTHING = ["score_threshold=0", "min_score=0", "max_detections=20", "precision=fp32", "verbose=false"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> tuple[Path, Path, Path]:
    """(best.pt, its .onnx, the Penn-Fudan folder) of a tiny yolo_seg trained for two epochs."""
    tmp = tmp_path_factory.mktemp("instance_onnx")
    root = tmp / "PennFudanPed"
    write_penn_fudan(root, n=8)
    assert main(["train", f"data={root}", "model=yolo_seg", "encoder=mobilenet_v2", "imgsz=64", "batch=2",
                 "precision=fp32", "workers=0", "verbose=false", "epochs=2", "samples=0", f"project={tmp}",
                 "name=yolo"]) == 0
    best = tmp / "yolo" / "best.pt"
    assert main(["export", f"model={best}", f"out={tmp / 'yolo.onnx'}", "verbose=false"]) == 0
    return best, tmp / "yolo.onnx", root


def test_predict_from_onnx_writes_the_checkpoints_id_pngs(exported, tmp_path):
    best, onnx_file, root = exported
    for name, model in (("pt", best), ("onnx", onnx_file)):
        assert main(["predict", f"model={model}", f"source={root / 'PNGImages'}", f"out={tmp_path / name}",
                     *EVERYTHING]) == 0
    pngs = sorted(p.name for p in (tmp_path / "pt").glob("*.png") if not p.stem.endswith("_overlay"))
    assert len(pngs) == 8
    drawn = 0
    for png in pngs:
        want, got = (np.asarray(Image.open(tmp_path / name / png)) for name in ("pt", "onnx"))
        assert np.array_equal(want, got), png
        drawn += int(want.max())
    assert drawn > 0  # the comparison saw instances
    want, got = (json.loads((tmp_path / name / "predictions.json").read_text()) for name in ("pt", "onnx"))
    assert [(e["file_name"], e["instance_id"], e["segmentation"]) for e in want] == \
        [(e["file_name"], e["instance_id"], e["segmentation"]) for e in got]
    assert np.allclose([e["score"] for e in want], [e["score"] for e in got], atol=1e-5)


def test_val_from_onnx_scores_the_checkpoints_mask_ap(exported, tmp_path):
    best, onnx_file, _ = exported
    results = {}
    for name, model in (("pt", best), ("onnx", onnx_file)):  # no data=: the split comes from the file's config
        assert main(["val", f"model={model}", f"out={tmp_path / name}", *EVERYTHING]) == 0
        results[name] = json.loads((tmp_path / name / "val_val.json").read_text())
    assert results["pt"]["num_pred"] == results["onnx"]["num_pred"] > 0
    for key in ("mask_ap", "mask_ap50", "box_ap"):
        assert results["onnx"][key] == pytest.approx(results["pt"][key], abs=1e-3), key


def test_onnx_predictor_takes_the_inference_options_and_the_checkpoints_metadata(exported):
    import torch

    from seglab.engine.checkpoint import load_checkpoint
    from seglab.engine.device import Runtime
    from seglab.inference.instance import InstanceOptions, InstancePredictor

    best, onnx_file, _ = exported
    runtime = Runtime.from_config("cpu", "fp32", False)
    predictor = InstancePredictor(onnx_file, runtime, InstanceOptions(score_threshold=0.0, max_detections=3))
    assert predictor.options.max_detections == 3 and predictor.model.inference["max_detections"] == 3
    ckpt = load_checkpoint(best)
    assert predictor.classes.names == ckpt["classes"]["names"] and predictor.size == ckpt["preprocess"]["size"]
    assert predictor.category_ids == ckpt["category_ids"]
    view = torch.randint(0, 256, (3, 61, 47), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    reference = InstancePredictor(best, runtime, InstanceOptions(score_threshold=0.0, max_detections=3))
    got, want = predictor.detect(view), reference.detect(view)
    assert len(got["scores"]) == 3
    assert np.allclose(got["scores"], want["scores"], atol=1e-5) and np.array_equal(got["labels"], want["labels"])
    # detections whose scores tie to 1e-5 (random-ish weights) may come in either order (CPU-dependent
    # rounding): each ONNX detection must equal one checkpoint detection of the same score
    for score, probs in zip(got["scores"], got["probs"]):
        same = np.abs(want["scores"] - score) <= 1e-5
        assert min(np.abs(probs - other).max() for other in want["probs"][same]) < 1e-4


def test_an_onnx_file_without_instance_metadata_is_refused_by_name(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    from seglab.export.metadata import write_metadata
    from seglab.inference.instance_onnx import instance_metadata

    graph = helper.make_graph([helper.make_node("Identity", ["images"], ["logits"])], "g",
                              [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 3, 8, 8])])
    path = tmp_path / "bare.onnx"
    onnx.save(helper.make_model(graph), str(path))
    with pytest.raises(CheckpointError, match="semantic ONNX file, not an instance one"):
        instance_metadata(path)
    write_metadata(path, {"task": "instance", "classes": {"names": ["a"]}})
    with pytest.raises(CheckpointError, match=r"bare.onnx: ONNX metadata lacks arch, preprocess, outputs"):
        instance_metadata(path)
