"""Safe loading of ONNX models: size limit, contained external data, fixed shapes, inference.

Models come from strangers. :func:`load_model` refuses anything it cannot vouch for with a
:class:`~codesign.errors.ModelError` naming the file, tensor or input, and returns an
``onnx.ModelProto`` whose every graph input has a static shape and whose value_info carries the
inferred shapes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import onnx
from google.protobuf.message import DecodeError

from codesign.errors import ModelError, OptionError

#: Largest model file accepted (protobuf itself caps a message at 2 GiB).
MAX_MODEL_BYTES = 2 * 1024**3 - 1
#: Largest dimension accepted anywhere in a shape.
MAX_DIM = 2**31 - 1


@dataclass(frozen=True)
class ShapeOverride:
    """``--shape name=1x128``: the static shape to give graph input ``name``."""

    name: str
    shape: tuple[int, ...]

    @staticmethod
    def parse(text: str) -> ShapeOverride:
        name, sep, dims = text.partition("=")
        if not sep or not name or not dims:
            raise OptionError(f"--shape must look like NAME=1x128, not {text!r}")
        try:
            shape = tuple(int(d) for d in dims.lower().split("x"))
        except ValueError:
            raise OptionError(
                f"--shape {text!r}: dimensions must be integers joined by 'x'"
            ) from None
        if any(d <= 0 or d > MAX_DIM for d in shape):
            raise OptionError(f"--shape {text!r}: dimensions must lie in 1..{MAX_DIM}")
        return ShapeOverride(name, shape)


def load_model(
    path: str | os.PathLike[str],
    shapes: tuple[ShapeOverride, ...] = (),
    max_bytes: int = MAX_MODEL_BYTES,
) -> onnx.ModelProto:
    """Read, check and shape-infer the model at ``path``.

    Raises :class:`ModelError` for a missing, oversized, non-ONNX or truncated file, external data
    outside the model's directory, a dynamic input dimension without an override, or a failed
    check; :class:`OptionError` for an override naming no graph input or of the wrong rank.
    """
    p = Path(path)
    if not p.is_file():
        raise ModelError(f"{p}: no such model file")
    size = p.stat().st_size
    if size > max_bytes:
        raise ModelError(f"{p}: model file must be at most {max_bytes} bytes, not {size}")
    data = p.read_bytes()
    try:
        model = onnx.load_model_from_string(data)
    except (DecodeError, RuntimeError, ValueError) as e:
        raise ModelError(
            f"{p}: not a readable ONNX model (protobuf decode failed: {_short(e)})"
        ) from None
    if not model.HasField("graph") or (not model.graph.node and not model.graph.output):
        raise ModelError(f"{p}: not an ONNX model (no graph in the file)")
    _load_external_data(model, p)
    _apply_shapes(model, shapes, p)
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as e:
        raise ModelError(f"{p}: the ONNX checker rejected the model: {_short(e)}") from None
    try:
        model = onnx.shape_inference.infer_shapes(
            model, check_type=True, strict_mode=True, data_prop=True
        )
    except Exception as e:  # onnx raises InferenceError and plain RuntimeErrors here
        raise ModelError(f"{p}: shape inference failed: {_short(e)}") from None
    return model


def _apply_shapes(model: onnx.ModelProto, shapes: tuple[ShapeOverride, ...], path: Path) -> None:
    """Fix input dimensions from overrides; refuse any dimension left dynamic."""
    initializers = {t.name for t in model.graph.initializer}
    inputs = {i.name: i for i in model.graph.input if i.name not in initializers}
    for o in shapes:
        if o.name not in inputs:
            raise OptionError(
                f"--shape names {o.name!r}, but the graph inputs are {', '.join(sorted(inputs)) or 'none'}"
            )
        dims = inputs[o.name].type.tensor_type.shape.dim
        if len(dims) != len(o.shape):
            raise OptionError(
                f"--shape {o.name}: input {o.name!r} has rank {len(dims)}, not {len(o.shape)}"
            )
        for d, v in zip(dims, o.shape, strict=True):
            if d.HasField("dim_value") and d.dim_value != v:
                raise OptionError(
                    f"--shape {o.name}: dimension is fixed at {d.dim_value} in the model, not {v}"
                )
            d.Clear()
            d.dim_value = v
    for name, vi in inputs.items():
        if not vi.type.HasField("tensor_type"):
            raise ModelError(f"{path}: input {name!r} must be a tensor")
        if not vi.type.tensor_type.HasField("shape"):
            raise ModelError(f"{path}: input {name!r} has no shape; pass --shape {name}=...")
        for i, d in enumerate(vi.type.tensor_type.shape.dim):
            if not d.HasField("dim_value"):
                sym = d.dim_param or "?"
                raise ModelError(
                    f"{path}: input {name!r} has dynamic dimension {i} ({sym!r}); "
                    f"fix it with --shape {name}="
                    + "x".join(
                        str(x.dim_value) if x.HasField("dim_value") else "N"
                        for x in vi.type.tensor_type.shape.dim
                    )
                )
            if d.dim_value <= 0 or d.dim_value > MAX_DIM:
                raise ModelError(
                    f"{path}: input {name!r} dimension {i} must lie in 1..{MAX_DIM}, not {d.dim_value}"
                )


def _load_external_data(model: onnx.ModelProto, path: Path) -> None:
    """Load external tensor data, only from files inside the model's own directory."""
    from onnx.external_data_helper import load_external_data_for_tensor, uses_external_data

    base = path.parent.resolve()
    for tensor in _all_tensors(model):
        if not uses_external_data(tensor):
            continue
        location = next((e.value for e in tensor.external_data if e.key == "location"), "")
        rel = Path(location)
        if not location or rel.is_absolute() or ".." in rel.parts:
            raise ModelError(
                f"{path}: tensor {tensor.name!r} external data location must be a relative path "
                f"inside the model's directory, not {location!r}"
            )
        target = (base / rel).resolve()
        if not target.is_relative_to(base):
            raise ModelError(
                f"{path}: tensor {tensor.name!r} external data {location!r} resolves outside "
                "the model's directory (symlink)"
            )
        if not target.is_file():
            raise ModelError(
                f"{path}: tensor {tensor.name!r} external data file {location!r} is missing"
            )
        try:
            load_external_data_for_tensor(tensor, str(base))
        except Exception as e:
            raise ModelError(
                f"{path}: tensor {tensor.name!r} external data unreadable: {_short(e)}"
            ) from None
        tensor.data_location = onnx.TensorProto.DEFAULT
        del tensor.external_data[:]


def _all_tensors(model: onnx.ModelProto):
    yield from model.graph.initializer
    for node in model.graph.node:
        for a in node.attribute:
            if a.HasField("t"):
                yield a.t
            yield from a.tensors


def _short(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return text[:300] + ("..." if len(text) > 300 else "")
