"""The ONNX border: the only package that imports onnx / onnx-ir."""

from __future__ import annotations

import os

from codesign.frontend.load import ShapeOverride, load_model
from codesign.frontend.lower import lower_model
from codesign.ir.graph import KernelGraph


def import_model(
    path: str | os.PathLike[str], shapes: tuple[ShapeOverride, ...] = ()
) -> KernelGraph:
    """Load, check and lower the ONNX model at ``path`` to a primitive KernelGraph."""
    return lower_model(load_model(path, shapes), source=str(path))


__all__ = ["ShapeOverride", "import_model", "load_model", "lower_model"]
