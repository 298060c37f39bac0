"""Small, deterministic ONNX models built in code, for the tests, the demo and the benchmarks.

Every builder writes one ``.onnx`` file and returns its path. ``path`` may name the file to write
or an existing directory (the file is then ``<dir>/model.onnx``); parent directories are created
and the file is replaced atomically, so a failed build never leaves half a model behind. The same
arguments (and seed) give byte-identical files on one machine and onnxruntime build.

Conventions shared by the builders:

- hand-built graphs use opset 21 (default domain only) and IR version 10 (the lowest that carries
  opset 21; onnxruntime 1.32 accepts it);
- the graph input is ``"input"`` and the graph output ``"output"`` (TopK adds ``"indices"``);
- all dimensions are fixed, except in :func:`dynamic_dim_model`;
- weights, calibration data and :func:`random_inputs` draw from separate random streams of the
  same seed, so a model's inputs are never correlated with its weights.

The float MLP graph (used by :func:`float_mlp`, :func:`float_mlp_reshape`, :func:`qdq_mlp`,
:func:`dynamic_mlp`, :func:`ffn_block` and :func:`dynamic_dim_model`) is built in one place,
:func:`_mlp_model`. Layer ``i`` maps ``dims[i] -> dims[i + 1]`` with He-initialised weights
``fc{i}.weight`` and bias ``fc{i}.bias``; Relu sits between layers, never after the last one.

This module writes ONNX files, so it imports ``onnx`` (and ``onnxruntime.quantization``, lazily,
in the quantizing builders); it is test, demo and benchmark tooling, outside the compile path.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from codesign.errors import ModelError, OptionError
from codesign.fileio import atomic_write

__all__ = [
    "INPUT_NAME",
    "IR_VERSION",
    "OPSET",
    "OUTPUT_NAME",
    "UNSUPPORTED_NODE_NAME",
    "UNSUPPORTED_OP_TYPE",
    "dynamic_dim_model",
    "dynamic_mlp",
    "ffn_block",
    "float_mlp",
    "float_mlp_reshape",
    "nbits_mlp",
    "not_onnx_file",
    "qdq_gemm",
    "qdq_mlp",
    "qlinear_matmul",
    "random_inputs",
    "save_inputs",
    "truncated_model",
    "unsupported_op_model",
]

OPSET = 21
IR_VERSION = 10
INPUT_NAME = "input"
OUTPUT_NAME = "output"
UNSUPPORTED_OP_TYPE = "TopK"
UNSUPPORTED_NODE_NAME = "topk0"

PathLike = str | os.PathLike[str]
IntDType = Literal["int8", "uint8"]
#: Element types onnxruntime's quantizer writes (its QuantType QInt8/QUInt8/QInt16/QUInt16).
QuantDType = Literal["int8", "uint8", "int16", "uint16"]
_QUANT_DTYPES = ("int8", "uint8", "int16", "uint16")

# Independent random streams of one seed: np.random.default_rng([seed, stream]).
_STREAM_WEIGHTS = 1
_STREAM_CALIBRATION = 2
_STREAM_INPUTS = 3

_CALIBRATION_BATCHES = 8
_PRODUCER = "codesign.examples"


# --------------------------------------------------------------------------------------------
# small helpers


def _rng(seed: int, stream: int) -> np.random.Generator:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise OptionError(f"seed must be a non-negative integer, not {seed!r}")
    return np.random.default_rng([int(seed), stream])


def _resolve_path(path: PathLike, default_name: str = "model.onnx") -> Path:
    out = Path(path)
    if out.is_dir():
        out = out / default_name
    out.parent.mkdir(parents=True, exist_ok=True)
    return out


def _atomic_write(dst: Path, data: bytes) -> Path:
    """Write ``data`` to ``dst`` atomically (see :func:`codesign.fileio.atomic_write`)."""
    return atomic_write(dst, data)


def _make_model(graph: onnx.GraphProto) -> onnx.ModelProto:
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        ir_version=IR_VERSION,
        producer_name=_PRODUCER,
    )
    onnx.checker.check_model(model, full_check=True)
    return model


def _save(model: onnx.ModelProto, path: PathLike) -> Path:
    return _atomic_write(_resolve_path(path), model.SerializeToString(deterministic=True))


def _check_dims(dims: Sequence[int], what: str = "dims") -> tuple[int, ...]:
    out = tuple(dims)
    if len(out) < 2 or not all(isinstance(d, int | np.integer) and d > 0 for d in out):
        raise OptionError(f"{what} must be at least two positive integers, not {dims!r}")
    return tuple(int(d) for d in out)


def _check_positive(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value <= 0:
        raise OptionError(f"{name} must be a positive integer, not {value!r}")
    return int(value)


def _np_dtype(name: str, allowed: Sequence[str], what: str) -> np.dtype:
    if name not in allowed:
        raise OptionError(f"{what} must be one of {', '.join(allowed)}, not {name!r}")
    return np.dtype(name)


def _scalar(value: float | int, dtype: np.dtype | type, name: str) -> TensorProto:
    return numpy_helper.from_array(np.array(value, dtype=dtype), name)


# --------------------------------------------------------------------------------------------
# the shared float MLP graph


def _mlp_model(
    dims: Sequence[int],
    lead: Sequence[int | str],
    seed: int,
    *,
    use_gemm: bool = False,
    input_shape: Sequence[int] | None = None,
    input_op: Literal["Reshape", "Flatten"] = "Reshape",
    residual: bool = False,
    name: str = "mlp",
) -> onnx.ModelProto:
    """Build the float32 MLP graph every MLP-shaped builder starts from.

    ``lead`` are the leading (batch/sequence) dimensions of input and output; a string is a
    symbolic dimension. Without ``input_shape`` the input is ``[*lead, dims[0]]``; with it the
    input is ``[*lead, *input_shape]`` and an ``input_op`` node ("Reshape" to the constant int64
    shape ``[*lead, dims[0]]``, or "Flatten" with axis=1 for one leading dimension) flattens it. Each layer is
    ``MatMul + Add(bias)`` or, with ``use_gemm``, ``Gemm(transB=1)`` with the weight stored as
    ``[N, K]`` as torch.onnx exports ``nn.Linear``; the float weights are the same numbers either
    way. ``residual`` adds the first layer's input to the last layer's output (``dims[0]`` must
    equal ``dims[-1]``).
    """
    dims = _check_dims(dims)
    lead = list(lead)
    if use_gemm and len(lead) != 1:
        raise OptionError(f"leading dimensions must be one for Gemm, not {len(lead)}")
    if residual and dims[0] != dims[-1]:
        raise OptionError(f"dims[-1] must be dims[0] for a residual, not {dims[0]} -> {dims[-1]}")
    rng = _rng(seed, _STREAM_WEIGHTS)

    nodes: list[onnx.NodeProto] = []
    inits: list[TensorProto] = []
    x = INPUT_NAME
    if input_shape is None:
        in_shape = [*lead, dims[0]]
    else:
        in_shape = [*lead, *input_shape]
        if int(np.prod(input_shape)) != dims[0]:
            raise OptionError(
                f"input_shape must be a shape of dims[0] = {dims[0]} elements, "
                f"not {tuple(input_shape)}"
            )
        if input_op == "Reshape":
            if any(isinstance(d, str) for d in lead):
                raise OptionError(f"leading dimensions must be fixed for Reshape, not {lead}")
            inits.append(numpy_helper.from_array(np.array([*lead, dims[0]], np.int64), "shape"))
            nodes.append(helper.make_node("Reshape", [x, "shape"], ["flat"], name="reshape"))
        elif input_op == "Flatten":
            if len(lead) != 1:
                raise OptionError(f"leading dimensions must be one for Flatten, not {lead}")
            nodes.append(helper.make_node("Flatten", [x], ["flat"], name="flatten", axis=1))
        else:
            raise OptionError(f"input_op must be 'Reshape' or 'Flatten', not {input_op!r}")
        x = "flat"
    first = x

    n_layers = len(dims) - 1
    for i, (k, n) in enumerate(zip(dims[:-1], dims[1:], strict=True)):
        w = (rng.standard_normal((k, n)) * np.sqrt(2.0 / k)).astype(np.float32)
        b = (0.1 * rng.standard_normal(n)).astype(np.float32)
        last = i == n_layers - 1
        y = OUTPUT_NAME if last and not residual else f"fc{i}_y"
        if use_gemm:
            inits.append(numpy_helper.from_array(np.ascontiguousarray(w.T), f"fc{i}.weight"))
            inits.append(numpy_helper.from_array(b, f"fc{i}.bias"))
            nodes.append(
                helper.make_node(
                    "Gemm", [x, f"fc{i}.weight", f"fc{i}.bias"], [y], name=f"fc{i}_gemm", transB=1
                )
            )
        else:
            inits.append(numpy_helper.from_array(w, f"fc{i}.weight"))
            inits.append(numpy_helper.from_array(b, f"fc{i}.bias"))
            nodes.append(
                helper.make_node(
                    "MatMul", [x, f"fc{i}.weight"], [f"fc{i}_mm"], name=f"fc{i}_matmul"
                )
            )
            nodes.append(
                helper.make_node("Add", [f"fc{i}_mm", f"fc{i}.bias"], [y], name=f"fc{i}_bias_add")
            )
        if not last:
            nodes.append(helper.make_node("Relu", [y], [f"fc{i}_relu"], name=f"fc{i}_relu"))
            x = f"fc{i}_relu"
        else:
            x = y
    if residual:
        nodes.append(helper.make_node("Add", [x, first], [OUTPUT_NAME], name="residual_add"))

    graph = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, in_shape)],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, [*lead, dims[-1]])],
        inits,
    )
    return _make_model(graph)


class _CalibrationReader:
    """A deterministic onnxruntime CalibrationDataReader: N(0, 1) batches from the seed."""

    def __init__(self, model: onnx.ModelProto, seed: int, batches: int) -> None:
        (inp,) = model.graph.input
        shape = [d.dim_value for d in inp.type.tensor_type.shape.dim]
        rng = _rng(seed, _STREAM_CALIBRATION)
        self._feeds = [
            {inp.name: rng.standard_normal(shape).astype(np.float32)} for _ in range(batches)
        ]
        self._it: Iterator[dict[str, np.ndarray]] = iter(self._feeds)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._it, None)

    def rewind(self) -> None:
        self._it = iter(self._feeds)

    def __iter__(self) -> _CalibrationReader:
        return self

    def __next__(self) -> dict[str, np.ndarray]:
        feed = self.get_next()
        if feed is None:
            raise StopIteration
        return feed


class _DropPreprocessAdvice(logging.Filter):
    """Drops onnxruntime's "consider pre-processing" warning: the graphs here are fully shaped."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing before quantization" not in record.getMessage()


