"""The nonlinear and rownorm kinds: placement in the plan and its JSON, the plan checker's
refusals, constant folding with the same table, and emission."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

import codesign
from codesign.errors import BuildError
from codesign.examples import nonlinear_models
from codesign.ir.graph import KernelGraph, TensorType
from codesign.ir.nonlinear import Nonlinear, NonlinearLayer, RowNorm, RowNormLayer
from codesign.ir.plan import from_json, to_json
from codesign.passes.fold import fold_constants
from codesign.sim import nonlinear as table
from codesign.sim.plan_check import check_plan


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    path = nonlinear_models.masked_norm_block(tmp_path_factory.mktemp("m") / "m.onnx")
    return codesign.compile(str(path), synth=False)


def _layer(build, name):
    return next(layer for layer in build.plan.layers if layer.name == name)


def test_plan_json_keeps_the_placement(build) -> None:
    plan = from_json(to_json(build.plan))
    for before, after in zip(build.plan.layers, plan.layers, strict=True):
        assert type(before) is type(after)
        if isinstance(before, NonlinearLayer | RowNormLayer):
            assert after.placement == before.placement and after.unit == before.placement
            assert after.fn == before.fn
    entry = json.loads(to_json(build.plan))["layers"]
    sm = next(e for e in entry if e["name"] == "softmax")
    assert sm["kind"] == "rownorm" and sm["unit"] == sm["placement"]


@pytest.mark.parametrize(
    ("name", "change", "message"),
    [
        ("gelu", {"placement": "gpu"}, "placement must be one of pl, aie"),
        ("gelu", {"fn": "cosh"}, "fn must be one of"),
        ("gelu", {"attrs": (("approximate", "fast"),)}, "gelu approximate"),
        ("softmax", {"fn": "layernorm", "attrs": (("epsilon", -1.0),)}, "epsilon"),
        ("is_pad", {"fn": "div"}, "div takes float32 inputs"),
    ],
)
def test_checker_refuses_a_damaged_layer(build, name, change, message) -> None:
    layers = tuple(
        dataclasses.replace(x, **change) if x.name == name else x for x in build.plan.layers
    )
    plan = dataclasses.replace(build.plan, layers=layers)
    plan.data.update(build.plan.data)
    with pytest.raises(BuildError, match=message):
        check_plan(plan, None)


def test_constants_fold_through_the_same_table() -> None:
    kg = KernelGraph(["x"], ["y"])
    c = kg.add_const("c", np.linspace(-3, 3, 8, dtype=np.float32).reshape(1, 8))
    for t in ("e", "s", "y"):
        kg.types[t] = TensorType((1, 8), "float32")
    kg.types["x"] = TensorType((1, 8), "float32")
    kg.append(Nonlinear("erf", (c,), ("e",), fn="erf"))
    kg.append(RowNorm("sm", ("e",), ("s",), fn="softmax"))
    kg.append(Nonlinear("div", ("x", "s"), ("y",), fn="div"))
    assert fold_constants(kg)
    assert [op.name for op in kg.ops] == ["div"]
    want = table.apply(
        table.ROWWISE, "softmax", [table.apply(table.ELEMENTWISE, "erf", [kg.const(c)], {})], {}
    )
    assert np.array_equal(kg.const("s"), want)


def test_emitted_description(build, tmp_path) -> None:
    root = build.save(tmp_path / "b")
    doc = json.loads((root / "kinds" / "nonlinear.json").read_text())
    gelu = next(e for e in doc["layers"] if e["name"] == "gelu")
    assert gelu["placement"] == _layer(build, "gelu").placement
    assert gelu["ops_per_element"] == table.ELEMENTWISE["gelu"].ops
    rows = json.loads((root / "kinds" / "rownorm.json").read_text())["layers"]
    assert {e["fn"] for e in rows} == {"layernorm", "softmax", "reducemean"}
    loaded = codesign.load_build(root)
    feeds = {
        "x": np.ones((4, 32), np.float32),
        "attention_mask": nonlinear_models.padding_mask(4, 16, [3, 16, 1, 8]),
    }
    np.testing.assert_array_equal(loaded.simulate(feeds)["p"], build.simulate(feeds)["p"])
