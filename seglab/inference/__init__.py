"""Using a trained model: predictor (stretch / tiling / TTA), backends (PyTorch, onnxruntime), outputs.

See docs/inference.md. `Predictor(checkpoint_or_onnx, runtime, InferenceOptions(...)).run([Job(image)])`
gives class ids at each image's own size; `seglab.inference.evaluate` scores a dataset through the
same path (what `seglab val` runs) and builds the training loop's `validate(model)`.
"""

from seglab.inference.overlay import colorize, overlay, side_by_side
from seglab.inference.predictor import InferenceOptions, Job, Predictor, labels_at_size

__all__ = ["InferenceOptions", "Job", "Predictor", "colorize", "labels_at_size", "overlay", "side_by_side"]