def _ort_quantize(
    model: onnx.ModelProto,
    path: PathLike,
    *,
    static: bool,
    seed: int = 0,
    per_channel: bool = False,
    activation_type: str = "int8",
    reduce_range: bool = False,
    weight_type: str = "int8",
    quant_format: str = "QDQ",
    extra_options: Mapping[str, object] | None = None,
) -> Path:
    """Quantize ``model`` with onnxruntime (static or dynamic) and write it to ``path``.

    ``activation_type``/``weight_type`` name onnxruntime's QuantType (int8, uint8, int16,
    uint16), ``quant_format`` its QuantFormat (QDQ or QOperator, static only) and
    ``extra_options`` are passed through (e.g. ActivationSymmetric, WeightSymmetric).
    """
    from onnxruntime.quantization import (
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )

    types = {
        "int8": QuantType.QInt8,
        "uint8": QuantType.QUInt8,
        "int16": QuantType.QInt16,
        "uint16": QuantType.QUInt16,
    }
    for what, value in (("activation_type", activation_type), ("weight_type", weight_type)):
        if value not in types:
            raise OptionError(f"{what} must be one of {', '.join(types)}, not {value!r}")
    formats = {"QDQ": QuantFormat.QDQ, "QOperator": QuantFormat.QOperator}
    if quant_format not in formats:
        raise OptionError(f"quant_format must be QDQ or QOperator, not {quant_format!r}")
    extra = dict(extra_options or {})

    out = _resolve_path(path)
    advice_filter = _DropPreprocessAdvice()
    logging.getLogger().addFilter(advice_filter)
    try:
        with tempfile.TemporaryDirectory(prefix="codesign-quant-") as tmp:
            tmp_out = Path(tmp) / "quantized.onnx"
            if static:
                quantize_static(
                    model,
                    tmp_out,
                    _CalibrationReader(model, seed, _CALIBRATION_BATCHES),
                    quant_format=formats[quant_format],
                    per_channel=per_channel,
                    reduce_range=reduce_range,
                    activation_type=types[activation_type],
                    weight_type=types[weight_type],
                    extra_options=extra,
                )
            else:
                quantize_dynamic(
                    model,
                    tmp_out,
                    per_channel=per_channel,
                    reduce_range=reduce_range,
                    weight_type=types[weight_type],
                    extra_options=extra,
                )
            data = tmp_out.read_bytes()
    finally:
        logging.getLogger().removeFilter(advice_filter)
    onnx.checker.check_model(onnx.load_from_string(data), full_check=True)
    return _atomic_write(out, data)


