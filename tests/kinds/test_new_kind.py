"""Done-when of issue 9: a new op kind registered from the test suite goes through
compile -> simulate -> report -> save (and load_build) without a change outside this module.

The kind is "negate": y = -x element-wise on float32, a vector-like PL stage. Everything about
it is here: its KernelGraph op, its plan layer (with JSON), planner, executor, checker, cost,
memory estimate and an emitter (a small description file in the build).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pytest

import codesign
from codesign.cost import estimate_stream_layer
from codesign.examples import models
from codesign.ir.graph import KernelGraph, Op, TensorType
from codesign.ir.plan import Layer
from codesign.kinds import Cost, Emitted, LayerMemory, OpKind, register, unregister
from codesign.kinds.registry import no_output_scale


@dataclass(frozen=True)
class Negate(Op):
    kind: ClassVar[str] = "negate"


@dataclass(frozen=True)
class NegateLayer(Layer):
    kind: ClassVar[str] = "negate"
    unit: ClassVar[str] = "pl"


def _plan(ctx, op: Negate) -> NegateLayer:
    return NegateLayer(op.name, op.inputs, op.outputs)


def _execute(sim, layer: NegateLayer, args) -> tuple[np.ndarray]:
    return (np.negative(args[0]),)


def _check(ck, layer: NegateLayer) -> None:
    ck.count(layer, 1, 1)
    if ck.dtypes[layer.inputs[0]] != "float32":
        ck.fail("negate takes float32")
    if ck.shapes[layer.inputs[0]] != ck.shapes[layer.outputs[0]]:
        ck.fail("negate keeps the shape")


def _nbytes(plan, name: str) -> int:
    t = plan.tensor(name)
    return TensorType(tuple(t.shape), t.dtype).nbytes


def _cost(ctx, stage: list[NegateLayer]) -> Cost:
    (layer,) = stage
    est = estimate_stream_layer(
        ctx.board,
        layer.name,
        _nbytes(ctx.plan, layer.inputs[0]),
        _nbytes(ctx.plan, layer.outputs[0]),
        kind="negate",
    )
    return Cost(est, {"negated": True})


def _memory(plan, layer: NegateLayer) -> LayerMemory:
    return LayerMemory(transient=math.prod(plan.tensor(layer.outputs[0]).shape) * 4)


def _emit(plan, layers: list[NegateLayer]) -> Emitted:
    text = json.dumps({"negate": [layer.name for layer in layers]}, sort_keys=True) + "\n"
    return Emitted(files=(("kinds/negate.json", text.encode()),))


NEGATE = OpKind(
    name="negate",
    op=Negate,
    layer=NegateLayer,
    plan=_plan,
    execute=_execute,
    check=_check,
    cost=_cost,
    memory=_memory,
    emit=_emit,
    output_scale=no_output_scale,
)


@pytest.fixture
def negate_kind():
    register(NEGATE)
    yield NEGATE
    unregister("negate")


def negate_output(kg: KernelGraph) -> bool:
    """A pass: append a Negate of the (single) graph output and make it the output."""
    (out,) = kg.outputs
    neg = kg.fresh_name(f"{out}_negated")
    kg.types[neg] = kg.types[out]
    kg.append(Negate("negate_output", (out,), (neg,)))
    kg.outputs = [neg]
    return True


def test_new_kind_compile_simulate_report_save(negate_kind, tmp_path) -> None:
    model = models.float_mlp(tmp_path / "m.onnx")
    plain = codesign.compile(model, synth=False)
    build = codesign.compile(model, synth=False, passes=[negate_output])
    assert [layer.kind for layer in build.plan.layers][-1] == "negate"

    (x_name,) = [t.name for t in build.plan.inputs]
    x = np.random.default_rng(1).standard_normal(build.plan.inputs[0].shape).astype(np.float32)
    (want,) = plain.simulate({x_name: x}).values()
    (got,) = build.simulate({x_name: x}).values()
    np.testing.assert_array_equal(got, -want)

    report = build.report()
    entry = next(e for e in report["layers"] if e["name"] == "negate_output")
    assert entry["negated"] is True and entry["time_s"] > 0
    assert report["totals"]["time_s"] > plain.report()["totals"]["time_s"]

    out = build.save(tmp_path / "build")
    assert (out / "kinds" / "negate.json").read_text() == '{"negate": ["negate_output"]}\n'
    manifest = json.loads((out / "manifest.json").read_text())
    assert "kinds/negate.json" in manifest["files"]
    loaded = codesign.load_build(out)
    (again,) = loaded.simulate({x_name: x}).values()
    np.testing.assert_array_equal(again, got)
    assert loaded.report() == report


def test_checker_of_the_new_kind_refuses_a_damaged_build(negate_kind, tmp_path, cli) -> None:
    model = models.float_mlp(tmp_path / "m.onnx")
    out = codesign.compile(model, synth=False, passes=[negate_output]).save(tmp_path / "b")
    plan = json.loads((out / "schedule.json").read_text())
    layer = next(x for x in plan["layers"] if x["kind"] == "negate")
    layer["outputs"] = [layer["outputs"][0], layer["outputs"][0]]
    (out / "schedule.json").write_text(json.dumps(plan))
    with pytest.raises(codesign.errors.BuildError, match="negate_output.*must have 1 inputs"):
        codesign.load_build(out)
    r = cli("simulate", out)
    assert r.code == 2 and "negate" in r.err


def test_without_registration_the_kind_is_refused_not_skipped(tmp_path) -> None:
    model = models.float_mlp(tmp_path / "m.onnx")
    with pytest.raises(LookupError, match="no plan registered for KernelGraph op type Negate"):
        codesign.compile(model, synth=False, passes=[negate_output])


def test_fit_is_checked_while_planning(tmp_path) -> None:
    """A kind whose modelled resources exceed the board is refused by plan() itself, before any
    report or file is made."""
    from dataclasses import replace

    from codesign.boards import load
    from codesign.cost import ResourceUsage
    from codesign.errors import FitError
    from codesign.frontend import import_model
    from codesign.passes.pipeline import to_hardware
    from codesign.schedulers.planner import plan
    from codesign.schedulers.tempus import DEFAULT_BLOCK

    def greedy_cost(ctx, stage):
        cost = _cost(ctx, stage)
        return replace(
            cost, estimate=replace(cost.estimate, resources=ResourceUsage(aie_cores=10**6))
        )

    register(replace(NEGATE, cost=greedy_cost))
    try:
        kg = to_hardware(import_model(models.float_mlp(tmp_path / "m.onnx")))
        negate_output(kg)
        with pytest.raises(FitError, match="does not fit vek280"):
            plan(kg, load("vek280"), DEFAULT_BLOCK)
        assert plan(kg, load("vek280"), DEFAULT_BLOCK, check_fit=False).layers[-1].kind == "negate"
    finally:
        unregister("negate")
