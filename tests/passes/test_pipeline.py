"""The declared pipeline: named pass objects, results, --debug verification after every pass,
and work that grows linearly with the graph."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from codesign.examples import models
from codesign.frontend import import_model
from codesign.ir.graph import GraphInvariantError, KernelGraph, Op, TensorType, Vector
from codesign.passes import base, pipeline
from codesign.passes.base import Pass, PassResult, PostconditionError, run_passes
from codesign.passes.fold import Prune
from codesign.passes.pipeline import PIPELINE, to_hardware


@dataclass(frozen=True)
class DropFirstOp(Pass):
    """A broken pass: removes an op that others read."""

    name: ClassVar[str] = "drop-first-op"

    def call(self, kg: KernelGraph) -> PassResult:
        kg.remove(kg.ops[0])
        return PassResult(True)


@dataclass(frozen=True)
class BrokenPromise(Pass):
    name: ClassVar[str] = "broken-promise"

    def call(self, kg: KernelGraph) -> PassResult:
        return PassResult(False)

    def ensures(self, kg: KernelGraph) -> None:
        raise PostconditionError(f"{self.name}: promise broken")


def _relu_chain(n: int) -> KernelGraph:
    kg = KernelGraph(inputs=["x"], outputs=[f"t{n - 1}"])
    kg.types["x"] = TensorType((4,), "float32")
    prev = "x"
    for i in range(n):
        kg.types[f"t{i}"] = TensorType((4,), "float32")
        kg.append(Vector(f"v{i}", (prev,), (f"t{i}",), fn="relu"))
        prev = f"t{i}"
    return kg


def test_pipeline_is_declared_once() -> None:
    assert isinstance(PIPELINE, tuple) and all(isinstance(p, Pass) for p in PIPELINE)
    assert to_hardware.__kwdefaults__["passes"] is PIPELINE
    names = [p.name for p in PIPELINE]
    assert names[0] == "quant-gemm" and names[-1] == "prune"
    assert {"fold-epilogue", "float-gemm", "lower-primitives", "fold-constants"} <= set(names)


def test_second_run_changes_nothing(tmp_path: Path) -> None:
    model = models.qdq_mlp(tmp_path / "m.onnx")
    kg = import_model(model)
    first = run_passes(kg, PIPELINE)
    assert any(r.modified for _, r in first)
    ops = kg.ops
    again = run_passes(kg, PIPELINE, debug=True)
    assert [name for name, _ in again] == [p.name for p in PIPELINE]
    assert not any(r.modified for _, r in again) and kg.ops == ops


def test_debug_names_the_pass_that_broke_the_graph() -> None:
    passes = (Prune(), DropFirstOp(), Prune())
    with pytest.raises(GraphInvariantError, match="after pass 'drop-first-op': v1: input t0"):
        to_hardware(_relu_chain(3), debug=True, passes=passes)
    # without --debug the final check still refuses the graph, but cannot say which pass
    with pytest.raises(GraphInvariantError, match="^v1: input t0 used before it is defined"):
        to_hardware(_relu_chain(3), passes=passes)


def test_ensures_runs_after_call() -> None:
    with pytest.raises(PostconditionError, match="broken-promise: promise broken"):
        to_hardware(_relu_chain(2), passes=(BrokenPromise(),))


def test_cli_debug_validates_after_every_pass(cli, tmp_path: Path, monkeypatch) -> None:
    calls = []
    real = KernelGraph.validate
    monkeypatch.setattr(KernelGraph, "validate", lambda kg: calls.append(1) or real(kg))
    model = models.qdq_mlp(tmp_path / "m.onnx")
    r = cli("compile", model, "-o", tmp_path / "a", "--no-synth")
    assert r.code == 0, r.err
    plain = len(calls)
    calls.clear()
    r = cli("--debug", "compile", model, "-o", tmp_path / "b", "--no-synth")
    assert r.code == 0, r.err
    assert len(calls) == plain + len(PIPELINE)
    assert (tmp_path / "a" / "schedule.json").read_bytes() == (
        tmp_path / "b" / "schedule.json"
    ).read_bytes()


class _Work:
    """Counts use-list lookups, op-list materialisations (each O(graph)) and reads of ops'
    inputs/outputs (what a scan over the ops does) while a graph is rewritten."""

    def __init__(self, monkeypatch) -> None:
        self.lookups = self.snapshots = self.reads = 0

        def read(op: Op, name: str):
            if name in ("inputs", "outputs"):
                self.reads += 1
            return object.__getattribute__(op, name)

        monkeypatch.setattr(Op, "__getattribute__", read)
        for name in ("producer", "consumers", "num_consumers"):
            real = getattr(KernelGraph, name)
            monkeypatch.setattr(KernelGraph, name, self._count(real))
        getter = KernelGraph.ops.fget

        def ops(kg: KernelGraph):
            self.snapshots += kg._snapshot is None
            return getter(kg)

        monkeypatch.setattr(KernelGraph, "ops", property(ops, KernelGraph.ops.fset))

    def _count(self, real):
        def counted(kg, tensor):
            self.lookups += 1
            return real(kg, tensor)

        return counted


def _mlp_chain(layers: int) -> KernelGraph:
    """A QDQ chain in which every rule family fires once per layer."""
    rng = np.random.default_rng(0)
    from codesign.ir.graph import DequantizeLinear, MatMul, QuantizeLinear

    kg = KernelGraph(inputs=["x"], outputs=[f"d{layers}"])
    kg.types["x"] = TensorType((2, 8), "float32")
    kg.add_const("s", np.float32(0.05))
    kg.add_const("z", np.int8(0))
    kg.add_const("sw", np.float32(0.01))
    kg.types["q0"] = TensorType((2, 8), "int8")
    kg.append(QuantizeLinear("q_in", ("x", "s", "z"), ("q0",), dtype="int8"))
    for i in range(layers):
        kg.add_const(f"w{i}", rng.integers(-127, 128, (8, 8)).astype(np.int8))
        kg.add_const(f"b{i}", rng.normal(size=8).astype(np.float32))
        for t, dt in [
            ("x", "float32"),
            ("wd", "float32"),
            ("m", "float32"),
            ("a", "float32"),
            ("r", "float32"),
        ]:
            kg.types[f"{t}{i}"] = TensorType((8, 8) if t == "wd" else (2, 8), dt)
        kg.types[f"q{i + 1}"] = TensorType((2, 8), "int8")
        kg.types[f"d{i + 1}"] = TensorType((2, 8), "float32")
        for op in [
            DequantizeLinear(f"dq{i}", (f"q{i}", "s", "z"), (f"x{i}",)),
            DequantizeLinear(f"dw{i}", (f"w{i}", "sw", "z"), (f"wd{i}",)),
            MatMul(f"mm{i}", (f"x{i}", f"wd{i}"), (f"m{i}",)),
            Vector(f"add{i}", (f"m{i}", f"b{i}"), (f"a{i}",), fn="add"),
            Vector(f"relu{i}", (f"a{i}",), (f"r{i}",), fn="relu"),
            QuantizeLinear(f"q{i}", (f"r{i}", "s", "z"), (f"q{i + 1}",), dtype="int8"),
        ]:
            kg.append(op)
    kg.append(DequantizeLinear("dq_out", (f"q{layers}", "s", "z"), (f"d{layers}",)))
    return kg


@pytest.mark.parametrize("make", [_relu_chain, _mlp_chain], ids=["relu-chain", "qdq-mlp"])
def test_pass_work_is_linear_in_the_graph(make, monkeypatch) -> None:
    """Issue 11 item 6, counted instead of timed: the use-list lookups of the whole pipeline grow
    in proportion to the graph, and the op list is materialised a fixed number of times."""
    work = {}
    for n in (200, 800):
        kg = make(n)
        size = kg.num_ops()
        counter = _Work(monkeypatch)
        to_hardware(kg)
        work[n] = (size, counter.lookups, counter.snapshots, counter.reads)
        monkeypatch.undo()
    (s1, l1, n1, r1), (s4, l4, n4, r4) = work[200], work[800]
    assert l4 <= 1.05 * l1 * s4 / s1 and l4 <= 20 * s4  # lookups per op do not grow
    assert r4 <= 1.05 * r1 * s4 / s1 and r4 <= 100 * s4  # nor the op fields read per op
    assert n4 == n1 <= 3 * len(pipeline.PIPELINE) + 5  # no op-list copy per rewrite


def _sweep(kg: KernelGraph, rules) -> int:
    """The driver before the worklist: sweep every op with every rule until none fires."""
    fired, changed = 0, True
    while changed:
        changed = False
        for op in kg.ops:
            if op in kg and any(rule(kg, op) for rule in rules):
                fired += 1
                changed = True
    return fired


@pytest.mark.parametrize(
    "make",
    [
        lambda p: models.qdq_mlp(p),
        lambda p: models.float_mlp(p),
        lambda p: models.dynamic_mlp(p),
        lambda p: models.qlinear_matmul(p, 4, 32, 16),
        lambda p: models.ffn_block(p),
        lambda p: models.qdq_gemm(p, 8, 64, 32, dtype="int16", per_channel=True),
    ],
    ids=["qdq_mlp", "float_mlp", "dynamic_mlp", "qlinear", "ffn", "qdq_gemm16"],
)
def test_worklist_reaches_the_sweeps_fixpoint(make, tmp_path: Path, monkeypatch) -> None:
    model = make(tmp_path / "m.onnx")
    fast = to_hardware(import_model(model))
    monkeypatch.setattr(base, "apply_rules", _sweep)
    slow = to_hardware(import_model(model))
    assert fast.ops == slow.ops
    assert fast.constants.keys() == slow.constants.keys()