# --------------------------------------------------------------------------------------------
# builders


def float_mlp(
    path: PathLike,
    dims: Sequence[int] = (16, 32, 8),
    batch: int = 4,
    seed: int = 0,
    use_gemm: bool = False,
) -> Path:
    """Write a float32 MLP and return its path.

    Graph (``use_gemm=False``), per layer ``i``: ``MatMul(x, fc{i}.weight[K, N]) -> Add(fc{i}.bias)``
    then ``Relu`` except after the last layer. With ``use_gemm=True`` each layer is one
    ``Gemm(x, fc{i}.weight[N, K], fc{i}.bias, transB=1)``; both variants compute the same function
    for the same seed. Input ``"input"`` is ``[batch, dims[0]]`` float32, output ``"output"``
    ``[batch, dims[-1]]`` float32.
    """
    batch = _check_positive(batch, "batch")
    return _save(_mlp_model(dims, [batch], seed, use_gemm=use_gemm, name="float_mlp"), path)


def float_mlp_reshape(
    path: PathLike,
    dims: Sequence[int] = (16, 32, 8),
    batch: int = 4,
    seed: int = 0,
    input_shape: Sequence[int] = (4, 4),
    input_op: Literal["Reshape", "Flatten"] = "Reshape",
) -> Path:
    """Write :func:`float_mlp` behind a ``Reshape`` (or ``Flatten``) of the input; return the path.

    Input ``"input"`` is ``[batch, *input_shape]`` (the product of ``input_shape`` must be
    ``dims[0]``). ``input_op="Reshape"`` reshapes to the constant int64 initializer
    ``shape = [batch, dims[0]]``; ``"Flatten"`` uses ``axis=1``. The rest (and the weights, for
    the same seed) equals ``float_mlp(..., use_gemm=False)``.
    """
    batch = _check_positive(batch, "batch")
    model = _mlp_model(
        dims,
        [batch],
        seed,
        input_shape=tuple(input_shape),
        input_op=input_op,
        name="float_mlp_reshape",
    )
    return _save(model, path)


