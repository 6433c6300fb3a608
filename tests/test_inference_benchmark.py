"""`seglab benchmark`: JSON with p50/p90 latency and throughput per backend and batch size."""
import json

import pytest

from seglab.cli import main
from seglab.benchmark.timing import parse_backends, table

pytest.importorskip("onnxruntime")


def test_benchmark_writes_json_for_each_backend_and_batch(tmp_path, capsys):
    assert main(["benchmark", "model=unet", "width=4", "depth=2", "imgsz=32", "batch=2", "repeats=3",
                 "backends=eager,channels_last,fast,onnxruntime", f"out={tmp_path}"]) == 0
    result = json.loads((tmp_path / "benchmark_unet_32.json").read_text())
    rows = result["results"]
    assert [(r["backend"], r["batch"]) for r in rows] == [
        (b, n) for b in ("eager", "channels_last", "fast", "onnxruntime") for n in (1, 2)]
    for row in rows:
        assert row["runs"] == 3 and 0 < row["p50_ms"] <= row["p90_ms"] and row["img_per_s"] > 0
    assert all(r["speedup_vs_eager"] == 1 for r in rows if r["backend"] == "eager")
    assert result["machine"]["threads"] >= 1 and "torch" in result["machine"]
    assert "| onnxruntime |" in capsys.readouterr().out


def test_benchmark_of_a_checkpoint_and_of_its_onnx_file(tmp_path):
    from test_inference_common import tiny_checkpoint

    checkpoint = tiny_checkpoint()
    assert main(["benchmark", f"model={checkpoint}", "imgsz=32", "batch=2", "repeats=2", "backends=eager,fast",
                 f"out={tmp_path}", "verbose=false"]) == 0
    assert main(["export", f"model={checkpoint}", f"out={tmp_path / 'm.onnx'}", "verbose=false"]) == 0
    assert main(["benchmark", f"model={tmp_path / 'm.onnx'}", "imgsz=32", "batch=2", "repeats=2",
                 f"out={tmp_path}", "verbose=false"]) == 0
    rows = json.loads((tmp_path / "benchmark_m_32.json").read_text())["results"]
    assert {r["backend"] for r in rows} == {"onnxruntime"}


def test_backend_names_are_checked():
    assert parse_backends("eager, fast") == ["eager", "fast"]
    with pytest.raises(ValueError, match="backends='eager,tensorrt'"):
        parse_backends("eager,tensorrt")
    assert "| eager |" in table([{"backend": "eager", "settings": "fp32", "batch": 1, "p50_ms": 1, "p90_ms": 2,
                                  "img_per_s": 3, "speedup_vs_eager": 1.0}])


@pytest.mark.slow
def test_benchmark_compiled_backend(tmp_path):
    """torch.compile with freezing: ~20-40 s of compiling per batch size on 2 cores."""
    assert main(["benchmark", "model=unet", "width=4", "depth=2", "imgsz=32", "batch=2", "repeats=2",
                 "backends=eager,compile", f"out={tmp_path}", "verbose=false"]) == 0
    rows = json.loads((tmp_path / "benchmark_unet_32.json").read_text())["results"]
    assert [r["backend"] for r in rows] == ["eager", "eager", "compile", "compile"]
