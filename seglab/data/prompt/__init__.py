"""Promptable-segmentation data: objects (one per instance, or per connected region of a class) from
any dataset seglab reads (objects.py), and training samples of one object each (dataset.py)."""

from seglab.data.prompt.dataset import ObjectDataset, collate, resized_view, square_canvas
from seglab.data.prompt.objects import (DETECTED, MIN_OBJECT_PIXELS, ObjectImage, ObjectMap, ObjectSplit,
                                        dataset_roots, detect_object_format, open_object_split)

__all__ = ["DETECTED", "MIN_OBJECT_PIXELS", "ObjectDataset", "ObjectImage", "ObjectMap", "ObjectSplit", "collate",
           "dataset_roots", "detect_object_format", "open_object_split", "resized_view", "square_canvas"]