def qdq_mlp(
    path: PathLike,
    dims: Sequence[int] = (16, 32, 8),
    batch: int = 4,
    per_channel: bool = False,
    seed: int = 0,
    activation_type: QuantDType = "int8",
    use_gemm: bool = False,
    reduce_range: bool = False,
    weight_type: QuantDType = "int8",
    quant_format: Literal["QDQ", "QOperator"] = "QDQ",
    extra_options: Mapping[str, object] | None = None,
) -> Path:
    """Write :func:`float_mlp` quantized by onnxruntime ``quantize_static`` (QDQ by default).

    ``weight_type``, ``quant_format`` and ``extra_options`` (e.g. ``{"ActivationSymmetric":
    True, "WeightSymmetric": False}``) are onnxruntime's options of the same names.

    Calibration: MinMax over 8 batches of N(0, 1) inputs drawn from ``seed``. Weights are int8
    (symmetric, per output channel when ``per_channel``; 7-bit [-64, 64] with ``reduce_range``),
    activations ``activation_type``. ``use_gemm`` quantizes the Gemm form of :func:`float_mlp`.
    onnxruntime chooses the exact node sequence (see the module's tests for what it emits);
    the graph input/output names and shapes are those of the float model.
    """
    _np_dtype(activation_type, _QUANT_DTYPES, "activation_type")
    _np_dtype(weight_type, _QUANT_DTYPES, "weight_type")
    batch = _check_positive(batch, "batch")
    model = _mlp_model(dims, [batch], seed, use_gemm=use_gemm, name="qdq_mlp")
    return _ort_quantize(
        model,
        path,
        static=True,
        seed=seed,
        per_channel=per_channel,
        activation_type=activation_type,
        reduce_range=reduce_range,
        weight_type=weight_type,
        quant_format=quant_format,
        extra_options=extra_options,
    )


def dynamic_mlp(
    path: PathLike,
    dims: Sequence[int] = (16, 32, 8),
    batch: int = 4,
    seed: int = 0,
    per_channel: bool = False,
    reduce_range: bool = False,
    weight_type: IntDType = "int8",
    use_gemm: bool = False,
    extra_options: Mapping[str, object] | None = None,
) -> Path:
    """Write :func:`float_mlp` (MatMul form) quantized by onnxruntime ``quantize_dynamic``.

    ``weight_type`` (int8 or uint8), ``use_gemm`` (the Gemm form) and ``extra_options`` are
    onnxruntime's options.

    Weights become int8 initializers (per output channel when ``per_channel``, 7-bit with
    ``reduce_range``); activations are
    quantized at run time by ``DynamicQuantizeLinear`` (uint8) feeding ``MatMulInteger``, whose
    int32 result is cast to float and scaled by ``Mul``. Bias Add and Relu stay float.
    """
    batch = _check_positive(batch, "batch")
    _np_dtype(weight_type, ("int8", "uint8"), "weight_type")
    model = _mlp_model(dims, [batch], seed, use_gemm=use_gemm, name="dynamic_mlp")
    return _ort_quantize(
        model,
        path,
        static=False,
        per_channel=per_channel,
        reduce_range=reduce_range,
        weight_type=weight_type,
        extra_options=extra_options,
    )


