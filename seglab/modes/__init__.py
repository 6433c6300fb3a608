"""The command-line modes: `seglab MODE key=value ...` calls MODES[MODE](cfg).

Every mode but `models` belongs to a task: the generic function here finds the run's task and calls
the task's implementation (seglab/tasks/<task>/<mode>.py); a mode a task lacks fails by name.
"""

from seglab.modes.dispatch import task_mode
from seglab.modes.models import models
from seglab.serve.mode import serve

TASK_MODES = ("train", "val", "predict", "export", "benchmark", "verify", "track")

MODES = {**{mode: task_mode(mode) for mode in TASK_MODES}, "models": models, "serve": serve}
