"""compile -> simulate on models the tests build: bit-exact against the numerics golden, and
against onnxruntime within the documented tolerances."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from codesign.codegen.build import CompileOptions, compile_model
from codesign.examples import models
from codesign.frontend import import_model
from codesign.frontend.reference import run_onnxruntime
from codesign.ir.plan import GemmLayer
from codesign.passes.pipeline import to_hardware
from codesign.runtime.fidelity import compare
from codesign.sim import numerics
from codesign.sim.functional import Simulator

CASES = {
    "float_mlp": lambda p: models.float_mlp(p),
    "float_gemm_transB": lambda p: models.float_mlp(p, use_gemm=True),
    "float_reshape": lambda p: models.float_mlp_reshape(p),
    "qdq_per_tensor": lambda p: models.qdq_mlp(p),
    "qdq_per_channel": lambda p: models.qdq_mlp(p, per_channel=True),
    "qdq_uint8": lambda p: models.qdq_mlp(p, activation_type="uint8", reduce_range=True),
    "qdq_gemm_int32_bias": lambda p: models.qdq_mlp(p, use_gemm=True, per_channel=True),
    "dynamic": lambda p: models.dynamic_mlp(p, reduce_range=True),
    "qlinear_uint8": lambda p: models.qlinear_matmul(p, 8, 64, 16),
    "qlinear_int8": lambda p: models.qlinear_matmul(p, 8, 64, 16, dtype="int8"),
    "odd_7x100x33": lambda p: models.qdq_gemm(p, 7, 100, 33),
    "odd_int16_7x100x33": lambda p: models.qdq_gemm(p, 7, 100, 33, dtype="int16"),
    "ffn_residual": lambda p: models.ffn_block(p),
    "gemm_1024_int8": lambda p: models.qdq_gemm(p, 1024, 1024, 1024, dtype="int8"),
    "gemm_1024_int16": lambda p: models.qdq_gemm(p, 1024, 1024, 1024, dtype="int16"),
}


def _golden_check(model: Path, sim: Simulator, env: dict[str, np.ndarray]) -> int:
    """Every GEMM layer's output equals the numerics golden on the unpacked weights."""
    kg = to_hardware(import_model(model))
    ops = {op.name: op for op in kg.ops}
    checked = 0
    for layer in sim.plan.layers:
        if not isinstance(layer, GemmLayer):
            continue
        op = ops[layer.name]
        a = env[layer.inputs[0]]
        w = kg.const(op.weight)
        s = layer.schedule
        a2 = a.reshape(s.M, s.K)
        if layer.dtype == "bf16":
            bias = kg.const(op.bias) if op.bias else None
            gold = numerics.reference_gemm_bf16(a2, w, s.tile.k, bias=bias, relu=op.relu)
        else:
            requant = None
            if op.requant:
                r = op.requant
                requant = (
                    kg.const(r.multiplier),
                    kg.const(r.shift),
                    r.zero_point,
                    r.dtype,
                    r.rounding,
                )
            gold = numerics.reference_gemm_int(
                a2,
                w,
                op.dtype,
                bias=kg.const(op.bias) if op.bias else None,
                a_zero_point=env[layer.inputs[1]] if len(layer.inputs) > 1 else None,
                colsum=kg.const(op.colsum) if op.colsum else None,
                acc_shift=op.acc_shift,
                relu=op.relu,
                requant=requant,
            )
        got = env[layer.outputs[0]].reshape(gold.shape)
        assert got.dtype == gold.dtype, layer.name
        np.testing.assert_array_equal(got, gold, err_msg=f"layer {layer.name} differs from golden")
        checked += 1
    return checked


@pytest.mark.parametrize("case", sorted(CASES))
def test_compile_simulate_matches_golden_and_onnxruntime(case: str, tmp_path: Path) -> None:
    model = CASES[case](tmp_path / "model.onnx")
    plan = compile_model(model, tmp_path / "build", CompileOptions(synth=False))
    assert plan.gemms(), "every case has at least one GEMM on the AIE block"
    sim = Simulator(tmp_path / "build")
    inputs = models.random_inputs(model, seed=1)
    env = sim.run_all(inputs)
    assert _golden_check(model, sim, env) == len(plan.gemms())
    outputs = {t.name: env[t.name] for t in plan.outputs}
    ref = run_onnxruntime(model, inputs)
    constants = {n: sim.data(f) for n, f in plan.constants.items()}
    results = compare(plan, outputs, ref, constants)
    for r in results:
        assert r.passed, r
        if r.kind == "quantized":
            assert r.max_lsb <= 1 and r.equal_fraction >= 0.99


def test_int8_paths_are_exact_integer_gemms(tmp_path: Path) -> None:
    """The QDQ MLP really runs int8 GEMMs with requantisation on the block (not float)."""
    model = models.qdq_mlp(tmp_path / "m.onnx", per_channel=True)
    plan = compile_model(model, tmp_path / "b", CompileOptions(synth=False))
    gemms = plan.gemms()
    assert [g.dtype for g in gemms] == ["int8", "int8"]
    assert all(g.requant is not None and g.requant.dtype == "int8" for g in gemms)


def test_padding_for_shapes_that_divide_nothing(tmp_path: Path) -> None:
    model = models.qdq_gemm(tmp_path / "m.onnx", 7, 100, 33)
    plan = compile_model(model, tmp_path / "b", CompileOptions(synth=False))
    s = plan.gemms()[0].schedule
    assert (s.M, s.K, s.N) == (7, 100, 33)
    assert s.padded_M % s.tile.m == 0 and s.padded_M >= 7
    assert s.padded_K == s.k_passes * s.block.cascade * s.tile.k >= 100
    assert s.padded_N == s.n_tiles * s.block.chains * s.tile.n >= 33


def test_k_larger_than_one_pass(tmp_path: Path) -> None:
    """A small block forces several K passes per graph iteration; the result stays exact."""
    from codesign.ir.plan import Block

    model = models.qdq_gemm(tmp_path / "m.onnx", 16, 4096, 16)
    plan = compile_model(model, tmp_path / "b", CompileOptions(block=Block(1, 2), synth=False))
    assert plan.gemms()[0].schedule.k_passes > 1
    sim = Simulator(tmp_path / "b")
    env = sim.run_all(models.random_inputs(model))
    assert _golden_check(model, sim, env) == 1