def qlinear_matmul(
    path: PathLike,
    M: int,
    K: int,
    N: int,
    seed: int = 0,
    dtype: IntDType = "uint8",
    reduce_range: bool | None = None,
) -> Path:
    """Write one ``QLinearMatMul`` (QOperator format) and return the path.

    Input ``"input"`` is ``[M, K]`` of ``dtype``; the weight ``"weight"`` is an int8 ``[K, N]``
    initializer, uniform over [-127, 127], or over [-64, 64] with ``reduce_range``, with zero
    point 0; output ``"output"`` is ``[M, N]`` of ``dtype``. ``reduce_range`` defaults to True for
    uint8 inputs: onnxruntime's x86 u8 x s8 kernel without VNNI adds pairs of products in
    saturating int16 (255 * 127 * 2 overflows it), so only 7-bit weights give the exact
    ONNX arithmetic on every CPU; int8 x int8 is exact at full range. Zero points are
    deliberately not 0 (uint8: input 131, output 125; int8: input 3, output -5). The output
    scale is chosen for inputs uniform over the dtype range (what :func:`random_inputs` gives):
    the accumulator's standard deviation maps to 32 output steps, so outputs spread over the
    range and only the far tails saturate.
    """
    M, K, N = (_check_positive(v, n) for v, n in ((M, "M"), (K, "K"), (N, "N")))
    dt = _np_dtype(dtype, ("uint8", "int8"), "dtype")
    if reduce_range is None:
        reduce_range = dtype == "uint8"
    rng = _rng(seed, _STREAM_WEIGHTS)
    a_zp, y_zp = (131, 125) if dtype == "uint8" else (3, -5)
    a_scale, b_scale = 1.0 / 64.0, 1.0 / 128.0
    w_max = 64 if reduce_range else 127
    w = rng.integers(-w_max, w_max, size=(K, N), endpoint=True, dtype=np.int8)
    # (a - a_zp) is about uniform over 256 values, w uniform over 2 * w_max + 1 values; the
    # variance of a discrete uniform over n values is (n**2 - 1) / 12.
    acc_std = np.sqrt(K * (256.0**2 - 1) / 12.0 * ((2 * w_max + 1) ** 2 - 1) / 12.0)
    y_scale = np.float32(a_scale * b_scale * acc_std / 32.0)
    inits = [
        _scalar(a_scale, np.float32, "input_scale"),
        _scalar(a_zp, dt, "input_zero_point"),
        numpy_helper.from_array(w, "weight"),
        _scalar(b_scale, np.float32, "weight_scale"),
        _scalar(0, np.int8, "weight_zero_point"),
        _scalar(y_scale, np.float32, "output_scale"),
        _scalar(y_zp, dt, "output_zero_point"),
    ]
    node = helper.make_node(
        "QLinearMatMul",
        [
            INPUT_NAME,
            "input_scale",
            "input_zero_point",
            "weight",
            "weight_scale",
            "weight_zero_point",
            "output_scale",
            "output_zero_point",
        ],
        [OUTPUT_NAME],
        name="qlinear_matmul",
    )
    elem = helper.np_dtype_to_tensor_dtype(dt)
    graph = helper.make_graph(
        [node],
        "qlinear_matmul",
        [helper.make_tensor_value_info(INPUT_NAME, elem, [M, K])],
        [helper.make_tensor_value_info(OUTPUT_NAME, elem, [M, N])],
        inits,
    )
    return _save(_make_model(graph), path)


