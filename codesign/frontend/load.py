"""Safe loading of ONNX models: size limit, contained external data, fixed shapes, inference.

Models come from strangers. :func:`load_model` refuses anything it cannot vouch for with a
:class:`~codesign.errors.ModelError` naming the file, tensor or input, and returns an
``onnx.ModelProto`` whose every graph input has a static shape and whose value_info carries the
inferred shapes.
"""

from __future__ import annotations

import math
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import onnx
from google.protobuf.message import DecodeError

from codesign.errors import ModelError, OptionError
from codesign.fileio import open_in
from codesign.frontend import contrib_shapes
from codesign.frontend.canonical import canonicalize
from codesign.frontend.validate import (
    MAX_DIM,
    check_dims,
    check_reshape_targets,
    check_structure,
    tensor_nbytes,
    type_name,
)

#: Largest model accepted, in bytes: the file plus its external data (protobuf itself caps a
#: message at 2 GiB). ``codesign compile --max-model-size`` lowers it.
MAX_MODEL_BYTES = 2 * 1024**3 - 1

#: Highest tensor rank accepted: numpy's own limit (the simulator runs on numpy arrays).
MAX_RANK = 32


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


def parse_size(text: str, option: str = "size") -> int:
    """``"500M"`` -> bytes (suffixes K, M, G are powers of 1024), at most :data:`MAX_MODEL_BYTES`."""
    t = text.strip().upper().removesuffix("B")
    scale = {"K": 1024, "M": 1024**2, "G": 1024**3}.get(t[-1:], 1)
    digits = t[:-1] if scale > 1 else t
    if not digits.isdigit() or int(digits) * scale < 1:
        raise OptionError(f"{option} must be a positive size such as 500M or 2G, not {text!r}")
    return min(int(digits) * scale, MAX_MODEL_BYTES)


def load_model(
    path: str | os.PathLike[str],
    shapes: tuple[ShapeOverride, ...] = (),
    max_bytes: int = MAX_MODEL_BYTES,
    data: bytes | None = None,
) -> onnx.ModelProto:
    """Read, check and shape-infer the model at ``path`` (whose bytes are ``data`` if given).

    Raises :class:`ModelError` for a missing, oversized, non-ONNX or truncated file, external data
    outside the model's directory, a malformed graph (see
    :func:`codesign.frontend.validate.check_structure`), a dynamic input dimension without an
    override, a failed check, or inferred shapes beyond the limits; :class:`OptionError` for an
    override naming no graph input or of the wrong rank. ``max_bytes`` bounds the model file and
    its external data together.
    """
    p = Path(path)
    if data is None:
        data = read_model_bytes(p, max_bytes)
    model = _decode(data, p)
    check_structure(model, p)
    load_external_data(model, p, max_bytes, len(data))
    check_reshape_targets(model.graph, p)
    _apply_shapes(model, shapes, p)
    try:
        onnx.checker.check_model(model)
    except Exception as e:  # ValidationError, and whatever a hostile proto provokes
        raise ModelError(f"{p}: the ONNX checker rejected the model: {_short(e)}") from None
    model = _infer_shapes(model, p)
    # exporter output -> one canonical form (folded, fused norms / GELUs, opset 23); the
    # fused ops need value_info of their own, so shapes are inferred once more
    model = _infer_shapes(canonicalize(model, str(p)), p, "after canonicalisation")
    io = {vi.name for vi in [*model.graph.input, *model.graph.output]}
    for vi in [*model.graph.input, *model.graph.value_info, *model.graph.output]:
        shape = vi.type.tensor_type.shape
        if len(shape.dim) > MAX_RANK:
            raise ModelError(
                f"{p}: tensor {vi.name!r} must have rank at most {MAX_RANK} (numpy's limit), "
                f"not {len(shape.dim)}"
            )
        dims = [d.dim_value if d.HasField("dim_value") else None for d in shape.dim]
        # an intermediate tensor may be empty (a zero-length shape argument); graph inputs and
        # outputs may not (the simulator and the board move real data)
        check_dims(dims, f"{p}: tensor {vi.name!r} (inferred)", allow_empty=vi.name not in io)
    return model


#: Initializers of more bytes than this are left out of shape inference's copy of the model
#: (see :func:`_skeleton`): no shape computation reads a weight matrix's values.
_INFER_SKIP_BYTES = 64 * 1024


