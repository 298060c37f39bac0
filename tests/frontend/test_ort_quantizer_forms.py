"""Every form onnxruntime's quantizer writes for an MLP either runs within the README's
"Fidelity" tolerance or is refused with one line that says what to change (issue 10 item 1).

The matrix covers, on MLPs exported with Gemm (torch ``nn.Linear``'s form) and with MatMul:
``per_channel``, activation and weight types (8 and 16 bit, signed and unsigned), ``reduce_range``,
symmetric and asymmetric activations and weights (``extra_options`` ActivationSymmetric /
WeightSymmetric), the QDQ and QOperator formats, and ``quantize_dynamic``. Combinations
onnxruntime itself refuses (int8 activations with uint8 weights; 16-bit types in QOperator) are
left out.

A compiled form is checked twice: against an exact evaluation of the QDQ graph (float64, in
which every product of 16-bit operands is exact) and against onnxruntime. onnxruntime evaluates
QDQ graphs in float32, where 16 x 16-bit products are rounded: on a chain of 16-bit layers its
outputs sit 1 LSB off the exact value on a few percent of the elements (measured: 2.7 % on the
uint16-weight MLP below), so for 16-bit activations the equal-fraction clause is checked against
the exact evaluation.
"""

from __future__ import annotations

import itertools
import logging
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from codesign.codegen.build import CompileOptions, compile_model
from codesign.errors import CodesignError
from codesign.examples import models
from codesign.frontend.reference import run_onnxruntime
from codesign.runtime.fidelity import MAX_LSB, MIN_EQUAL, compare
from codesign.sim.functional import Simulator
from tests.ort_cpu import require_ort_match

# small MLPs: 32 x 16 -> 32 -> 8, so one case compiles and simulates in a fraction of a second
DIMS = (16, 32, 8)
BATCH = 32


