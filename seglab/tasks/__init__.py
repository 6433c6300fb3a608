"""Tasks: each segmentation family declares its models, dataset formats, selection metrics and modes
in one place (seglab/tasks/base.py); the generic modes (seglab/modes/) find the task and call it.

Add a task: a folder seglab/tasks/<name>/ whose __init__.py builds a `Task`, and one entry here
(docs/extending.md, "Add a task").
"""

from seglab.tasks.base import Task, TaskError, resolve_task
from seglab.tasks.instance import INSTANCE
from seglab.tasks.panoptic import PANOPTIC
from seglab.tasks.prompt import PROMPT
from seglab.tasks.semantic import SEMANTIC
from seglab.tasks.video import VIDEO

TASKS: dict[str, Task] = {"semantic": SEMANTIC, "instance": INSTANCE, "panoptic": PANOPTIC, "prompt": PROMPT,
                         "video": VIDEO}

__all__ = ["TASKS", "Task", "TaskError", "resolve_task"]
