"""What `model=` names, decided in one place: an architecture, a checkpoint (.pt) or an exported ONNX file.

`resolve_model("unet")` -> architecture; `resolve_model("runs/pet/best.pt")` -> checkpoint;
`resolve_model("runs/pet")` -> the run folder's best.pt; `resolve_model("x.onnx")` -> onnx.
Each mode then states which kinds it takes with `require(source, mode, kinds)`, so a wrong kind
fails with one message naming the mode and what it needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from seglab.models import TASK_MODELS, model_task

CHECKPOINT_SUFFIXES = (".pt", ".pth")
KIND_WORDS = {"architecture": "an architecture name (see `seglab models`)",
              "checkpoint": "a checkpoint .pt (e.g. runs/train/best.pt) or a run folder",
              "onnx": "an exported .onnx file"}


class ModelSourceError(ValueError):
    """`model=` names nothing usable, or a kind the mode cannot take."""


@dataclass(frozen=True)
class ModelSource:
    kind: str  # architecture | checkpoint | onnx
    name: str  # the architecture name, or the file's path as text

    @property
    def path(self) -> Path:
        return Path(self.name)


def resolve_model(text: str | Path) -> ModelSource:
    text = str(text)
    path = Path(text).expanduser()
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        if not path.is_file():
            raise FileNotFoundError(f"{path}: ONNX file not found")
        return ModelSource("onnx", str(path))
    if suffix in CHECKPOINT_SUFFIXES:
        if not path.is_file():
            raise FileNotFoundError(f"{path}: checkpoint not found")
        return ModelSource("checkpoint", str(path))
    if model_task(text) is not None:
        return ModelSource("architecture", text)
    if path.is_dir():
        best = path / "best.pt"
        if not best.is_file():
            raise FileNotFoundError(f"{path}: a folder without best.pt (model= takes a run folder, a .pt or an .onnx)")
        return ModelSource("checkpoint", str(best))
    names = sorted(name for registry in TASK_MODELS.values() for name in registry)
    raise ModelSourceError(f"model={text!r}: not an architecture (valid: {', '.join(names)}), "
                           f"nor an existing .pt checkpoint, run folder or .onnx file")


def require(source: ModelSource, mode: str, kinds: tuple[str, ...]) -> ModelSource:
    """`source` if its kind is one of `kinds`, else an error saying what `mode` takes."""
    if source.kind not in kinds:
        wanted = " or ".join(KIND_WORDS[k] for k in kinds)
        raise ModelSourceError(f"model={source.name!r} is {KIND_WORDS[source.kind]}; {mode} takes {wanted}")
    return source
