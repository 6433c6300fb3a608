"""Exact resume: a run killed with SIGKILL mid-epoch and resumed ends with the weights and metrics
of the run that was never interrupted."""

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

TRAIN = ["epochs=5", "width=4", "depth=2", "imgsz=48", "batch=8", "save_every=1", "samples=0", "workers=0", "ema=0.9"]
VOLATILE = {"seconds", "img_per_s"}  # wall-clock columns


def seglab(*args, **kw):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "seglab", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, **kw)


def rows(run: Path) -> list[dict]:
    with open(run / "metrics.csv") as f:
        return [{k: v for k, v in r.items() if k not in VOLATILE} for r in csv.DictReader(f)]


def weights(path: Path) -> dict:
    return torch.load(path, weights_only=True)["model"]


def test_sigkill_mid_epoch_then_resume_matches_uninterrupted_run(tmp_path):
    full = seglab("train", *TRAIN, f"project={tmp_path}", "name=full")
    assert full.wait(timeout=300) == 0, full.stdout.read()

    victim = seglab("train", *TRAIN, f"project={tmp_path}", "name=victim")
    last, killed_at = tmp_path / "victim" / "last.pt", None
    deadline = time.time() + 300
    while time.time() < deadline and victim.poll() is None:
        if last.exists():
            try:
                state = torch.load(last, weights_only=True)["state"]
            except Exception:  # being replaced right now; os.replace keeps the old one readable
                continue
            if state["epoch"] >= 2 and state["batch"] >= 1:
                victim.send_signal(signal.SIGKILL)
                killed_at = (state["epoch"], state["batch"])
                break
        time.sleep(0.005)
    assert victim.wait(timeout=60) == -signal.SIGKILL, "the run finished before it could be killed mid-epoch"
    assert killed_at is not None

    resumed = seglab("train", f"resume={tmp_path / 'victim'}")
    out = resumed.communicate(timeout=300)[0]
    assert resumed.returncode == 0, out
    assert "resuming" in out

    for name in ("last.pt", "best.pt"):
        a, b = weights(tmp_path / "full" / name), weights(tmp_path / "victim" / name)
        assert a.keys() == b.keys()
        for key in a:
            assert torch.equal(a[key], b[key]), f"{name}:{key} differs after resume from {killed_at}"
    assert rows(tmp_path / "full") == rows(tmp_path / "victim")
