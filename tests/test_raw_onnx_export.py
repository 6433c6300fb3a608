"""One raw-network export (seglab/export/raw_network.py) for every instance and panoptic model with forward_raw, and
`seglab predict|val model=FILE.onnx` for them: onnxruntime runs the network, the model's own postprocess (rebuilt
from the file's `arch`) decodes it, so the outputs are the checkpoint's. Tiny random checkpoints made here."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from test_panoptic_data import write_dsb
from test_query_onnx import one_thread  # noqa: F401  (autouse: torch on one thread)

from seglab.cli import main
from seglab.data.spec import ClassTable
from seglab.engine.checkpoint import make_checkpoint
from seglab.inference.instance import RESIZE
from seglab.models import build_model

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

SIZE = 64
TINY_QUERY = {"encoder": "mobilenet_v2", "encoder_weights": "", "num_queries": 6, "decoder_channels": 64}
TINY = {  # arch -> (task, constructor arguments besides num_classes)
    "maskformer_instance": ("instance", {**TINY_QUERY, "score_threshold": 0.0, "max_detections": 6}),
    "maskformer": ("panoptic", {**TINY_QUERY, "is_thing": [False, True], "object_threshold": 0.0}),
    "panoptic_deeplab": ("panoptic", {"encoder": "mobilenet_v2", "encoder_weights": "", "is_thing": [False, True],
                                      "decoder_channels": 32, "head_width": 16}),
}
FP32 = ["precision=fp32", "verbose=false"]


def centres_to_find(model) -> None:
    """panoptic_deeplab starts its heatmap and offsets near 0 (|heatmap| ~ 1e-6): scaled up, a random model has
    peaks above heatmap_threshold and so thing segments to group (~15 per image)."""
    with torch.no_grad():
        model.heads.heatmap[-1].weight.mul_(1e5)
        model.heads.offsets[-1].weight.mul_(3e4)


def masks_that_differ(model) -> None:
    """A random query model's pixel embeddings share one positive direction (ReLU features), so each query's mask
    covers ~97% of the image; with zero-sum rows in the embedding projection the masks differ from query to query."""
    with torch.no_grad():
        weight = model.pixel_decoder.mask_features.weight
        weight.sub_(weight.mean(1, keepdim=True)).mul_(10)
        model.pixel_decoder.mask_features.bias.zero_()


# arch -> what makes its random outputs non-trivial
RANDOM_WEIGHTS = {"panoptic_deeplab": centres_to_find, "maskformer": masks_that_differ,
                  "maskformer_instance": masks_that_differ}


def random_checkpoint(folder: Path, name: str, data: Path | None = None) -> Path:
    """`name` with random weights saved as its task's checkpoint (the DSB classes: background stuff, nucleus)."""
    task, extra = TINY[name]
    names = ["nucleus"] if task == "instance" else ["background", "nucleus"]
    torch.manual_seed(0)
    args = {"num_classes": len(names), **extra}
    model = build_model(name, args, pretrained=False).eval()
    RANDOM_WEIGHTS.get(name, lambda m: None)(model)
    preprocess = {"mean": list(model.normalization["mean"]), "std": list(model.normalization["std"]),
                  "resize": RESIZE, "size": SIZE}
    config = {"data": str(data or ""), "seed": 0, "val_fraction": 0.34}
    facts = {"category_ids": [1]} if task == "instance" else {"is_thing": extra["is_thing"], "category_ids": [0, 1]}
    ckpt = make_checkpoint(model, {"name": name, "args": args}, ClassTable(names, [(255, 0, 0)] * len(names)),
                           preprocess, config, 0, {}, task=task, **facts)
    path = folder / f"{name}.pt"
    torch.save(ckpt, path)
    return path


def exported(tmp_path: Path, name: str, data: Path | None = None) -> tuple[Path, Path]:
    checkpoint = random_checkpoint(tmp_path, name, data)
    assert main(["export", f"model={checkpoint}", "verbose=false"]) == 0
    return checkpoint, checkpoint.with_suffix(".onnx")


