"""The KernelGraph's use-lists: exact under every mutation the passes do, and checked by
validate()."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from codesign.ir.graph import GraphInvariantError, KernelGraph, Op, TensorType, Vector


def _chain(n: int) -> KernelGraph:
    kg = KernelGraph(inputs=["x"], outputs=[f"t{n - 1}"])
    kg.add_const("c", np.ones(4, np.float32))
    prev = "x"
    for i in range(n):
        kg.types[f"t{i}"] = TensorType((4,), "float32")
        fn, ins = ("add", (prev, "c")) if i % 2 else ("relu", (prev,))
        kg.append(Vector(f"v{i}", ins, (f"t{i}",), fn=fn))
        prev = f"t{i}"
    kg.types["x"] = TensorType((4,), "float32")
    return kg


def _recomputed(kg: KernelGraph) -> tuple[dict[str, int], dict[str, list[int]]]:
    producers, users = {}, {}
    for op in kg.ops:
        for t in op.outputs:
            producers[t] = id(op)
        for t in dict.fromkeys(op.inputs):
            users.setdefault(t, []).append(id(op))
    return producers, users


def _check(kg: KernelGraph) -> None:
    kg.validate()
    producers, users = _recomputed(kg)
    names = set(producers) | set(users) | set(kg.types)
    for t in names:
        p = kg.producer(t)
        assert (id(p) if p else None) == producers.get(t)
        assert sorted(map(id, kg.consumers(t))) == sorted(users.get(t, []))
        assert kg.num_consumers(t) == len(users.get(t, []))


def test_use_lists_follow_random_mutations() -> None:
    rng = np.random.default_rng(0)
    kg = _chain(40)
    fresh = 0
    for _ in range(300):
        ops = kg.ops
        op = ops[rng.integers(len(ops))]
        action = rng.integers(5)
        if action == 0:  # a new user of op's output, right after it
            fresh += 1
            t = kg.fresh_name(f"u{fresh}")
            kg.types[t] = TensorType((4,), "float32")
            kg.insert_after(op, [Vector(t, (op.outputs[0],), (t,), fn="relu")])
            kg.outputs.append(t)
        elif action == 1:  # the same op, rebuilt (a pass replacing it by an equal new object)
            kg.replace(op, dataclasses.replace(op))
        elif action == 2 and not kg.consumers(op.outputs[0]):  # a leaf goes
            kg.remove(op)
            kg.outputs = [t for t in kg.outputs if t != op.outputs[0]]
        elif action == 3 and op.inputs[0] != "x":  # route op's users to op's input
            kg.rename_uses(op.outputs[0], op.inputs[0])
        elif action == 4:  # two ops for one, before it
            fresh += 1
            t = kg.fresh_name(f"p{fresh}")
            kg.types[t] = TensorType((4,), "float32")
            first = Vector(f"{t}a", op.inputs, (t,), fn=op.fn, attrs=op.attrs)
            kg.replace(op, (first, Vector(f"{t}b", (t,), op.outputs, fn="relu")))
        if not kg.outputs:
            kg.outputs = [kg.ops[-1].outputs[0]]
        _check(kg)
    kg.prune()
    _check(kg)


def test_rename_uses_renames_inputs_and_graph_outputs() -> None:
    kg = _chain(4)
    assert kg.rename_uses("t1", "t0") == 1 and kg.consumers("t1") == []
    assert [op.name for op in kg.consumers("t0")] == ["v1", "v2"]
    assert kg.rename_uses("t3", "t2") == 0 and kg.outputs == ["t2"]
    _check(kg)


def test_ops_is_a_read_only_snapshot() -> None:
    kg = _chain(3)
    ops = kg.ops
    assert isinstance(ops, tuple) and kg.ops is ops  # cached until a mutation
    with pytest.raises(AttributeError):
        kg.ops.append(ops[0])  # type: ignore[attr-defined]
    kg.remove(ops[2])
    assert kg.ops == ops[:2] and ops[2] not in kg


def test_ops_are_identified_by_object_not_value() -> None:
    kg = _chain(2)
    twin = dataclasses.replace(kg.ops[0])
    assert twin == kg.ops[0] and twin not in kg
    with pytest.raises(GraphInvariantError, match="not in the graph"):
        kg.remove(twin)
    with pytest.raises(GraphInvariantError, match="already in the graph"):
        kg.append(kg.ops[0])


def _broken(kind: str) -> KernelGraph:
    kg = _chain(3)
    if kind == "stale use-list":
        del kg._users["t0"]
    elif kind == "stale producer":
        del kg._producer["t1"]
    elif kind == "extra user":
        kg._users["t2"] = kg.ops[0]  # v0 does not read t2
    elif kind == "extra producer":
        kg._producer["ghost"] = kg.ops[0]
    elif kind == "use before definition":
        kg.ops = [kg.ops[1], kg.ops[0], kg.ops[2]]
    elif kind == "defined twice":
        kg.append(Vector("again", ("x",), ("t1",), fn="relu"))
    elif kind == "untyped":
        del kg.types["t1"]
    elif kind == "output not produced":
        kg.outputs.append("nowhere")
    return kg


@pytest.mark.parametrize(
    "kind, message",
    [
        ("stale use-list", "use-list of tensor t0 is stale"),
        ("stale producer", "producer of tensor t1 is stale"),
        ("extra user", "use-list of tensor t2 is stale"),
        ("extra producer", "producer of tensor ghost is stale"),
        ("use before definition", "input t0 used before it is defined"),
        ("defined twice", "output t1 is already defined"),
        ("untyped", "tensor t1 has no type"),
        ("output not produced", "graph output nowhere is not produced"),
    ],
)
def test_validate_catches(kind: str, message: str) -> None:
    with pytest.raises(GraphInvariantError, match=message):
        _broken(kind).validate()


def test_neighbour_queries_on_a_long_chain() -> None:
    kg = _chain(2000)
    mid: Op = kg.ops[1000]
    assert kg.producer(mid.inputs[0]) is kg.ops[999]
    assert kg.consumers(mid.outputs[0]) == [kg.ops[1001]]
    assert kg.num_consumers("c") == 1000


def test_fresh_name_gives_the_first_free_name() -> None:
    kg = KernelGraph(inputs=[], outputs=[], reserved={"w", "w_2"})
    kg.types["w_1"] = TensorType((), "float32")  # taken, but not reserved: may be freed
    assert [kg.fresh_name("w") for _ in range(3)] == ["w_3", "w_4", "w_5"]
    del kg.types["w_1"]
    assert kg.fresh_name("w") == "w_1"  # the same answer as a search from w, w_1, ...
    assert kg.fresh_name("w") == "w_6"
    names = [kg.fresh_name("q_zero_point") for _ in range(5000)]
    assert len(set(names)) == 5000 and names[-1] == "q_zero_point_4999"
