"""What a task is: the facts and the mode implementations of one segmentation family, declared in one place.

A task (semantic, instance, ...) declares
- `models`: its architecture registry (name -> class), so `model=NAME` says which task it is;
- `formats`: the dataset layouts it reads (name -> object with `matches(root) -> bool`), so
  `data=FOLDER` says which task it is when no model is named (`seglab train data=PennFudanPed`);
- `selection_metrics`: metric -> sign (+1 higher is better), the first being the default that picks best.pt;
- `modes`: mode name -> function(cfg); a mode the task lacks fails by name;
- `default_model`: what `seglab train` builds when no model is named.
The generic modes (seglab/modes/) only find the task (`resolve_task`) and call `task.mode(name)`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping


class TaskError(ValueError):
    """No task fits, or the task lacks the mode; the message says which exist."""


@dataclass(frozen=True)
class Task:
    name: str
    summary: str
    models: Mapping[str, type]
    formats: Mapping[str, Any]
    selection_metrics: Mapping[str, float]
    default_model: str
    modes: Mapping[str, Callable] = field(default_factory=dict)

    @property
    def default_metric(self) -> str:
        return next(iter(self.selection_metrics))

    def mode(self, name: str) -> Callable:
        try:
            return self.modes[name]
        except KeyError:
            have = ", ".join(sorted(self.modes)) or "none"
            raise TaskError(f"task '{self.name}' has no mode '{name}' (its modes: {have})") from None

    def reads(self, root: Path) -> str | None:
        """The name of the first of this task's formats that matches the folder, or None."""
        return next((name for name, fmt in self.formats.items() if fmt.matches(root)), None)


def resolve_task(tasks: Mapping[str, Task], task: str = "", model: str = "", checkpoint: dict | None = None,
                 data_root: Path | None = None, default: str = "semantic") -> Task:
    """The task, from the first of these that says: `task=`, the checkpoint's task, the model name,
    the dataset layout (when only this task reads it), else `default`."""
    if task:
        if task not in tasks:
            raise TaskError(f"task={task!r}: expected one of {', '.join(tasks)}")
        return tasks[task]
    if checkpoint is not None:
        return tasks[checkpoint.get("task", default)]
    if model:
        owners = [t for t in tasks.values() if model in t.models]
        if len(owners) > 1:
            raise TaskError(f"model={model!r} serves tasks {', '.join(t.name for t in owners)}: "
                            f"say which with task=...")
        if owners:
            return owners[0]
    if data_root is not None and data_root.exists():
        readers = [t for t in tasks.values() if t.reads(data_root)]
        if len(readers) == 1:
            return readers[0]
    return tasks[default]
