"""Panoptic segmentation: a class for every pixel and an instance for every pixel of a thing (stuff has none).

Data: seglab/data/panoptic/ (COCO panoptic, panopticapi sample_data, semantic + instance PNG folders, the
instance layouts with background as stuff); models: seglab/models/panoptic/ (panoptic_deeplab, ...) and
`fusion` (a semantic + an instance checkpoint, seglab/inference/panoptic_fusion.py); metric: PQ / SQ / RQ
(seglab/metrics/panoptic.py). docs/panoptic.md.
"""

from seglab.data.panoptic import OWN_FORMATS
from seglab.models import DEFAULT_MODELS, TASK_MODELS
from seglab.tasks.base import Task
from seglab.tasks.panoptic.benchmark import benchmark
from seglab.tasks.panoptic.evaluate import SELECTION_METRICS
from seglab.tasks.panoptic.export import export
from seglab.tasks.panoptic.predict import predict
from seglab.tasks.panoptic.train import train
from seglab.tasks.panoptic.val import val
from seglab.tasks.panoptic.verify import verify

PANOPTIC = Task(
    name="panoptic",
    summary="stuff and things in one map (panoptic_deeplab, fusion of a semantic and an instance model); PQ, SQ, RQ",
    models=TASK_MODELS["panoptic"],
    formats=OWN_FORMATS,  # the instance layouts are read with task=panoptic only (they name the instance task)
    selection_metrics=SELECTION_METRICS,
    default_model=DEFAULT_MODELS["panoptic"],
    modes={"train": train, "val": val, "predict": predict, "export": export, "benchmark": benchmark,
           "verify": verify},
)
