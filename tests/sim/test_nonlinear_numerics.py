"""The nonlinear numerics against float64 numpy (each function's stated bound) and, for the ONNX
ops, against onnxruntime's CPU kernels on the same float32 inputs.

Bounds (the same as in codesign.sim.numerics.nonlinear's docstring):
exp rel 4e-7 on [-87.3, 88.7]; reciprocal rel 3e-7; div exact (IEEE fp32); rsqrt rel 3e-7; sqrt rel 4e-7;
erf abs 5e-7; tanh abs 5e-7; sigmoid abs 3e-7; gelu abs 5e-7 * max(1, |x|); silu abs
3e-7 * max(1, |x|); softmax abs 1e-6; layernorm / rmsnorm abs 2e-6 * max(1, |gamma|) + |beta| 2**-23.
Against onnxruntime (its own fp32 approximations) each bound is doubled plus its float32 ulp.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from onnx import TensorProto, helper

from codesign.sim.numerics import nonlinear as nl
from codesign.sim.numerics import to_bf16

RNG = np.random.default_rng(1234)
X = np.concatenate(
    [
        RNG.uniform(-10, 10, 60000),
        RNG.uniform(-1, 1, 30000),
        RNG.normal(0, 1e-3, 5000),
        [0.0, -0.0, 0.5, -0.5, 4.0, -4.0, 9.1, -9.1],
    ]
).astype(np.float32)
X64 = X.astype(np.float64)
_ERF = np.frompyfunc(math.erf, 1, 1)


def erf64(x: np.ndarray) -> np.ndarray:
    return _ERF(x).astype(np.float64)


def rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a.astype(np.float64) - b) / np.abs(b)))


def test_exp_relative_bound_and_edges() -> None:
    x = np.concatenate([RNG.uniform(-87.3, 88.7, 100000), X]).astype(np.float32)
    assert rel(nl.exp_f32(x), np.exp(x.astype(np.float64))) <= nl.EXP_REL_ERR
    edges = nl.exp_f32(np.array([-np.inf, np.inf, np.nan, -100, 100, 0], np.float32))
    assert edges[0] == 0 and edges[1] == np.inf and np.isnan(edges[2])
    assert edges[3] == 0 and edges[4] == np.inf and edges[5] == 1
    assert nl.exp_f32(X).dtype == np.float32


def test_reciprocal_div_rsqrt_sqrt_bounds() -> None:
    y = np.concatenate([RNG.uniform(-1e6, 1e6, 50000), 10 ** RNG.uniform(-30, 30, 50000)]).astype(
        np.float32
    )
    y = y[y != 0]
    assert rel(nl.reciprocal_f32(y), 1 / y.astype(np.float64)) <= nl.RECIP_REL_ERR
    a = RNG.normal(0, 100, y.shape).astype(np.float32)
    a = a[np.abs(a) > 1e-3]
    b = y[: a.size]
    assert rel(nl.div_f32(a, b), a.astype(np.float64) / b) <= nl.DIV_REL_ERR
    assert np.array_equal(nl.div_f32(a, b), a / b)  # IEEE fp32 division, bit for bit
    tiny = np.array([1e-45, -1e-45, 0.0], np.float32)
    q = nl.div_f32(np.array([0.0, 1e-7, 0.0], np.float32), tiny)
    assert q[0] == 0 and np.isfinite(q[1]) and np.isnan(q[2])
    p = (10 ** RNG.uniform(-30, 30, 100000)).astype(np.float32)
    assert rel(nl.rsqrt_f32(p), 1 / np.sqrt(p.astype(np.float64))) <= nl.RSQRT_REL_ERR
    assert rel(nl.sqrt_f32(p), np.sqrt(p.astype(np.float64))) <= nl.SQRT_REL_ERR
    r = nl.reciprocal_f32(np.array([0.0, -0.0, np.inf, np.nan], np.float32))
    assert r[0] == np.inf and r[1] == -np.inf and r[2] == 0 and np.isnan(r[3])
    s = nl.sqrt_f32(np.array([0.0, -1.0, np.inf], np.float32))
    assert s[0] == 0 and np.isnan(s[1]) and s[2] == np.inf
    assert nl.rsqrt_f32(np.array([0.0], np.float32))[0] == np.inf


def test_erf_tanh_sigmoid_bounds() -> None:
    assert np.max(np.abs(nl.erf_f32(X) - erf64(X64))) <= nl.ERF_ABS_ERR
    assert np.max(np.abs(nl.tanh_f32(X) - np.tanh(X64))) <= nl.TANH_ABS_ERR
    assert np.max(np.abs(nl.sigmoid_f32(X) - 1 / (1 + np.exp(-X64)))) <= nl.SIGMOID_ABS_ERR
    # odd functions stay odd, saturate to +-1, keep NaN
    assert np.array_equal(nl.erf_f32(-X), -nl.erf_f32(X))
    assert np.array_equal(nl.tanh_f32(-X), -nl.tanh_f32(X))
    big = np.array([50, -50, np.inf, -np.inf], np.float32)
    assert np.array_equal(nl.tanh_f32(big), [1, -1, 1, -1])
    assert np.array_equal(nl.erf_f32(big), [1, -1, 1, -1])
    assert np.isnan(nl.erf_f32(np.array([np.nan], np.float32))[0])


def test_gelu_silu_bounds() -> None:
    scale = np.maximum(1, np.abs(X64))
    exact = 0.5 * X64 * (1 + erf64(X64 / np.sqrt(2)))
    assert np.max(np.abs(nl.gelu_f32(X) - exact) / scale) <= nl.GELU_ABS_ERR
    c = np.sqrt(2 / np.pi)
    exact_t = 0.5 * X64 * (1 + np.tanh(c * (X64 + 0.044715 * X64**3)))
    assert np.max(np.abs(nl.gelu_f32(X, "tanh") - exact_t) / scale) <= nl.GELU_ABS_ERR
    assert np.max(np.abs(nl.silu_f32(X) - X64 / (1 + np.exp(-X64))) / scale) <= nl.SILU_ABS_ERR
    with pytest.raises(ValueError, match="approximate"):
        nl.gelu_f32(X, "fast")


def _rows(shape=(64, 96), scale=3.0) -> np.ndarray:
    return RNG.normal(0, scale, shape).astype(np.float32)


def test_softmax_bound_and_masks() -> None:
    x = _rows()
    x64 = x.astype(np.float64)
    e = np.exp(x64 - x64.max(-1, keepdims=True))
    assert np.max(np.abs(nl.softmax_f32(x) - e / e.sum(-1, keepdims=True))) <= nl.SOFTMAX_ABS_ERR
    masked = x.copy()
    masked[:, 50:] = -np.inf
    y = nl.softmax_f32(masked)
    assert np.all(y[:, 50:] == 0)
    assert np.allclose(y.sum(-1), 1, atol=1e-6)
    big_neg = x.copy()
    big_neg[:, 50:] = np.finfo(np.float32).min
    assert np.all(nl.softmax_f32(big_neg)[:, 50:] == 0)
    assert np.all(np.isnan(nl.softmax_f32(np.full((1, 4), -np.inf, np.float32))))


def test_layernorm_rmsnorm_mean_bounds() -> None:
    x = _rows()
    x64 = x.astype(np.float64)
    g = RNG.normal(1, 0.5, 96).astype(np.float32)
    b = RNG.normal(0, 1, 96).astype(np.float32)
    mu = x64.mean(-1, keepdims=True)
    var = ((x64 - mu) ** 2).mean(-1, keepdims=True)
    ln = (x64 - mu) / np.sqrt(var + 1e-5) * g + b
    bound = nl.NORM_ABS_ERR * max(1, np.abs(g).max()) + np.abs(b).max() * 2.0**-23
    assert np.max(np.abs(nl.layernorm_f32(x, g, b, 1e-5) - ln)) <= bound
    rms = x64 / np.sqrt((x64**2).mean(-1, keepdims=True) + 1e-6) * g
    assert np.max(np.abs(nl.rmsnorm_f32(x, g, 1e-6) - rms)) <= bound
    assert np.max(np.abs(nl.row_mean_f32(x) - mu)) <= 1e-6 * np.abs(x64).max()
    assert nl.row_mean_f32(x).shape == (64, 1)


def test_bf16_inputs_and_outputs() -> None:
    """bf16: inputs rounded to bf16, fp32 arithmetic, the result rounded to bf16."""
    x = _rows(scale=2.0)
    xb = to_bf16(x)
    for f in (nl.exp_f32, nl.erf_f32, nl.tanh_f32, nl.sigmoid_f32, nl.silu_f32, nl.softmax_f32):
        y = f(x, dtype="bf16")
        assert np.array_equal(y, to_bf16(f(xb)))
        assert np.array_equal(y, to_bf16(y))
    exact = 0.5 * xb.astype(np.float64) * (1 + erf64(xb.astype(np.float64) / np.sqrt(2)))
    y = nl.gelu_f32(x, dtype="bf16").astype(np.float64)
    assert np.max(np.abs(y - exact) / np.maximum(1, np.abs(exact))) <= 2.0**-8
    with pytest.raises(ValueError, match="dtype"):
        nl.exp_f32(x, dtype="fp16")


# --- against onnxruntime ----------------------------------------------------------------------


def _ort(op: str, inputs: dict[str, np.ndarray], opset: int = 20, **attrs) -> np.ndarray:
    import onnxruntime as ort

    names = list(inputs)
    vin = [
        helper.make_tensor_value_info(n, TensorProto.FLOAT, list(v.shape))
        for n, v in inputs.items()
    ]
    node = helper.make_node(op, names, ["y"], **attrs)
    graph = helper.make_graph(
        [node], "g", vin, [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)]
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 10
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    s = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    return s.run(None, inputs)[0]


ULP = 2.0**-23


@pytest.mark.parametrize(
    ("op", "fn", "bound", "relative", "attrs"),
    [
        ("Exp", nl.exp_f32, nl.EXP_REL_ERR, True, {}),
        ("Erf", nl.erf_f32, nl.ERF_ABS_ERR, False, {}),
        ("Tanh", nl.tanh_f32, nl.TANH_ABS_ERR, False, {}),
        ("Sigmoid", nl.sigmoid_f32, nl.SIGMOID_ABS_ERR, False, {}),
        ("Gelu", lambda x: nl.gelu_f32(x, "none"), nl.GELU_ABS_ERR, False, {}),
        ("Gelu", lambda x: nl.gelu_f32(x, "tanh"), nl.GELU_ABS_ERR, False, {"approximate": "tanh"}),
        ("Softmax", nl.softmax_f32, nl.SOFTMAX_ABS_ERR, False, {"axis": -1}),
    ],
)
def test_elementwise_against_onnxruntime(op, fn, bound, relative, attrs) -> None:
    x = X.reshape(-1, 8)[:4000] if op != "Exp" else np.clip(X, -80, 80).reshape(-1, 8)[:4000]
    ref = _ort(op, {"x": x}, **attrs).astype(np.float64)
    got = fn(x).astype(np.float64)
    if relative:
        assert np.max(np.abs(got - ref) / np.abs(ref)) <= 2 * bound + ULP
    else:
        scale = np.maximum(1, np.abs(x.astype(np.float64)))
        assert np.max(np.abs(got - ref) / scale) <= 2 * bound + ULP


def test_norms_against_onnxruntime() -> None:
    x = _rows((32, 64))
    g = RNG.normal(1, 0.5, 64).astype(np.float32)
    b = RNG.normal(0, 1, 64).astype(np.float32)
    bound = 2 * (nl.NORM_ABS_ERR * max(1, np.abs(g).max())) + np.abs(b).max() * ULP
    ref = _ort("LayerNormalization", {"x": x, "g": g, "b": b}, 17, axis=-1, epsilon=1e-5)
    assert np.max(np.abs(nl.layernorm_f32(x, g, b, 1e-5) - ref)) <= bound + 1e-6
    ref = _ort("RMSNormalization", {"x": x, "g": g}, 23, axis=-1, epsilon=1e-6)
    assert np.max(np.abs(nl.rmsnorm_f32(x, g, 1e-6) - ref)) <= bound
    ref = _ort("Sqrt", {"x": np.abs(x) + 1e-3})
    assert rel(nl.sqrt_f32(np.abs(x) + 1e-3), ref.astype(np.float64)) <= 2 * nl.SQRT_REL_ERR
    ref = _ort("Reciprocal", {"x": x})
    assert rel(nl.reciprocal_f32(x), ref.astype(np.float64)) <= 2 * nl.RECIP_REL_ERR
