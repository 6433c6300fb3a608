"""Promptable segmentation: a mask for the object a user points at (clicks, a box, a previous mask).

Data: seglab/data/prompt/ (objects of any instance or semantic dataset); models: seglab/models/prompt/
(click_seg, seglab's click model); the predictor and backends (seglab's model, official SAM):
seglab/prompt/; metrics: seglab/metrics/clicks.py (NoC@85/90, NoF, mIoU@k with RITM's clicker).
"""

from seglab.models import DEFAULT_MODELS, PROMPT_MODELS
from seglab.tasks.base import Task
from seglab.tasks.prompt.export import export
from seglab.tasks.prompt.predict import predict
from seglab.tasks.prompt.train import SELECTION_METRICS, train
from seglab.tasks.prompt.val import val


class NoLayout:
    """Prompt data is any instance or semantic layout: the task is never guessed from the data alone."""

    @staticmethod
    def matches(root) -> bool:
        return False


PROMPT = Task(
    name="prompt",
    summary="the mask of the object a click / box points at (click_seg, official SAM); NoC@85/90, mIoU@k",
    models=PROMPT_MODELS,
    formats={"objects": NoLayout()},
    selection_metrics=SELECTION_METRICS,
    default_model=DEFAULT_MODELS["prompt"],
    modes={"train": train, "val": val, "predict": predict, "export": export},
)
