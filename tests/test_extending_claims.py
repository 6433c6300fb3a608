"""docs/extending.md says what adding a model takes; this test does exactly that and runs every mode on it."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from torch import nn

from seglab.cli import main
from seglab.models import MODELS

REPO = Path(__file__).resolve().parents[1]


def section(title: str) -> str:
    text = (REPO / "docs" / "extending.md").read_text(encoding="utf-8")
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, flags=re.S | re.M)
    assert match, f"docs/extending.md has no '## {title}' section"
    return match.group(1)


class MyNet(nn.Module):
    """A model written to the contract of the doc's step 1: num_classes, in_channels, options with defaults."""

    def __init__(self, num_classes: int, in_channels: int = 3, width: int = 4):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(width, num_classes, 1))

    def forward(self, x):
        return self.body(x)


def test_the_doc_names_the_files_a_new_model_touches():
    steps = re.split(r"^3\. ", section("Add a model"), flags=re.M)[0]  # steps 1-2: what every new model needs
    files = set(re.findall(r"`(seglab/[\w/]+\.py)`", steps))
    assert files == {"seglab/models/my_net.py", "seglab/models/__init__.py"}, (
        "the 'Add a model' section changed the files it names: update this test to do what it says")


def test_a_model_registered_as_the_doc_says_runs_in_every_mode(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(MODELS, "my_net", MyNet)  # step 2: the registry entry
    assert main(["models"]) == 0
    assert "my_net" in capsys.readouterr().out
    common = ["imgsz=32", "batch=4", "precision=fp32", "verbose=false"]
    assert main(["train", "model=my_net", "width=6", "epochs=1", "samples=0", f"project={tmp_path}", "name=r",
                 *common]) == 0
    best = tmp_path / "r" / "best.pt"
    ckpt = torch.load(best, weights_only=True)
    assert ckpt["arch"] == {"name": "my_net", "args": {"num_classes": 3, "width": 6}}  # options reach the constructor
    assert main(["val", f"model={best}", "split=test", "verbose=false"]) == 0
    source = sorted((REPO / "seglab" / "assets" / "pet_sample" / "images").glob("*.jpg"))[0]
    out = tmp_path / "pred"
    assert main(["predict", f"model={best}", f"source={source}", f"out={out}", "verbose=false"]) == 0
    assert (out / f"{source.stem}.png").is_file()
    pytest.importorskip("onnxruntime")
    assert main(["export", f"model={best}", f"out={tmp_path / 'my_net.onnx'}", "verbose=false"]) == 0
    assert (tmp_path / "my_net.onnx").is_file()
