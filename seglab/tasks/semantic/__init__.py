"""Semantic segmentation: a class per pixel. The mode implementations of this task live beside this file."""

from seglab.data import OWN_FORMATS
from seglab.engine.trainer import SELECTION_METRICS
from seglab.models import DEFAULT_MODELS, MODELS
from seglab.tasks.base import Task
from seglab.tasks.semantic.benchmark import benchmark
from seglab.tasks.semantic.export import export
from seglab.tasks.semantic.predict import predict
from seglab.tasks.semantic.train import train
from seglab.tasks.semantic.val import val
from seglab.tasks.semantic.verify import verify

SEMANTIC = Task(
    name="semantic",
    summary="a class per pixel (U-Net, DeepLabV3+, SegFormer, ...); mIoU, Dice, Boundary F1",
    models=MODELS,
    formats=OWN_FORMATS,  # the instance layouts are read with task=semantic only (they name the instance task)
    selection_metrics=SELECTION_METRICS,
    default_model=DEFAULT_MODELS["semantic"],
    modes={"train": train, "val": val, "predict": predict, "export": export, "benchmark": benchmark,
           "verify": verify},
)
