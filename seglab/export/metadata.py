"""ONNX metadata_props: the one writer and reader of seglab's metadata in exported files.

Values are stored as strings: a string as is, anything else as JSON. Needs the `onnx` package to write.
"""

from __future__ import annotations

import json
from pathlib import Path


def write_metadata(path: str | Path, values: dict) -> None:
    """Add `values` to the metadata_props of the ONNX file at `path` (in place)."""
    try:
        import onnx
    except ImportError:
        raise ImportError("writing ONNX metadata needs the onnx package: pip install onnx") from None
    proto = onnx.load(str(path))
    for key, value in values.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = str(key), value if isinstance(value, str) else json.dumps(value)
    onnx.save(proto, str(path))
