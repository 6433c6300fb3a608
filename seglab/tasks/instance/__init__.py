"""Instance segmentation: each object of a class its own mask (Mask R-CNN, a one-stage YOLO-style model).

Data: seglab/data/instance/ (COCO, YOLO, Penn-Fudan, DSB2018, instance-id folders); models:
seglab/models/instance/; metrics: seglab/metrics/instance.py (COCO mask AP, matching accuracy).
"""

from seglab.data.instance import INSTANCE_FORMATS
from seglab.models import DEFAULT_MODELS, INSTANCE_MODELS
from seglab.tasks.base import Task
from seglab.tasks.instance.evaluate import SELECTION_METRICS
from seglab.tasks.instance.predict import predict
from seglab.tasks.instance.train import train
from seglab.tasks.instance.val import val
from seglab.tasks.instance.export import export
from seglab.tasks.instance.benchmark import benchmark
from seglab.tasks.instance.verify import verify

INSTANCE = Task(
    name="instance",
    summary="a mask, class and score per object (Mask R-CNN, yolo_seg); COCO mask AP, matching accuracy",
    models=INSTANCE_MODELS,
    formats=INSTANCE_FORMATS,
    selection_metrics=SELECTION_METRICS,
    default_model=DEFAULT_MODELS["instance"],
    modes={"train": train, "val": val, "predict": predict, "export": export, "benchmark": benchmark,
           "verify": verify},
)
