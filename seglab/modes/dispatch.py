"""The generic modes: find the task of a run, then call the task's implementation of the mode.

The task comes from (first that says): `task=`, the checkpoint or ONNX file that `model=` names,
the architecture name, the dataset layout when only one task reads it, else semantic
(seglab/tasks/base.py `resolve_task`). With no `model=`, train and benchmark build the task's default.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

from seglab.config import Config, check_model_arguments, check_task_keys, given_keys, non_default_model_arguments
from seglab.data import resolve_root
from seglab.engine.checkpoint import load_checkpoint
from seglab.models.source import resolve_model
from seglab.tasks import TASKS, Task, resolve_task
from seglab.tasks.training import resume_checkpoint

DATA_MODES = ("train", "verify")  # modes whose task may follow from the dataset layout


def file_task(source) -> str:
    """The task a checkpoint or ONNX file was trained for (files from before tasks: semantic)."""
    if source.kind == "checkpoint":
        return load_checkpoint(source.path).get("task", "semantic")
    try:
        import onnx
    except ImportError:
        return "semantic"
    props = {p.key: p.value for p in onnx.load(str(source.path), load_external_data=False).metadata_props}
    return props.get("task", "semantic")  # strings are stored as they are (seglab/export/metadata.py)


def task_for(cfg: Config, mode: str) -> Task:
    owners = [task for task in TASKS.values() if mode in task.modes]
    if len(owners) == 1 and not cfg.task:  # a mode only one task has (track): that task
        return owners[0]
    checkpoint, model = None, ""
    if cfg.model:
        source = resolve_model(cfg.model)
        if source.kind == "architecture":
            model = source.name
        elif not cfg.task:  # task= given: the file need not be a seglab checkpoint (official SAM weights)
            checkpoint = {"task": file_task(source)}
    if mode == "train" and cfg.resume:  # a resumed run is of its checkpoint's task
        resumed = resume_checkpoint(cfg)[1]
        checkpoint = {"task": resumed.get("task", "semantic")} if resumed is not None else checkpoint
    data_root = resolve_root(cfg.data) if mode in DATA_MODES and cfg.data else None
    return resolve_task(TASKS, cfg.task, model, checkpoint, data_root)


def task_mode(mode: str) -> Callable[[Config], object]:
    """MODES[mode]: resolve the task, fill in its default model, run the task's `mode`."""

    def run(cfg: Config):
        task = task_for(cfg, mode)
        check_task_keys(cfg, task.name)
        if not cfg.model and mode in ("train", "benchmark"):
            given = given_keys(cfg)
            cfg = dataclasses.replace(cfg, model=task.default_model)
            cfg.given = given
            if not cfg.resume:  # now the architecture is known: the model arguments set must fit it
                check_model_arguments(cfg, non_default_model_arguments(cfg), mode)
        return task.mode(mode)(cfg)

    run.__name__ = run.__qualname__ = mode
    run.__doc__ = f"`seglab {mode}` for the task of the run (see seglab/modes/dispatch.py)."
    return run


