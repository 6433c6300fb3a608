"""What `model=` gives the page, by the task of the model (TASK_ENGINES):
- prompt: a promptable model (seglab's click model, an official SAM / SAM 2 / MobileSAM file, or a
  backend object): loaded once; each session gets its own `seglab.prompt.Predictor` over it, with
  the image's embedding cached from upload on;
- semantic / instance: a seglab checkpoint; each image gets its prediction as an overlay and a legend
  (seglab/inference/predictor.py, seglab/inference/instance.py: the same path `seglab predict` runs).
The task is `task=` when given, else the checkpoint's own; a file that is no seglab checkpoint is a
promptable model (the prompt loaders say what they read).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from seglab.engine.checkpoint import CheckpointError
from seglab.engine.device import Runtime
from seglab.serve.masks import data_url, instance_colors, label_overlay, png_bytes

BACKGROUND_NAMES = ("background", "_background_", "bg")  # semantic classes left clear in the overlay


def file_task(path: Path) -> str:
    """The task a model file was trained for: a seglab checkpoint's "task" (semantic when absent, as
    seglab's own modes read it); "prompt" for any other file (official SAM weights: a bare state dict)."""
    path = Path(path)
    if path.suffix.lower() == ".onnx":
        return "semantic"
    try:  # mmap: only the dict's keys are read, even for a multi-GB SAM file
        ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # not a torch zip file: let the prompt loaders say what it is
        return "prompt"
    if isinstance(ckpt, dict) and {"arch", "classes", "preprocess", "model"} <= set(ckpt):
        return str(ckpt.get("task", "semantic"))
    return "prompt"


class PromptEngine:
    task = "prompt"
    clicks = True

    def __init__(self, backend):
        self.backend = backend
        self.name = getattr(backend, "name", type(backend).__name__)

    @classmethod
    def from_file(cls, path: Path, device: str) -> PromptEngine:
        from seglab.prompt.predictor import load_backend

        return cls(load_backend(path, device=device))

    def predictor(self, rgb: np.ndarray):
        """A Predictor of its own for one session, with the image embedded once."""
        from seglab.prompt.predictor import Predictor

        predictor = Predictor(self.backend)
        predictor.set_image(rgb)
        return predictor

    def prediction(self, rgb: np.ndarray) -> dict | None:
        return None


class SemanticEngine:
    task = "semantic"
    clicks = False

    def __init__(self, path: Path, device: str):
        from seglab.inference.predictor import Predictor

        self.model = Predictor(path, Runtime.from_config(device, "auto", True))
        self.name = Path(path).name

    @classmethod
    def from_file(cls, path: Path, device: str) -> SemanticEngine:
        return cls(path, device)

    def predictor(self, rgb: np.ndarray):
        return None

    def prediction(self, rgb: np.ndarray) -> dict:
        from seglab.inference.predictor import Job

        labels = self.model.run([Job(rgb)])[0]
        classes = self.model.classes
        clear = tuple(i for i, name in enumerate(classes.names) if name.lower() in BACKGROUND_NAMES)
        colors = np.asarray(classes.colors, np.uint8)
        shares = np.bincount(labels.ravel(), minlength=len(colors)) / labels.size
        legend = [{"name": name, "color": [int(c) for c in colors[i]], "share": round(float(shares[i]), 4)}
                  for i, name in enumerate(classes.names)]
        return {"overlay": data_url(png_bytes(label_overlay(labels, colors, clear))), "legend": legend}


class InstanceEngine:
    task = "instance"
    clicks = False

    def __init__(self, path: Path, device: str):
        from seglab.inference.instance import InstancePredictor

        self.model = InstancePredictor(path, Runtime.from_config(device, "auto", True))
        self.name = Path(path).name

    @classmethod
    def from_file(cls, path: Path, device: str) -> InstanceEngine:
        return cls(path, device)

    def predictor(self, rgb: np.ndarray):
        return None

    def prediction(self, rgb: np.ndarray) -> dict:
        found = self.model.predict(rgb).confident(self.model.options.min_score)
        colors = instance_colors(len(found))
        names = self.model.classes.names
        legend = [{"name": f"{names[label]} {score:.2f}", "color": [int(c) for c in colors[k + 1]],
                   "share": round(float((found.ids == k + 1).mean()), 4)}
                  for k, (label, score) in enumerate(zip(found.labels, found.scores))]
        return {"overlay": data_url(png_bytes(label_overlay(found.ids, colors, (0,)))), "legend": legend}


TASK_ENGINES = {"prompt": PromptEngine, "semantic": SemanticEngine, "instance": InstanceEngine}


def load_engine(model, device: str = "auto", task: str = ""):
    """`model`: a backend object (prompt), or a path: a run folder, a seglab checkpoint, an ONNX
    export or a promptable model's weights."""
    if not isinstance(model, (str, Path)):
        return PromptEngine(model)
    if not str(model):
        raise ValueError("serve needs model=: a promptable model (click-model checkpoint, SAM weights) or a "
                         "semantic / instance checkpoint")
    path = Path(model).expanduser()
    if path.is_dir():
        path = path / "best.pt"
    if not path.is_file():
        raise FileNotFoundError(f"model={model}: no such file (or run folder without best.pt)")
    task = task or file_task(path)
    if task not in TASK_ENGINES:
        raise CheckpointError(f"{path}: a {task!r} model; the page serves {', '.join(TASK_ENGINES)} models")
    return TASK_ENGINES[task].from_file(path, device)