def _skeleton(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of ``model`` whose large initializers carry their name, type and dims but no
    bytes (marked external, so onnx reads nothing): what shape inference needs, without the
    protobuf copies of every weight that take seconds on BERT-base."""
    skel = onnx.ModelProto()
    for field in ("ir_version", "opset_import", "functions", "producer_name", "domain"):
        if field in ("opset_import", "functions"):
            getattr(skel, field).extend(getattr(model, field))
        else:
            setattr(skel, field, getattr(model, field))
    g, sg = model.graph, skel.graph
    sg.name = g.name
    for field in ("node", "input", "output", "value_info", "sparse_initializer"):
        getattr(sg, field).extend(getattr(g, field))
    for t in g.initializer:
        need = tensor_nbytes(t, math.prod(t.dims))
        st = sg.initializer.add()
        if need is None or need <= _INFER_SKIP_BYTES or t.data_location != onnx.TensorProto.DEFAULT:
            st.CopyFrom(t)
            continue
        st.name, st.data_type = t.name, t.data_type
        st.dims.extend(t.dims)
        st.data_location = onnx.TensorProto.EXTERNAL
        entry = st.external_data.add()
        entry.key, entry.value = "location", "codesign-shape-inference-skeleton"
    return skel


def _infer_shapes(model: onnx.ModelProto, p: Path, when: str = "") -> onnx.ModelProto:
    """``model`` with onnx's strict, type-checked shape inference (with data propagation) in
    its value_info and output types; ModelError naming ``p`` if inference fails.

    Inference runs on :func:`_skeleton` of the model; its value_info and output types are then
    copied into ``model``, which is returned. Contrib ops onnx cannot type (com.microsoft
    MatMulNBits, QGemm, ...) are typed by :mod:`codesign.frontend.contrib_shapes`, and inference
    runs again through them.
    """
    model = _infer_once(model, p, when)
    while contrib_shapes.annotate(model):
        model = _infer_once(model, p, when)
    return model


def _infer_once(model: onnx.ModelProto, p: Path, when: str) -> onnx.ModelProto:
    try:
        inferred = onnx.shape_inference.infer_shapes(
            _skeleton(model), check_type=True, strict_mode=True, data_prop=True
        )
    except Exception as e:  # onnx raises InferenceError and plain RuntimeErrors here
        where = f" {when}" if when else ""
        raise ModelError(f"{p}: shape inference{where} failed: {_short(e)}") from None
    g = model.graph
    del g.value_info[:]
    g.value_info.extend(inferred.graph.value_info)
    del g.output[:]
    g.output.extend(inferred.graph.output)
    return model


def _decode(data: bytes, p: Path) -> onnx.ModelProto:
    try:
        model = onnx.load_model_from_string(data)
    except (DecodeError, RuntimeError, ValueError) as e:
        raise ModelError(
            f"{p}: not a readable ONNX model (protobuf decode failed: {_short(e)})"
        ) from None
    if not model.HasField("graph") or (not model.graph.node and not model.graph.output):
        raise ModelError(f"{p}: not an ONNX model (no graph in the file)")
    return model


def reference_copy(path: Path, data: bytes, max_bytes: int = MAX_MODEL_BYTES) -> bytes:
    """The bytes of a self-contained copy of the model (``data`` read from ``path``): ``data``
    itself, or, when tensors live in external files, the model with that data inlined (read
    under the same rules as :func:`load_model`)."""
    model = _decode(data, path)
    check_structure(model, path)
    if not any(t.data_location == onnx.TensorProto.EXTERNAL for t in _all_tensors(model)):
        return data
    load_external_data(model, path, max_bytes, len(data))
    return model.SerializeToString(deterministic=True)


def read_model_bytes(p: Path, max_bytes: int = MAX_MODEL_BYTES) -> bytes:
    """The bytes of the regular file ``p``, refusing more than ``max_bytes``.

    The file is opened once (without blocking, so a FIFO cannot hang the read), checked with
    fstat on that handle (a regular file, not a directory, pipe, socket or device) and read
    from it.
    """
    try:
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise ModelError(f"{p}: no such model file") from None
    except IsADirectoryError:
        raise ModelError(f"{p}: must be a model file, not a directory") from None
    except OSError as e:
        raise ModelError(f"{p}: cannot read the model file: {e.strerror}") from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise ModelError(f"{p}: must be a model file, not a directory")
        if not stat.S_ISREG(st.st_mode):
            raise ModelError(f"{p}: must be a regular file (not a device, pipe or socket)")
        if st.st_size > max_bytes:
            raise ModelError(f"{p}: model file must be at most {max_bytes} bytes, not {st.st_size}")
        with os.fdopen(os.dup(fd), "rb") as f:
            data = f.read(max_bytes + 1)
    except OSError as e:
        raise ModelError(f"{p}: cannot read the model file: {e.strerror}") from None
    finally:
        os.close(fd)
    if len(data) > max_bytes:  # grew since fstat
        raise ModelError(f"{p}: model file must be at most {max_bytes} bytes, not more")
    return data


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
        check_dims([d.dim_value for d in vi.type.tensor_type.shape.dim], f"{path}: input {name!r}")


def load_external_data(
    model: onnx.ModelProto, path: Path, max_bytes: int = MAX_MODEL_BYTES, file_bytes: int = 0
) -> list[str]:
    """Inline every tensor's external data, read only from regular files inside the model's own
    directory; return the locations read (sorted).

    The model file (``file_bytes``) and the external data together must stay within
    ``max_bytes``.

    A location must be a relative path without ``..``; every component of it is opened with
    ``O_NOFOLLOW`` relative to a descriptor of the model's directory (no symlink, so nothing a
    swapped link points to is read), and the opened file must be a regular file (fstat). Each
    file is opened once and every tensor is read from that one handle. Offset and length must
    lie inside the file, and the length must be the size the tensor's dims and type need.
    """
    try:
        base_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as e:
        raise ModelError(f"{path}: cannot open the model's directory: {e.strerror}") from None
    handles: dict[str, int] = {}
    try:
        return _inline_external(model, path, max_bytes, file_bytes, base_fd, handles)
    finally:
        for fd in handles.values():
            os.close(fd)
        os.close(base_fd)


def _open_external(base_fd: int, rel: Path, location: str, where: str) -> int:
    """Open ``rel`` below the directory ``base_fd``, no component followed through a symlink;
    a regular file (fstat) or ModelError."""
    fd = os.dup(base_fd)
    try:
        for part in rel.parts[:-1]:
            try:
                nfd = os.open(
                    part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd
                )
            except OSError as e:
                raise ModelError(
                    f"{where} {location!r} must stay inside the model's directory through real "
                    f"folders, not symlinks ({part!r}: {e.strerror})"
                ) from None
            os.close(fd)
            fd = nfd
        try:
            return open_in(fd, rel.parts[-1], f"{where} {location!r}", ModelError)
        except ModelError as e:
            if "symlink" in str(e):
                raise ModelError(
                    f"{where} {location!r} must stay inside the model's directory as a regular "
                    "file, not a symlink"
                ) from None
            if "no such file" in str(e):
                raise ModelError(f"{where} file {location!r} is missing") from None
            head = f"{where} {location!r}"
            raise ModelError(str(e).replace(f"{head}: ", f"{head} ", 1)) from None
    finally:
        os.close(fd)


def _inline_external(
    model: onnx.ModelProto,
    path: Path,
    max_bytes: int,
    file_bytes: int,
    base_fd: int,
    handles: dict[str, int],
) -> list[str]:
    used: set[str] = set()
    total = file_bytes
    for tensor in _all_tensors(model):
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        where = f"{path}: tensor {tensor.name!r} external data"
        info = {e.key: e.value for e in tensor.external_data}
        location = info.get("location", "")
        rel = Path(location)
        if not rel.parts or rel.is_absolute() or ".." in rel.parts or "\0" in location:
            raise ModelError(
                f"{where} location must be a relative path inside the model's directory, "
                f"not {location!r}"
            )
        key = rel.as_posix()
        if key not in handles:
            handles[key] = _open_external(base_fd, rel, location, where)
        fd = handles[key]
        count = check_dims(list(tensor.dims), where, allow_empty=True)
        need = tensor_nbytes(tensor, count)
        if need is None:
            raise ModelError(f"{where}: external data of this element type is not supported")
        offset = _int_field(info.get("offset", "0"), "offset", where)
        length = _int_field(info.get("length", str(need)), "length", where)
        if length != need:
            raise ModelError(
                f"{where} length must be {need} bytes (shape {list(tensor.dims)}), not {length}"
            )
        size = os.fstat(fd).st_size
        if offset + length > size:
            raise ModelError(
                f"{where} {location!r} must hold {length} bytes at offset {offset}, "
                f"but the file has {size}"
            )
        total += length
        if total > max_bytes:
            raise ModelError(
                f"{path}: the model file and its external data must be at most {max_bytes} "
                f"bytes in all, not {total} or more"
            )
        try:
            raw = os.pread(fd, length, offset) if length else b""
        except OSError as e:
            raise ModelError(f"{where} {location!r} is unreadable: {e.strerror}") from None
        if len(raw) != length:
            raise ModelError(f"{where} {location!r} ended early")
        del tensor.external_data[:]
        tensor.data_location = onnx.TensorProto.DEFAULT
        tensor.raw_data = raw
        used.add(key)
    return sorted(used)


def _int_field(text: str, key: str, where: str) -> int:
    try:
        v = int(text)
    except ValueError:
        v = -1
    if v < 0:
        raise ModelError(f"{where} {key} must be a non-negative integer, not {text!r}")
    return v


def _all_tensors(model: onnx.ModelProto) -> Iterator[onnx.TensorProto]:
    """Every TensorProto of the model: initializers and node attributes, subgraphs included."""
    yield from _graph_tensors(model.graph)


def _graph_tensors(g: onnx.GraphProto) -> Iterator[onnx.TensorProto]:
    yield from g.initializer
    for sp in g.sparse_initializer:
        yield sp.values
        yield sp.indices
    for node in g.node:
        for a in node.attribute:
            if a.HasField("t"):
                yield a.t
            yield from a.tensors
            if a.HasField("g"):
                yield from _graph_tensors(a.g)
            for sub in a.graphs:
                yield from _graph_tensors(sub)


def _short(e: BaseException) -> str:
    """One line of at most 300 characters; onnx's element type numbers spelled as names."""
    text = " ".join(str(e).split())
    text = re.sub(
        r"elem type: \((\d+)\) vs \((\d+)\)",
        lambda m: f"elem type: {type_name(int(m[1]))} vs {type_name(int(m[2]))}",
        text,
    )
    return text[:300] + ("..." if len(text) > 300 else "")
