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
from codesign.frontend.placement import NodePlacement, Placement, place
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


def place_model(
    path: str | os.PathLike[str],
    shapes: tuple[ShapeOverride, ...] = (),
    max_bytes: int = MAX_MODEL_BYTES,
    data: bytes | None = None,
    *,
    debug: bool = False,
    keep_going: bool = False,
) -> Placement:
    """Load, lower and map the model at ``path`` to hardware ops and Host partitions, with
    every node's unit (:func:`codesign.frontend.placement.place`): what ``codesign compile``
    builds on and ``codesign inspect`` shows."""
    model = load_model(path, shapes, max_bytes, data)
    return place(model, str(path), debug=debug, keep_going=keep_going)


__all__ = [
    "MAX_MODEL_BYTES",
    "NodePlacement",
    "Placement",
    "ShapeOverride",
    "import_model",
    "load_model",
    "lower_model",
    "place",
    "place_model",
    "read_model_bytes",
    "reference_copy",
]
