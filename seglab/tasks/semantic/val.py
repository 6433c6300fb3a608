"""`seglab val`: score a checkpoint on any split, print the per-class table, write the metrics JSON.

At resolution=original (the default) every image goes through the same Predictor path as
`seglab predict` with the same inference keys (mode, tile, overlap, blend, tta, scales, batch), so the
confusion matrix in val_<split>.json counts exactly the labels predict would write.
"""

from __future__ import annotations

import dataclasses

from seglab.config import Config
from seglab.data import DataError, SegmentationDataset, open_split
from seglab.engine.device import Runtime
from seglab.engine.evaluate import summary
from seglab.inference.evaluate import evaluate
from seglab.inference.predictor import InferenceOptions, Predictor
from seglab.metrics import format_class_table
from seglab.tasks.reporting import write_val_result


def data_config(cfg: Config, checkpoint: dict) -> Config:
    """The dataset keys not given on the command line come from the checkpoint's training config."""
    trained = checkpoint.get("config", {})
    return dataclasses.replace(cfg, data=cfg.data or trained.get("data", ""),
                               classes=cfg.classes or trained.get("classes", ""),
                               dataset=cfg.dataset if cfg.dataset != "auto" else trained.get("dataset", "auto"))


def val(cfg: Config) -> dict:
    runtime = Runtime.from_config(cfg.device, cfg.precision, cfg.channels_last)
    predictor = Predictor(cfg.model, runtime, InferenceOptions.from_config(cfg))
    if predictor.model is None:
        raise ValueError(f"{cfg.model}: val scores a PyTorch checkpoint (.pt); an exported .onnx model "
                         "runs with `seglab predict` (its parity with the .pt is tested)")
    spec = open_split(data_config(cfg, predictor.checkpoint), cfg.split)
    if spec.classes.names != predictor.classes.names:
        raise DataError(f"{spec.root}: classes {spec.classes.names} differ from the model's {predictor.classes.names}")
    dataset = SegmentationDataset(spec, predictor.train_size, cache=False, resize=predictor.scale)
    result = evaluate(predictor, dataset, cfg.resolution, boundary=True)
    final, path = write_val_result(cfg, spec.root, len(dataset), predictor.describe(),
                                   summary(result, spec.classes.names))
    if cfg.verbose:
        print(f"{cfg.model} on {spec.root} split={cfg.split} ({len(dataset)} images), scored at "
              f"{result['resolution']} resolution; {predictor.describe()}")
        print(format_class_table(result, spec.classes.names))
        print(f"pixel accuracy {final['pixel_accuracy']:.4f}  mIoU {final['miou']:.4f}  "
              f"Boundary F1 {final['boundary_f1'] or 0:.4f}\nwritten: {path}")
    return final