def images(folder: Path) -> Path:
    """Three images whose model views differ in shape from the traced square (64 x 64)."""
    folder.mkdir()
    for k, (h, w) in enumerate([(48, 64), (64, 37), (29, 41)]):
        array = np.random.default_rng(k).integers(0, 256, (h, w, 3), dtype=np.uint8)
        Image.fromarray(array).save(folder / f"im{k}.png")
    return folder


def predicted(tmp_path: Path, model: Path, source: Path, tag: str, *extra: str) -> dict[str, np.ndarray]:
    out = tmp_path / tag
    assert main(["predict", f"model={model}", f"source={source}", f"out={out}", *FP32, *extra]) == 0
    return {p.name: np.asarray(Image.open(p)) for p in sorted(out.glob("*.png")) if not p.stem.endswith("_overlay")}


def assert_same_up_to_noise(want: np.ndarray, got: np.ndarray, name: str) -> int:
    """The same segment ids (as the PNG stores them), and at most 1% of the pixels (a float-noise flip at a tie of
    two segments, never a whole segment) in another; returns the number of ids."""
    want, got = (a.astype(np.int64) @ np.array([1, 256, 65536]) if a.ndim == 3 else a.astype(np.int64)
                 for a in (want, got))
    assert want.shape == got.shape, name
    assert np.array_equal(np.unique(want), np.unique(got)), name
    assert (want != got).mean() <= 0.01, (name, int((want != got).sum()))
    return len(np.unique(want))


def test_output_names_are_declared_or_numbered_and_size_dependent_axes_are_dynamic(tmp_path):
    import onnx

    from seglab.export.raw_network import export_raw_onnx

    class Undeclared(torch.nn.Module):  # no raw_outputs: raw0, raw1
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)

        def forward_raw(self, x):
            y = self.conv(x)
            return y.mean((2, 3)), y.flatten(2)  # [N, 4] fixed, [N, 4, H * W] grows with the input

    tiny = {"encoder": "mobilenet_v2", "encoder_weights": ""}
    cases = {  # file -> (model, its output names, the dimensions that follow the input size)
        "u": (Undeclared(), {"raw0": [], "raw1": [2]}),
        "maskformer_instance": (build_model("maskformer_instance", {"num_classes": 2, **TINY_QUERY}),
                                {"class_logits": [], "mask_logits": [2, 3]}),
        "yolo_seg": (build_model("yolo_seg", {"num_classes": 2, **tiny}),  # [N, A, C]: A locations grow
                     {"logits": [1], "boxes": [1], "coefficients": [1], "protos": [2, 3]}),
    }
    for file, (model, want) in cases.items():
        assert export_raw_onnx(model.eval(), tmp_path / f"{file}.onnx", (32, 32)) == list(want), file
        graph = onnx.load(str(tmp_path / f"{file}.onnx")).graph
        for output in graph.output:
            dims = output.type.tensor_type.shape.dim
            assert dims[0].dim_param == "batch"
            named = [d for d, dim in enumerate(dims) if dim.dim_param == f"{output.name}_{d}"]
            assert named == want[output.name], (file, output.name)
    session = ort.InferenceSession(str(tmp_path / "u.onnx"), providers=["CPUExecutionProvider"])
    assert session.run(None, {"images": np.zeros((2, 3, 5, 7), np.float32)})[1].shape == (2, 4, 35)


