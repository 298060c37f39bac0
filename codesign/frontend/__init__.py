"""The ONNX border: the only package that imports onnx / onnx-ir."""

from __future__ import annotations

import os

from codesign.frontend.load import (
    MAX_MODEL_BYTES,
    ShapeOverride,
    load_model,
    read_model_bytes,
    reference_copy,
)
from codesign.frontend.lower import lower_model
from codesign.ir.graph import KernelGraph


def import_model(
    path: str | os.PathLike[str],
    shapes: tuple[ShapeOverride, ...] = (),
    max_bytes: int = MAX_MODEL_BYTES,
    data: bytes | None = None,
) -> KernelGraph:
    """Load, check and lower the ONNX model at ``path`` (bytes ``data`` if already read) to a
    primitive KernelGraph; ``max_bytes`` bounds the file and its external data."""
    return lower_model(load_model(path, shapes, max_bytes, data), source=str(path))


__all__ = [
    "MAX_MODEL_BYTES",
    "ShapeOverride",
    "import_model",
    "load_model",
    "lower_model",
    "read_model_bytes",
    "reference_copy",
]
