"""`seglab export format=onnx`: metadata, parity with PyTorch away from the export size, predict with .onnx.

Tolerance: logits within 1e-4 absolute (fp32 on both sides; measured differences are ~1e-6) and at
least 99.9% of argmax labels equal, at sizes other than the export size, odd sizes included.
"""
import numpy as np
import pytest
import torch
from PIL import Image

from seglab.cli import main
from seglab.data.spec import ClassTable
from seglab.engine.checkpoint import atomic_save, make_checkpoint
from seglab.inference.backends import OnnxBackend, read_metadata
from seglab.export.checkpoint import export_checkpoint
from seglab.inference.predictor import Predictor
from seglab.models import build_model
from test_inference_common import save_image, smooth_image, tiny_checkpoint

ATOL = 1e-4
SIZES = [(48, 80), (37, 53), (64, 32), (20, 20)]  # (H, W), none of them the export size
pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    out = tmp_path_factory.mktemp("onnx")
    checkpoint = tiny_checkpoint()
    assert main(["export", f"model={checkpoint}", "format=onnx", f"out={out}", "verbose=false"]) == 0
    return checkpoint, out / "best.onnx"


def parity(model: torch.nn.Module, path, sizes=SIZES, batch=3):
    backend = OnnxBackend(path)
    generator = torch.Generator().manual_seed(0)
    for height, width in sizes:
        x = torch.randn(batch, 3, height, width, generator=generator)
        with torch.no_grad():
            want = model.eval()(x)
        got = backend(x)
        assert got.shape == want.shape
        diff = float((got - want).abs().max())
        agree = float((got.argmax(1) == want.argmax(1)).float().mean())
        assert diff < ATOL and agree >= 0.999, f"{height}x{width}: max diff {diff:.2e}, labels equal {agree:.4%}"


def test_metadata_carries_classes_and_normalisation(exported):
    checkpoint, path = exported
    meta = read_metadata(path)
    ckpt = torch.load(checkpoint, weights_only=True)
    assert meta["class_names"] == ckpt["classes"]["names"] == meta["classes"]["names"]
    assert meta["normalization"] == {"mean": ckpt["preprocess"]["mean"], "std": ckpt["preprocess"]["std"]}
    assert meta["preprocess"]["size"] == [32, 32] and meta["arch"]["name"] == "unet"
    assert meta["input_multiple"] == 1  # the U-Net pads inside the graph: any size runs as is
    import onnx

    graph = onnx.load(str(path)).graph
    dims = [[d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim] for v in (graph.input[0], graph.output[0])]
    assert dims == [["batch", 3, "height", "width"], ["batch", 3, "height", "width"]]


def test_trained_unet_parity_at_other_sizes(exported):
    checkpoint, path = exported
    parity(Predictor(checkpoint, fuse=False).model, path)


def classic_unet_checkpoint(tmp_path, **args) -> tuple[torch.nn.Module, object]:
    torch.manual_seed(0)
    args = {"num_classes": 3, "width": 8, "depth": 3, **args}
    model = build_model("unet", args).train()
    with torch.no_grad():
        for _ in range(2):
            model(torch.randn(2, 3, 48, 48))
    classes = ClassTable(["a", "b", "c"], [(0, 0, 0), (255, 0, 0), (0, 255, 0)])
    preprocess = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225], "resize": "stretch", "size": [48, 48]}
    path = tmp_path / "model.pt"
    atomic_save(make_checkpoint(model.eval(), {"name": "unet", "args": args}, classes, preprocess, {}, 0, {}), path)
    return model, path


@pytest.mark.parametrize("args", [{}, {"upsample": "bilinear"}, {"norm": "group"}])
def test_classic_unet_variants_parity(tmp_path, args):
    model, checkpoint = classic_unet_checkpoint(tmp_path, **args)
    path, report = export_checkpoint(checkpoint, tmp_path / "model.onnx")
    assert max(report["max_abs_diff"].values()) < ATOL and report["input_multiple"] == 1
    parity(model, path, sizes=[(40, 72), (45, 61), (7, 9)], batch=2)


class FixedPadNet(torch.nn.Module):
    """Three stride-2 levels with skips (sides must be multiples of 8) and a reflection pad decided in
    Python, as the U-Net once did: a graph traced at a multiple of 8 keeps no padding at all."""

    def __init__(self):
        super().__init__()
        conv = torch.nn.Conv2d
        self.down = torch.nn.ModuleList([conv(3, 4, 3, 2, 1), conv(4, 4, 3, 2, 1), conv(4, 4, 3, 2, 1)])
        self.up = torch.nn.ModuleList([torch.nn.ConvTranspose2d(4, c, 2, stride=2) for c in (4, 4, 3)])

    def forward(self, x):
        height, width = x.shape[-2:]
        pad_h, pad_w = -height % 8, -width % 8
        if pad_h or pad_w:
            x = torch.nn.functional.pad(x, (0, pad_w, 0, pad_h), mode="reflect")
        skips = [x]
        for down in self.down:
            skips.append(down(skips[-1]))
        y = skips.pop()
        for up in self.up:
            y = up(y) + skips.pop()[:, :3 if up.out_channels == 3 else 4]
        return y[..., :height, :width]


def test_probing_finds_the_padding_a_traced_graph_lost(tmp_path):
    from seglab.export import export_onnx
    from seglab.export.checkpoint import probe_input_rule
    from seglab.export.metadata import write_metadata

    torch.manual_seed(0)
    model = FixedPadNet().eval()
    path = export_onnx(model, tmp_path / "fixed.onnx", input_size=(32, 32))
    rule, report = probe_input_rule(model, path, 32)
    assert rule == {"input_multiple": 8, "pad_mode": "reflect"}
    assert max(report["max_abs_diff"].values()) < ATOL
    write_metadata(path, rule)
    parity(model, path, sizes=[(33, 35), (41, 20)], batch=2)


def test_predict_with_onnx_gives_the_same_outputs(exported, tmp_path):
    checkpoint, path = exported
    source = tmp_path / "src"
    for i, (w, h) in enumerate([(40, 30), (23, 57), (300, 90)]):  # the last one is tiled
        save_image(source / f"img{i}.png", smooth_image(w, h, seed=i))
    outs = {}
    for name, model in (("pt", checkpoint), ("onnx", path)):
        outs[name] = tmp_path / name
        assert main(["predict", f"model={model}", f"source={source}", f"out={outs[name]}", "save_probs=true",
                     "verbose=false"]) == 0
    for i in range(3):
        a, b = (np.asarray(Image.open(outs[k] / f"img{i}.png")) for k in ("pt", "onnx"))
        assert (a == b).mean() >= 0.999
        pa, pb = (np.load(outs[k] / f"img{i}_probs.npy").astype(np.float32) for k in ("pt", "onnx"))
        assert np.abs(pa - pb).max() < 2e-3  # float16 files


def test_export_errors(tmp_path, capsys):
    assert main(["export", "model=unet"]) == 1
    assert "is an architecture name (see `seglab models`); export takes a checkpoint .pt" in capsys.readouterr().err
    assert main(["export", f"model={tiny_checkpoint()}", "format=tflite", f"out={tmp_path}"]) == 1
    assert "format='tflite'" in capsys.readouterr().err
    assert main(["predict", f"model={tmp_path / 'missing.onnx'}", f"source={tmp_path}"]) == 1
    assert "missing.onnx: ONNX file not found" in capsys.readouterr().err
