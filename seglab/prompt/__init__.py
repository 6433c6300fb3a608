"""Promptable segmentation (SAM's shape): points / boxes / a rough mask -> an object's mask and score.

`Predictor(model)` is segment_anything.SamPredictor's API over any `PromptBackend`
(seglab/prompt/backend.py): official SAM / MobileSAM (sam_official.py), SAM 2 (sam2_official.py) or
seglab's click model (click_backend.py); `AutomaticMaskGenerator` segments everything in an image
(COCO RLE records); `export_onnx` writes SAM's image encoder and prompt decoder as ONNX. docs/prompt.md.
"""
from seglab.prompt.automatic import AutomaticMaskGenerator
from seglab.prompt.backend import ImageEmbedding, PromptBackend
from seglab.prompt.loading import BACKENDS, checkpoint_kind
from seglab.prompt.onnx_export import OnnxSamBackend, export_onnx
from seglab.prompt.predictor import Predictor, load_backend
from seglab.prompt.sam2_onnx_export import OnnxSam2Backend, export_sam2_onnx

__all__ = ["BACKENDS", "AutomaticMaskGenerator", "ImageEmbedding", "OnnxSam2Backend", "OnnxSamBackend", "Predictor",
           "PromptBackend", "checkpoint_kind", "export_onnx", "export_sam2_onnx", "load_backend"]