def _exact_qdq(model: Path, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Evaluate a QDQ graph in float64 with ONNX semantics (round half to even, saturate)."""
    m = onnx.load(model)
    vals: dict[str, np.ndarray] = {k: v.astype(np.float64) for k, v in inputs.items()}
    vals.update({t.name: numpy_helper.to_array(t) for t in m.graph.initializer})
    for n in m.graph.node:
        ins = [vals[i] for i in n.input if i]
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
        if n.op_type in ("QuantizeLinear", "DequantizeLinear"):
            x, s, z = ins
            s, zf = s.astype(np.float64), z.astype(np.float64)
            if s.size > 1:
                shape = [1] * x.ndim
                shape[attrs.get("axis", 1) % x.ndim] = -1
                s, zf = s.reshape(shape), zf.reshape(shape)
            else:
                s, zf = s.reshape(()), zf.reshape(())
            if n.op_type == "QuantizeLinear":
                info = np.iinfo(z.dtype)
                r = np.clip(np.rint(x / s) + zf, info.min, info.max).astype(z.dtype)
            else:
                r = (x.astype(np.float64) - zf) * s
        elif n.op_type == "MatMul":
            r = ins[0] @ ins[1]
        elif n.op_type == "Gemm":
            b = ins[1].T if attrs.get("transB", 0) else ins[1]
            r = ins[0] @ b + (ins[2] if len(ins) > 2 else 0)
        elif n.op_type == "Add":
            r = ins[0] + ins[1]
        elif n.op_type == "Relu":
            r = np.maximum(ins[0], 0)
        else:
            raise AssertionError(f"the exact evaluator does not know {n.op_type}")
        vals[n.output[0]] = r
    return {o.name: vals[o.name] for o in m.graph.output}


def _output_scale(model: Path) -> float:
    """The scale of the QuantizeLinear that makes the graph output (its last one)."""
    m = onnx.load(model)
    inits = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    last_q = [n for n in m.graph.node if n.op_type == "QuantizeLinear"][-1]
    return float(inits[last_q.input[1]].reshape(-1)[0])


def _run(model: Path, tmp: Path) -> tuple[object, dict, dict, list] | str:
    """Compile and simulate ``model``; return (plan, inputs, outputs, comparisons) or the refusal."""
    try:
        plan = compile_model(model, tmp / "build", CompileOptions(synth=False))
    except CodesignError as e:
        return str(e)
    sim = Simulator(tmp / "build")
    inputs = models.random_inputs(model, seed=1)
    env = sim.run_all(inputs)
    outputs = {t.name: env[t.name] for t in plan.outputs}
    ref = run_onnxruntime(model, inputs)
    constants = {n: sim.data(f) for n, f in plan.constants.items()}
    return plan, inputs, outputs, compare(plan, outputs, ref, constants)


def _assert_refusal(message: str, *hints: str) -> None:
    assert "\n" not in message, message
    assert "node" in message and "quantize" in message, message
    assert any(h in message for h in hints), message


def _check_static(model: Path, tmp: Path, activation_type: str) -> str:
    """Compiled within tolerance, or refused in one line naming what to change."""
    got = _run(model, tmp)
    if isinstance(got, str):
        _assert_refusal(got, "WeightSymmetric", "activation_type", "QuantFormat.QDQ", "per tensor")
        return "refused"
    plan, inputs, outputs, results = got
    assert all(g.dtype in ("int8", "int16") for g in plan.gemms()), "integer GEMMs, never bf16"
    exact = _exact_qdq(model, inputs)
    lsb = _output_scale(model)
    for r in results:
        assert r.kind == "quantized", r
        assert r.max_lsb <= MAX_LSB, r
        assert r.passed, r  # the README's criterion, 16-bit clause included, as simulate applies it
        assert ("int16" in r.criterion) == any(g.dtype == "int16" for g in plan.gemms()), r
        diff = np.abs(outputs[r.name].astype(np.float64) - exact[r.name]) / lsb
        assert diff.max() <= MAX_LSB + 1e-3, f"{diff.max()} LSB from the exact QDQ value"
        assert np.mean(diff < 0.5) >= MIN_EQUAL, f"{np.mean(diff < 0.5):.3f} equal to exact"
    return "compiled"


_TYPES = ("int8", "uint8", "int16", "uint16")


def _ort_allows(activation: str, weight: str) -> bool:
    # onnxruntime's quantize_static raises ValueError for QInt8 activations with QUInt8 weights
    return not (activation == "int8" and weight == "uint8")


TYPE_GRID = [
    (gemm, pc, a, w)
    for gemm, pc, a, w in itertools.product((False, True), (False, True), _TYPES, _TYPES)
    if _ort_allows(a, w)
]


@pytest.fixture(autouse=True)
def _quiet_onnxruntime_quantizer():
    logging.disable(logging.WARNING)  # onnxruntime.quantization logs advice for every model
    yield
    logging.disable(logging.NOTSET)


def test_default_static_quantization_of_torch_linear_compiles(tmp_path: Path) -> None:
    """quantize_static's defaults on the Gemm (nn.Linear) form: the bias scale has shape (1,)
    and its zero point shape (); onnxruntime accepts it, and so does codesign (it refused it)."""
    model = models.qdq_mlp(tmp_path / "m.onnx", use_gemm=True)
    m = onnx.load(model)
    inits = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    shapes = {
        (inits[n.input[1]].shape, inits[n.input[2]].shape)
        for n in m.graph.node
        if n.op_type == "DequantizeLinear" and len(n.input) > 2 and n.input[1] in inits
    }
    assert ((1,), ()) in shapes, "the form of the issue: (1,) scale with a () zero point"
    assert _check_static(model, tmp_path, "int8") == "compiled"


@pytest.mark.parametrize("use_gemm, per_channel, activation, weight", TYPE_GRID)
def test_static_qdq_types(use_gemm, per_channel, activation, weight, tmp_path: Path) -> None:
    model = models.qdq_mlp(
        tmp_path / "m.onnx",
        DIMS,
        BATCH,
        per_channel=per_channel,
        activation_type=activation,
        weight_type=weight,
        use_gemm=use_gemm,
    )
    outcome = _check_static(model, tmp_path, activation)
    if activation == "uint16":
        assert outcome == "refused"  # no AIE-ML integer mode multiplies uint16 activations
    if activation in ("int8", "uint8") and weight in ("int8", "uint8", "int16"):
        assert outcome == "compiled"


OPTION_GRID = [
    (gemm, pc, a, w, rr, asym, wsym)
    for gemm, pc, a, w, rr, asym, wsym in itertools.product(
        (False, True),
        (False, True),
        ("int8", "uint8"),
        ("int8", "uint8", "int16"),
        (False, True),
        (False, True),
        (False, True),
    )
    if _ort_allows(a, w) and not (w == "int16" and rr)
]


@pytest.mark.parametrize(
    "use_gemm, per_channel, activation, weight, reduce_range, act_sym, weight_sym", OPTION_GRID
)
def test_static_qdq_options(
    use_gemm, per_channel, activation, weight, reduce_range, act_sym, weight_sym, tmp_path: Path
) -> None:
    model = models.qdq_mlp(
        tmp_path / "m.onnx",
        DIMS,
        BATCH,
        per_channel=per_channel,
        activation_type=activation,
        weight_type=weight,
        use_gemm=use_gemm,
        reduce_range=reduce_range,
        extra_options={"ActivationSymmetric": act_sym, "WeightSymmetric": weight_sym},
    )
    outcome = _check_static(model, tmp_path, activation)
    if weight != "int16" or weight_sym or per_channel:
        assert outcome == "compiled"


@pytest.mark.parametrize(
    "per_channel, activation, weight, act_sym, weight_sym",
    list(
        itertools.product(
            (False, True), ("int16", "uint16"), ("int16", "uint16"), (False, True), (False, True)
        )
    ),
)
def test_static_qdq_16bit_options(
    per_channel, activation, weight, act_sym, weight_sym, tmp_path: Path
) -> None:
    model = models.qdq_mlp(
        tmp_path / "m.onnx",
        DIMS,
        BATCH,
        per_channel=per_channel,
        activation_type=activation,
        weight_type=weight,
        extra_options={"ActivationSymmetric": act_sym, "WeightSymmetric": weight_sym},
    )
    outcome = _check_static(model, tmp_path, activation)
    # int16 weights with a zero point far from 0: W - zw leaves int16, refused (never bf16)
    if activation == "int16" and (weight_sym or per_channel):
        assert outcome == "compiled"


@pytest.mark.parametrize(
    "use_gemm, per_channel, activation, weight",
    [
        (g, pc, a, w)
        for g, pc, a, w in itertools.product(
            (False, True), (False, True), ("int8", "uint8"), ("int8", "uint8")
        )
        if _ort_allows(a, w)
    ],
)
def test_static_qoperator_compiles(
    use_gemm, per_channel, activation, weight, tmp_path: Path
) -> None:
    """QOperator (com.microsoft QGemm for the Gemm form, QLinearMatMul + QLinearAdd for MatMul +
    Add) lowers to the QDQ ops of the same arithmetic: integer GEMMs within tolerance."""
    model = models.qdq_mlp(
        tmp_path / "m.onnx",
        DIMS,
        BATCH,
        per_channel=per_channel,
        activation_type=activation,
        weight_type=weight,
        use_gemm=use_gemm,
        quant_format="QOperator",
    )
    ops = {n.op_type for n in onnx.load(model).graph.node}
    assert ("QGemm" if use_gemm else "QLinearMatMul") in ops, ops
    got = _run(model, tmp_path)
    assert not isinstance(got, str), got
    plan, _, _, results = got
    assert plan.gemms() and all(g.dtype in ("int8", "int16") for g in plan.gemms())
    u8s8 = activation == "uint8" and weight == "int8"  # QLinearMatMul/QGemm as written
    require_ort_match(bool(results) and all(r.passed for r in results), results, u8s8)


@pytest.mark.parametrize(
    "use_gemm, per_channel, weight, reduce_range, weight_sym",
    list(
        itertools.product(
            (False, True), (False, True), ("int8", "uint8"), (False, True), (None, False, True)
        )
    ),
)
def test_dynamic(use_gemm, per_channel, weight, reduce_range, weight_sym, tmp_path: Path) -> None:
    model = models.dynamic_mlp(
        tmp_path / "m.onnx",
        DIMS,
        BATCH,
        per_channel=per_channel,
        reduce_range=reduce_range,
        weight_type=weight,
        use_gemm=use_gemm,
        extra_options=None if weight_sym is None else {"WeightSymmetric": weight_sym},
    )
    got = _run(model, tmp_path)
    assert not isinstance(got, str), got
    plan, _, _, results = got
    assert plan.gemms() and all(g.dtype in ("int8", "int16") for g in plan.gemms())
    # quantize_dynamic's activations are uint8: MatMulInteger runs u8 x s8 for int8 weights
    u8s8 = weight == "int8" and not reduce_range
    require_ort_match(bool(results) and all(r.passed for r in results), results, u8s8)