def qdq_gemm(
    path: PathLike,
    M: int,
    K: int,
    N: int,
    dtype: Literal["int8", "int16"] = "int8",
    seed: int = 0,
    per_channel: bool = False,
    weight_dtype: Literal["int8", "int16"] | None = None,
) -> Path:
    """Write a hand-built QDQ single GEMM and return the path (no calibration; fast at 1024^3).

    Graph::

        input[M,K] f32 -> QuantizeLinear(dtype) -> DequantizeLinear -+
        weight_quantized[K,N] (weight_dtype) -> DequantizeLinear ------+-> MatMul
          -> QuantizeLinear(dtype) -> DequantizeLinear -> output[M,N] f32

    All zero points are 0 (symmetric). The float weights are N(0, 1/K), quantized with
    scale ``max|W| / qmax`` per tensor, or per output column (``axis=1``, scale/zero point of
    shape ``[N]``) when ``per_channel``. The input scale is ``4 / qmax`` (N(0, 1) inputs clip at
    4 sigma); the output scale is ``4 * max_n ||W_q[:, n] * w_scale[n]||_2 / qmax``, 4 sigma of the
    widest output column for N(0, 1) inputs. ``weight_dtype`` defaults to ``dtype``; int16
    quantized tensors need the opset-21 Q/DQ this model uses.
    """
    M, K, N = (_check_positive(v, n) for v, n in ((M, "M"), (K, "K"), (N, "N")))
    act_dt = _np_dtype(dtype, ("int8", "int16"), "dtype")
    w_dt = _np_dtype(weight_dtype or dtype, ("int8", "int16"), "weight_dtype")
    act_qmax = float(np.iinfo(act_dt).max)
    w_qmax = float(np.iinfo(w_dt).max)
    rng = _rng(seed, _STREAM_WEIGHTS)
    w = rng.standard_normal((K, N), dtype=np.float32) / np.float32(np.sqrt(K))
    absmax = np.abs(w).max(axis=0) if per_channel else np.abs(w).max()
    w_scale = (np.maximum(absmax, np.float32(1e-12)) / np.float32(w_qmax)).astype(np.float32)
    w_q = np.clip(np.rint(w / w_scale), -w_qmax, w_qmax).astype(w_dt)
    col_norm = np.sqrt(np.square(w_q.astype(np.float64)).sum(axis=0)) * w_scale.astype(np.float64)
    x_scale = np.float32(4.0 / act_qmax)
    y_scale = np.float32(4.0 * max(float(col_norm.max()), 1e-12) / act_qmax)

    w_zp = np.zeros(N, w_dt) if per_channel else np.array(0, w_dt)
    inits = [
        _scalar(x_scale, np.float32, "input_scale"),
        _scalar(0, act_dt, "input_zero_point"),
        numpy_helper.from_array(w_q, "weight_quantized"),
        numpy_helper.from_array(np.asarray(w_scale, np.float32), "weight_scale"),
        numpy_helper.from_array(w_zp, "weight_zero_point"),
        _scalar(y_scale, np.float32, "output_scale"),
        _scalar(0, act_dt, "output_zero_point"),
    ]
    dq_w_attrs = {"axis": 1} if per_channel else {}
    nodes = [
        helper.make_node(
            "QuantizeLinear",
            [INPUT_NAME, "input_scale", "input_zero_point"],
            ["input_q"],
            name="input_quantize",
        ),
        helper.make_node(
            "DequantizeLinear",
            ["input_q", "input_scale", "input_zero_point"],
            ["input_dq"],
            name="input_dequantize",
        ),
        helper.make_node(
            "DequantizeLinear",
            ["weight_quantized", "weight_scale", "weight_zero_point"],
            ["weight_dq"],
            name="weight_dequantize",
            **dq_w_attrs,
        ),
        helper.make_node("MatMul", ["input_dq", "weight_dq"], ["matmul_out"], name="matmul"),
        helper.make_node(
            "QuantizeLinear",
            ["matmul_out", "output_scale", "output_zero_point"],
            ["output_q"],
            name="output_quantize",
        ),
        helper.make_node(
            "DequantizeLinear",
            ["output_q", "output_scale", "output_zero_point"],
            [OUTPUT_NAME],
            name="output_dequantize",
        ),
    ]
    graph = helper.make_graph(
        nodes,
        "qdq_gemm",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, [M, K])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, [M, N])],
        inits,
    )
    return _save(_make_model(graph), path)


def ffn_block(
    path: PathLike,
    d_model: int = 64,
    d_ff: int = 256,
    seq: int = 16,
    seed: int = 0,
    quantize: bool = True,
    batch: int | None = None,
    activation_type: IntDType = "int8",
    reduce_range: bool = False,
) -> Path:
    """Write a transformer-style feed-forward block with a residual; the bundled demo model.

    Float graph: ``x -> MatMul(fc0.weight[d_model, d_ff]) -> Add(fc0.bias) -> Relu
    -> MatMul(fc1.weight[d_ff, d_model]) -> Add(fc1.bias) -> Add(x)`` (node ``residual_add``).
    Input ``"input"`` and output ``"output"`` are float32 ``[seq, d_model]``, or
    ``[batch, seq, d_model]`` when ``batch`` is given. With ``quantize`` (the default) the block
    goes through onnxruntime ``quantize_static`` (QDQ, per-channel int8 weights,
    ``activation_type`` activations, 8 calibration batches from ``seed``; ``reduce_range`` as in
    :func:`qdq_mlp`).
    """
    d_model = _check_positive(d_model, "d_model")
    d_ff = _check_positive(d_ff, "d_ff")
    lead = [_check_positive(seq, "seq")]
    if batch is not None:
        lead.insert(0, _check_positive(batch, "batch"))
    model = _mlp_model((d_model, d_ff, d_model), lead, seed, residual=True, name="ffn_block")
    if not quantize:
        return _save(model, path)
    _np_dtype(activation_type, ("int8", "uint8"), "activation_type")
    return _ort_quantize(
        model,
        path,
        static=True,
        seed=seed,
        per_channel=True,
        activation_type=activation_type,
        reduce_range=reduce_range,
    )


