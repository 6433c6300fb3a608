"""Instance training under torchrun (two gloo processes on the CPU): both models train with DDP, the global
batch is split over the processes, only rank 0 writes the run folder, and the checkpoint it writes works.

Unlike the semantic test (tests/test_ddp.py) the weights are not compared with a one-process run: the
detectors sample anchors and RoIs at random and average their mask loss over each process's positives, so
the two runs legitimately differ. What breaks here is DDP itself (a parameter no loss reaches, a rank that
hangs in validation, two run folders)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from test_instance_data_layouts import write_penn_fudan

TORCHRUN = Path(sys.executable).with_name("torchrun")
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
COMMON = ["encoder=resnet18", "imgsz=64", "batch=4", "precision=fp32", "workers=0", "epochs=2", "samples=0",
          "calibrate_min_score=false"]


def run(cmd: list[str]) -> str:
    done = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


@pytest.mark.parametrize("model", ["yolo_seg", "maskrcnn"])
def test_two_processes_train_an_instance_model_with_one_run_folder(tmp_path, model):
    root = tmp_path / "PennFudanPed"
    write_penn_fudan(root, n=10)  # 8 train / 2 val (seeded 80/20)
    out = run([str(TORCHRUN), "--standalone", "--nproc_per_node=2", "-m", "seglab", "train", f"data={root}",
               f"model={model}", *COMMON, f"project={tmp_path}", "name=ddp"])
    assert "2 process(es)" in out
    assert not (tmp_path / "ddp2").exists(), "only rank 0 may create the run folder"
    last = torch.load(tmp_path / "ddp" / "last.pt", weights_only=True)
    assert last["state"]["step"] == 4  # 8 train images // global batch 4 = 2 steps an epoch, 2 epochs
    assert len(last["state"]["history"]) == 2 and "val_mask_ap" in last["state"]["history"][-1]
    assert not any(k.startswith("module.") for k in last["model"])  # the model's own names, not DDP's
    run([sys.executable, "-m", "seglab", "val", f"model={tmp_path / 'ddp' / 'best.pt'}", f"data={root}",
         "verbose=false"])