def test_maskformer_instance_exports_and_predicts_the_checkpoints_id_pngs(tmp_path):
    from seglab.export.raw_network import raw_parity
    from seglab.inference.backends import read_metadata

    checkpoint, onnx_file = exported(tmp_path, "maskformer_instance")
    meta = read_metadata(onnx_file)
    assert meta["task"] == "instance" and meta["outputs"] == ["class_logits", "mask_logits"]
    model = build_model("maskformer_instance", meta["arch"]["args"], pretrained=False)
    model.load_state_dict(torch.load(checkpoint, weights_only=True)["model"])
    assert max(raw_parity(model.eval(), onnx_file, [(40, 72), (67, 33)], seed=2).values()) < 1e-3
    source = images(tmp_path / "images")
    want, got = (predicted(tmp_path, m, source, tag, "min_score=0") for tag, m in (("pt", checkpoint), ("onnx", onnx_file)))
    assert list(want) == list(got) == ["im0.png", "im1.png", "im2.png"]
    for png in want:
        assert assert_same_up_to_noise(want[png], got[png], png) > 2, png  # instances drawn
    scores = [[e["score"] for e in json.loads((tmp_path / tag / "predictions.json").read_text())] for tag in ("pt", "onnx")]
    assert len(scores[0]) == len(scores[1]) > 0 and np.allclose(scores[0], scores[1], atol=1e-4)


@pytest.mark.parametrize("name", ["panoptic_deeplab", "maskformer"])
def test_panoptic_predict_from_onnx_writes_the_checkpoints_pngs(name, tmp_path):
    checkpoint, onnx_file = exported(tmp_path, name)
    source = images(tmp_path / "images")
    want, got = (predicted(tmp_path, m, source, tag) for tag, m in (("pt", checkpoint), ("onnx", onnx_file)))
    assert list(want) == list(got) == ["im0.png", "im1.png", "im2.png"]
    segments = sum(assert_same_up_to_noise(want[png], got[png], png) for png in want)
    assert segments > len(want)  # more than one segment per image: the grouping was compared, not just void
    infos = [json.loads((tmp_path / tag / "predictions.json").read_text())["annotations"] for tag in ("pt", "onnx")]
    assert [[s["category_id"] for s in a["segments_info"]] for a in infos[0]] == \
        [[s["category_id"] for s in a["segments_info"]] for a in infos[1]]


def test_panoptic_val_from_onnx_scores_the_checkpoints_pq(tmp_path):
    data = tmp_path / "dsb"
    write_dsb(data, n=6)
    checkpoint, onnx_file = exported(tmp_path, "panoptic_deeplab", data)
    results = {}
    for tag, model in (("pt", checkpoint), ("onnx", onnx_file)):  # no data=: the split comes from the file's config
        assert main(["val", f"model={model}", f"out={tmp_path / tag}", *FP32]) == 0
        results[tag] = json.loads((tmp_path / tag / "val_val.json").read_text())
    assert results["pt"]["images"] == results["onnx"]["images"] == 2
    for key in ("pq", "sq", "rq", "pq_things", "pq_stuff"):  # a random model: PQ near 0, so the counts too
        assert results["onnx"][key] == pytest.approx(results["pt"][key], abs=1e-3), key
    counts = [{name: (c["tp"], c["fp"], c["fn"]) for name, c in r["per_class"].items()} for r in results.values()]
    assert counts[0] == counts[1] and counts[0]["nucleus"][1] > 0  # the same thing segments were predicted


def test_onnx_files_of_the_wrong_task_or_a_fusion_part_are_refused_by_name(tmp_path):
    from seglab.engine.checkpoint import CheckpointError
    from seglab.inference.instance_onnx import instance_metadata
    from seglab.inference.panoptic_onnx import panoptic_metadata

    _, onnx_file = exported(tmp_path, "panoptic_deeplab")
    with pytest.raises(CheckpointError, match="a panoptic ONNX file, not an instance one"):
        instance_metadata(onnx_file)
    assert panoptic_metadata(onnx_file)["is_thing"] == [False, True]
    assert main(["predict", "task=panoptic", f"model={onnx_file}", f"semantic_model={onnx_file}",
                 f"source={images(tmp_path / 'images')}", *FP32]) == 1