def nbits_mlp(
    path: PathLike,
    dims: Sequence[int] = (64, 256, 64),
    lead: Sequence[int] = (1, 16),
    seed: int = 0,
    block_size: int = 32,
    symmetric: bool = False,
    accuracy_level: int | None = 4,
) -> Path:
    """Write :func:`float_mlp`'s MatMul form (inputs ``[*lead, dims[0]]``) with every MatMul
    weight quantized by onnxruntime's ``MatMulNBitsQuantizer`` to com.microsoft MatMulNBits
    (4 bits, ``block_size``, zero points unless ``symmetric``; ``accuracy_level`` None writes
    no attribute, onnxruntime's default 0)."""
    import copy

    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    model = _mlp_model(dims, list(lead), seed, name="nbits_mlp")
    advice_filter = _DropPreprocessAdvice()
    logging.getLogger().addFilter(advice_filter)
    try:
        # the quantizer edits the model it is given: hand it a copy
        q = MatMulNBitsQuantizer(
            copy.deepcopy(model),
            block_size=block_size,
            is_symmetric=symmetric,
            accuracy_level=accuracy_level,
        )
        q.process()
    finally:
        logging.getLogger().removeFilter(advice_filter)
    return _save(q.model.model, path)


def movement_block(path: PathLike, seq: int = 8, d_model: int = 16, seed: int = 0) -> Path:
    """Write a float block of data-movement ops around a fused QKV projection; return its path.

    ``x[1, seq, d_model] -> MatMul(qkv.weight[d_model, 3 d_model]) -> Split (q, k, v) ->
    Concat(q + k, v) -> Slice (every other token) -> Gather (tokens 0 and 1, BERT's pooler
    form) -> Expand to a batch of 2``. Input ``"input"`` float32, output ``"output"`` float32
    ``[2, 2, 2 d_model]`` (``seq`` must be at least 4).
    """
    seq, d = _check_positive(seq, "seq"), _check_positive(d_model, "d_model")
    if seq < 4:
        raise OptionError(f"seq must be at least 4, not {seq}")
    rng = _rng(seed, _STREAM_WEIGHTS)
    w = (rng.standard_normal((d, 3 * d)) / np.sqrt(d)).astype(np.float32)
    inits = [
        numpy_helper.from_array(w, "qkv.weight"),
        numpy_helper.from_array(np.asarray([0], np.int64), "starts"),
        numpy_helper.from_array(np.asarray([seq], np.int64), "ends"),
        numpy_helper.from_array(np.asarray([1], np.int64), "axes"),
        numpy_helper.from_array(np.asarray([2], np.int64), "steps"),
        numpy_helper.from_array(np.asarray([0, 1], np.int64), "tokens"),
        numpy_helper.from_array(np.asarray([2, 1, 1], np.int64), "batch"),
    ]
    nodes = [
        helper.make_node("MatMul", ["input", "qkv.weight"], ["qkv"], name="qkv"),
        helper.make_node("Split", ["qkv"], ["q", "k", "v"], axis=-1, num_outputs=3, name="split"),
        helper.make_node("Add", ["q", "k"], ["qk"], name="add"),
        helper.make_node("Concat", ["qk", "v"], ["cat"], axis=-1, name="concat"),
        helper.make_node("Slice", ["cat", "starts", "ends", "axes", "steps"], ["sl"], name="slice"),
        helper.make_node("Gather", ["sl", "tokens"], ["g"], axis=1, name="gather"),
        helper.make_node("Expand", ["g", "batch"], ["output"], name="expand"),
    ]
    graph = helper.make_graph(
        nodes,
        "movement_block",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, seq, d])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [2, 2, 2 * d])],
        inits,
    )
    return _save(_make_model(graph), path)


# --------------------------------------------------------------------------------------------
# inputs


