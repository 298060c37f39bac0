"""Every registered op kind, through every registry: the drivers (planner, simulator, checker,
memory estimate, report, writer, fidelity) reach each kind only through codesign.kinds, and a
lookup for a kind without an entry raises, naming the kind and the registry."""

from __future__ import annotations

import dataclasses
from collections import Counter

import pytest

import codesign
from codesign.examples import models, nonlinear_models
from codesign.examples.attention import attention_core
from codesign.ir.plan import Layer
from codesign.kinds import registry
from codesign.kinds.registry import REGISTRIES, UnregisteredKind
from codesign.runtime.fidelity import compare
from codesign.sim.functional import Simulator
from codesign.sim.memory import estimate
from codesign.sim.plan_check import check_plan


def _counting(kind: registry.OpKind, calls: Counter) -> registry.OpKind:
    """The same kind whose entries count their calls (each still runs the real entry)."""

    def wrap(name: str, fn):
        def counted(*args, **kwargs):
            calls[kind.name, name] += 1
            return fn(*args, **kwargs)

        return counted

    return dataclasses.replace(kind, **{r: wrap(r, getattr(kind, r)) for r in REGISTRIES})


@pytest.fixture
def counted_kinds():
    calls: Counter = Counter()
    originals = registry.kinds()
    for kind in originals:
        registry.unregister(kind.name)
    try:
        for kind in originals:
            registry.register(_counting(kind, calls))
        yield originals, calls
    finally:
        for kind in registry.kinds():
            registry.unregister(kind.name)
        for kind in originals:
            registry.register(kind)


def test_every_kind_through_every_registry(counted_kinds, tmp_path) -> None:
    originals, calls = counted_kinds
    for make in (
        models.ffn_block,
        models.float_mlp_reshape,
        models.nbits_mlp,
        nonlinear_models.masked_norm_block,
        attention_core,
        models.unsupported_op_model,
        models.movement_block,
    ):
        build = codesign.compile(make(tmp_path / f"{make.__name__}.onnx"), synth=False)
        outputs = build.simulate()
        build.report()
        saved = codesign.load_build(build.save(tmp_path / make.__name__))
        check_plan(saved.plan, saved.root)
        estimate(saved.plan)
        sim = Simulator(build.plan)
        constants = {n: sim.data(f) for n, f in build.plan.constants.items()}
        compare(build.plan, outputs, outputs, constants)
    kinds = {k.name for k in originals}
    assert {
        "gemm",
        "vector",
        "reshape",
        "nonlinear",
        "rownorm",
        "batched_matmul",
        "transpose",
        "movement",
        "host",
    } <= kinds
    missing = [(k, r) for k in sorted(kinds) for r in REGISTRIES if calls[k, r] == 0]
    # output_scale is asked only for the kinds producing graph outputs in these models
    missing = [(k, r) for k, r in missing if r != "output_scale" or k in ("vector", "movement")]
    assert missing == []


@pytest.mark.parametrize("name", REGISTRIES)
def test_lookup_of_an_unknown_kind_names_kind_and_registry(name: str) -> None:
    with pytest.raises(UnregisteredKind, match=rf"no {name} registered for op kind 'nope'"):
        registry.entry("nope", name)


def test_layer_of_an_unregistered_kind_is_refused_by_every_driver() -> None:
    @dataclasses.dataclass(frozen=True)
    class Odd(Layer):
        kind = "odd"

    layer = Odd("odd", (), ())
    for lookup in (
        registry.executor,
        registry.checker,
        registry.coster,
        registry.memory,
        registry.output_scale,
    ):
        with pytest.raises(UnregisteredKind, match="op kind 'odd'"):
            lookup(layer)


def test_register_refuses_an_incomplete_or_clashing_kind() -> None:
    gemm = registry.get("gemm")
    with pytest.raises(ValueError, match="entry 'cost' must be callable"):
        registry.register(dataclasses.replace(gemm, name="other", cost=None))
    with pytest.raises(ValueError, match="already registered"):
        registry.register(dataclasses.replace(gemm, execute=lambda *a: ()))