def random_inputs(
    model_path: PathLike,
    seed: int = 0,
    dim_values: Mapping[str, int] | None = None,
) -> dict[str, np.ndarray]:
    """Return random inputs for the model at ``model_path``, keyed by graph input name.

    Inputs come in graph order (initializers listed as inputs are skipped) with the declared
    shape and element type: float tensors are N(0, 1), integer tensors uniform over the whole
    dtype range, bool tensors uniform. A symbolic dimension takes its value from
    ``dim_values[name]`` and is 1 when not given there; an unnamed unknown dimension is 1.
    Raises :class:`~codesign.errors.ModelError` for element types numpy cannot hold.
    """
    model = onnx.load(os.fspath(model_path), load_external_data=False)
    dim_values = dict(dim_values or {})
    rng = _rng(seed, _STREAM_INPUTS)
    initializers = {t.name for t in model.graph.initializer}
    feeds: dict[str, np.ndarray] = {}
    for inp in model.graph.input:
        if inp.name in initializers:
            continue
        ttype = inp.type.tensor_type
        if not inp.type.HasField("tensor_type"):
            raise ModelError(f"input {inp.name!r} of {model_path} must be a tensor")
        shape = []
        for d in ttype.shape.dim:
            if d.HasField("dim_value"):
                shape.append(d.dim_value)
            else:
                shape.append(int(dim_values.get(d.dim_param, 1)))
        try:
            dt = np.dtype(helper.tensor_dtype_to_np_dtype(ttype.elem_type))
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(
                f"input {inp.name!r} of {model_path} must be a float, integer or bool tensor, "
                f"not {TensorProto.DataType.Name(ttype.elem_type)}"
            ) from exc
        if dt == np.bool_:
            feeds[inp.name] = rng.integers(0, 2, size=shape).astype(np.bool_)
        elif np.issubdtype(dt, np.integer):
            info = np.iinfo(dt)
            feeds[inp.name] = rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dt)
        elif np.issubdtype(dt, np.floating) and dt.itemsize in (2, 4, 8):
            feeds[inp.name] = rng.standard_normal(shape).astype(dt)
        else:
            raise ModelError(
                f"input {inp.name!r} of {model_path} must be a float, integer or bool tensor, "
                f"not {TensorProto.DataType.Name(ttype.elem_type)}"
            )
    return feeds


def save_inputs(
    model_path: PathLike,
    npz_path: PathLike,
    seed: int = 0,
    dim_values: Mapping[str, int] | None = None,
) -> Path:
    """Write :func:`random_inputs` of the model to an ``.npz`` (keys = input names); return it."""
    feeds = random_inputs(model_path, seed, dim_values)
    out = _resolve_path(npz_path, "inputs.npz")
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".npz")
    os.close(fd)
    try:
        np.savez(tmp, **feeds)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out


# --------------------------------------------------------------------------------------------
# bad inputs for error tests


def unsupported_op_model(path: PathLike, seed: int = 0) -> Path:
    """Write a valid model with an op codesign never lowers onto the AIE; return the path.

    Graph: ``input[4, 16] f32 -> MatMul(weight[16, 8]) (node "matmul") -> TopK(k=3, axis=-1)``
    with the TopK node named :data:`UNSUPPORTED_NODE_NAME` (``"topk0"``); outputs ``"output"``
    (float32 ``[4, 3]``) and ``"indices"`` (int64 ``[4, 3]``).
    """
    rng = _rng(seed, _STREAM_WEIGHTS)
    w = (rng.standard_normal((16, 8)) / 4.0).astype(np.float32)
    nodes = [
        helper.make_node("MatMul", [INPUT_NAME, "weight"], ["scores"], name="matmul"),
        helper.make_node(
            UNSUPPORTED_OP_TYPE,
            ["scores", "k"],
            [OUTPUT_NAME, "indices"],
            name=UNSUPPORTED_NODE_NAME,
            axis=-1,
        ),
    ]
    graph = helper.make_graph(
        nodes,
        "unsupported_op",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, [4, 16])],
        [
            helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, [4, 3]),
            helper.make_tensor_value_info("indices", TensorProto.INT64, [4, 3]),
        ],
        [numpy_helper.from_array(w, "weight"), numpy_helper.from_array(np.array([3]), "k")],
    )
    return _save(_make_model(graph), path)


def dynamic_dim_model(
    path: PathLike, dims: Sequence[int] = (16, 32, 8), seed: int = 0, dim_param: str = "batch"
) -> Path:
    """Write :func:`float_mlp` (MatMul form) whose batch dimension is the symbol ``dim_param``.

    Input ``"input"`` is ``[dim_param, dims[0]]``, output ``"output"`` ``[dim_param, dims[-1]]``.
    """
    if not isinstance(dim_param, str) or not dim_param.isidentifier():
        raise OptionError(f"dim_param must be an identifier, not {dim_param!r}")
    return _save(_mlp_model(dims, [dim_param], seed, name="dynamic_dim_mlp"), path)


def truncated_model(src: PathLike, dst: PathLike) -> Path:
    """Write the first half of the bytes of the model file ``src`` to ``dst``; return ``dst``.

    The cut falls inside the serialized graph, so ``onnx.load`` fails on the result.
    """
    data = Path(src).read_bytes()
    return _atomic_write(_resolve_path(dst), data[: len(data) // 2])


def not_onnx_file(path: PathLike) -> Path:
    """Write a short text file (not a protobuf) at ``path`` and return the path."""
    text = "This is a text file, not an ONNX model.\n"
    return _atomic_write(_resolve_path(path), text.encode("ascii"))
