"""Host partitions (issue 12 item 7): ONNX nodes the accelerator does not take run on the ARM
cores through onnxruntime, in the simulator as on the board; --strict refuses them.

Hand-built graphs test the partitioning rules; torch exports (TransformerEncoderLayer from both
exporters, an LSTM) test what real tools write.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import codesign
from codesign.api import random_inputs
from codesign.codegen.build import CompileOptions, compile_model
from codesign.errors import ModelError, UnsupportedError
from codesign.examples import models
from codesign.frontend import load_model, lower_model
from codesign.frontend.reference import run_onnxruntime
from codesign.ir.host import Host
from codesign.runtime.fidelity import compare
from codesign.sim.functional import Simulator

OPTS = CompileOptions(synth=False, solver_time_limit=0.5)


def _save(path: Path, nodes, inputs, outputs, inits=(), opsets=(("", 21),)) -> Path:
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets])
    model.ir_version = 10
    onnx.save(model, path)
    return path


def _vi(name: str, shape, t=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, t, list(shape))


def _weight(name: str, k: int, n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    return numpy_helper.from_array((rng.standard_normal((k, n)) / 4).astype(np.float32), name)


def _check_fidelity(model: Path, tmp: Path, seed: int = 3):
    """Compile to a build, simulate it from disk, compare with onnxruntime on the build's own
    model.onnx (the CLI's ``simulate --reference``); return the plan."""
    plan = compile_model(model, tmp / "b", OPTS)
    sim = Simulator(tmp / "b")
    inputs = random_inputs(plan, seed)
    env = sim.run_all(inputs)
    outputs = {t.name: env[t.name] for t in plan.outputs}
    constants = {n: sim.data(f) for n, f in plan.constants.items()}
    results = compare(plan, outputs, run_onnxruntime(tmp / "b" / "model.onnx", inputs), constants)
    assert results and all(r.passed for r in results), results
    return plan


def _host_ops(model: Path) -> list[Host]:
    return [op for op in lower_model(load_model(model)).ops if isinstance(op, Host)]


# -- partitioning rules on hand-built graphs ---------------------------------------------------


def test_unsupported_op_runs_on_the_host_and_matches_onnxruntime(tmp_path: Path) -> None:
    model = models.unsupported_op_model(tmp_path / "u.onnx")
    plan = _check_fidelity(model, tmp_path)
    assert [layer.kind for layer in plan.layers] == ["gemm", "host"]
    host = plan.layers[1]
    assert host.nodes == (models.UNSUPPORTED_NODE_NAME,)
    assert host.model.path == "host/partition_0.onnx"
    # the partition is a self-contained model in the build, indexed for the board's host program
    sub = onnx.load_from_string((tmp_path / "b" / host.model.path).read_bytes())
    onnx.checker.check_model(sub, full_check=True)
    assert [n.op_type for n in sub.graph.node] == [models.UNSUPPORTED_OP_TYPE]
    assert [i.name for i in sub.graph.input] == ["scores"]
    assert {t.name for t in sub.graph.initializer} == {"k"}  # the constant goes inside
    index = json.loads((tmp_path / "b" / "host" / "partitions.json").read_text())
    assert index["partitions"][0]["nodes"][0]["name"] == models.UNSUPPORTED_NODE_NAME
    # the build reloads and simulates the same
    build = codesign.load_build(tmp_path / "b")
    inputs = random_inputs(plan, 1)
    again = build.simulate(inputs)
    for k, v in Simulator(tmp_path / "b").run(inputs).items():
        np.testing.assert_array_equal(again[k], v)


def test_connected_unsupported_nodes_form_one_partition(tmp_path: Path) -> None:
    """Sin -> Cos is one partition; an independent Sin later is its own; Relu between them
    runs on the PL and reads the first partition's output."""
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["a"], name="fc"),
        helper.make_node("Sin", ["a"], ["b"], name="sin"),
        helper.make_node("Cos", ["b"], ["c"], name="cos"),
        helper.make_node("Relu", ["c"], ["d"], name="relu"),
        helper.make_node("Sin", ["x"], ["e"], name="sin2"),
        helper.make_node("Add", ["d", "e2"], ["y"], name="add"),
        helper.make_node("MatMul", ["e", "w2"], ["e2"], name="fc2"),
    ]
    # keep the node list in topological order (fc2 reads sin2's output)
    nodes = [nodes[0], nodes[1], nodes[2], nodes[3], nodes[4], nodes[6], nodes[5]]
    model = _save(
        tmp_path / "m.onnx",
        nodes,
        [_vi("x", (4, 8))],
        [_vi("y", (4, 8))],
        [_weight("w", 8, 8), _weight("w2", 8, 8, 1)],
    )
    host = sorted(_host_ops(model), key=lambda h: h.nodes)
    assert [h.nodes for h in host] == [("sin", "cos"), ("sin2",)]
    assert host[0].inputs == ("a",) and host[0].outputs == ("c",)
    plan = _check_fidelity(model, tmp_path)
    assert [layer.kind for layer in plan.layers].count("host") == 2


def test_a_refused_form_goes_to_the_host_with_its_reason(tmp_path: Path) -> None:
    """Softmax over the first axis: its lowering raises UnsupportedError (only the last axis
    runs on the accelerator); the message is the reason, and what the lowering emitted is taken
    back. The GEMMs around it stay on the AIE."""
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["a"], name="q"),
        helper.make_node("Softmax", ["a"], ["s"], name="colsoftmax", axis=0),
        helper.make_node("MatMul", ["s", "w2"], ["y"], name="out"),
    ]
    model = _save(
        tmp_path / "m.onnx",
        nodes,
        [_vi("x", (4, 8))],
        [_vi("y", (4, 8))],
        [_weight("w", 8, 8), _weight("w2", 8, 8, 1)],
    )
    (host,) = _host_ops(model)
    assert host.nodes == ("colsoftmax",)
    assert "axis" in host.reasons[0], host.reasons
    plan = _check_fidelity(model, tmp_path)
    assert [layer.kind for layer in plan.layers] == ["gemm", "host", "gemm"]


def test_a_bool_mask_from_the_host_feeds_the_accelerator(tmp_path: Path) -> None:
    """Greater has no lowering: it runs on the Host and its BOOL mask crosses to the
    accelerator, which carries BOOL as uint8 0/1 (the Cast and Mul run on the PL)."""
    nodes = [
        helper.make_node("Greater", ["x", "zero"], ["mask"], name="gt"),
        helper.make_node("Cast", ["mask"], ["maskf"], name="cast", to=TensorProto.FLOAT),
        helper.make_node("Mul", ["x", "maskf"], ["y"], name="mul"),
    ]
    model = _save(
        tmp_path / "m.onnx",
        nodes,
        [_vi("x", (4, 8))],
        [_vi("y", (4, 8))],
        [numpy_helper.from_array(np.zeros((), np.float32), "zero")],
    )
    (host,) = _host_ops(model)
    assert host.nodes == ("gt",) and host.outputs == ("mask",)
    _check_fidelity(model, tmp_path)


def test_com_microsoft_ops_keep_their_opset(tmp_path: Path) -> None:
    nodes = [
        # x + 4 I (an exact PL add) is well conditioned: the inverse does not amplify rounding
        helper.make_node("Add", ["x", "w"], ["a"], name="add"),
        helper.make_node("Inverse", ["a"], ["y"], name="inv", domain="com.microsoft"),
    ]
    model = _save(
        tmp_path / "m.onnx",
        nodes,
        [_vi("x", (8, 8))],
        [_vi("y", (8, 8))],
        [numpy_helper.from_array(np.eye(8, dtype=np.float32) * 4, "w")],
        opsets=(("", 21), ("com.microsoft", 1)),
    )
    (host,) = _host_ops(model)
    assert host.op_types == ("com.microsoft.Inverse",)
    sub = onnx.load_from_string(host.model)
    assert {o.domain for o in sub.opset_import} >= {"", "com.microsoft"}
    _check_fidelity(model, tmp_path)


def test_ops_the_passes_cannot_map_go_to_the_host(tmp_path: Path) -> None:
    """An int32 MatMul lowers to a primitive MatMul that no pass maps (no AIE mode multiplies
    int32): the compile places its node on the Host and lowers again."""
    w = numpy_helper.from_array(np.arange(32, dtype=np.int32).reshape(8, 4) - 10, "w")
    nodes = [
        helper.make_node("Cast", ["x"], ["xi"], name="cast", to=TensorProto.INT32),
        helper.make_node("MatMul", ["xi", "w"], ["yi"], name="imm"),
        helper.make_node("Cast", ["yi"], ["y"], name="cast2", to=TensorProto.FLOAT),
    ]
    model = _save(tmp_path / "m.onnx", nodes, [_vi("x", (4, 8))], [_vi("y", (4, 4))], [w])
    assert _host_ops(model) == []  # the lowering alone takes the MatMul
    plan = _check_fidelity(model, tmp_path)
    (layer,) = [layer for layer in plan.layers if layer.kind == "host"]
    assert layer.nodes == ("imm",) and "passes" in layer.reasons[0]
    with pytest.raises(UnsupportedError, match="'imm'"):
        codesign.compile(model, synth=False, strict=True)


def test_model_errors_stay_errors(tmp_path: Path) -> None:
    """A lowering's ModelError (bad values) is not hidden on the Host."""
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"], name="q"),
        helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"], name="dq"),
    ]
    model = _save(
        tmp_path / "m.onnx",
        nodes,
        [_vi("x", (4, 8))],
        [_vi("y", (4, 8))],
        [
            numpy_helper.from_array(np.asarray(-1.0, np.float32), "s"),
            numpy_helper.from_array(np.asarray(0, np.int8), "z"),
        ],
    )
    with pytest.raises(ModelError, match="finite and positive"):
        lower_model(load_model(model))


def test_empty_constants_are_accepted(tmp_path: Path) -> None:
    """A zero-length Constant (exporters write them, e.g. BERT's) is legal ONNX: it loads, the
    canonicalisation folds the Concat with it away, and the model matches onnxruntime."""
    empty = helper.make_tensor("e", TensorProto.FLOAT, [4, 0], [])
    nodes = [
        helper.make_node("Constant", [], ["empty"], name="c_empty", value=empty),
        helper.make_node("MatMul", ["x", "w"], ["a"], name="fc"),
        helper.make_node("Concat", ["a", "empty"], ["y"], name="cat", axis=1),
    ]
    model = _save(
        tmp_path / "m.onnx", nodes, [_vi("x", (4, 8))], [_vi("y", (4, 8))], [_weight("w", 8, 8)]
    )
    assert _host_ops(model) == []
    _check_fidelity(model, tmp_path)


def test_empty_shape_argument_folds(tmp_path: Path) -> None:
    """An empty int64 initializer as a shape argument (Reshape to a scalar) is accepted."""
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["a"], name="fc"),
        helper.make_node("ReduceSum", ["a"], ["s"], name="sum", keepdims=0),
        helper.make_node("Reshape", ["s", "shape"], ["r"], name="to_scalar"),
        helper.make_node("Add", ["a", "r"], ["y"], name="add"),
    ]
    model = _save(
        tmp_path / "m.onnx",
        nodes,
        [_vi("x", (4, 8))],
        [_vi("y", (4, 8))],
        [_weight("w", 8, 8), numpy_helper.from_array(np.zeros((0,), np.int64), "shape")],
    )
    _check_fidelity(model, tmp_path)


# -- --strict ------------------------------------------------------------------------------------


def test_strict_refuses_host_partitions_naming_the_nodes(cli, tmp_path: Path) -> None:
    model = models.unsupported_op_model(tmp_path / "u.onnx")
    with pytest.raises(UnsupportedError, match=repr(models.UNSUPPORTED_NODE_NAME)):
        codesign.compile(model, synth=False, strict=True)
    r = cli("compile", model, "-o", tmp_path / "b", "--strict", "--no-synth")
    assert r.code == 2 and not (tmp_path / "b").exists()
    lines = r.err.strip().splitlines()
    assert len(lines) == 1 and "--strict" in lines[0]
    assert f"{models.UNSUPPORTED_OP_TYPE} {models.UNSUPPORTED_NODE_NAME!r}" in lines[0]
    r = cli("compile", model, "-o", tmp_path / "b", "--no-synth")
    assert r.code == 0 and "Host partition" in r.out


def test_report_shows_placement_and_transfers(cli, tmp_path: Path) -> None:
    model = models.unsupported_op_model(tmp_path / "u.onnx")
    build = codesign.compile(model, synth=False)
    report = build.report()
    p = report["placement"]
    assert {"node": "topk0", "unit": "Host", "layer": "host_partition_0"} in p["nodes"]
    assert p["units"] == {"AIE": 1, "Host": 1}
    (part,) = p["host_partitions"]
    assert part["transfer_bytes"] == (4 * 8 + 2 * 4 * 3) * 4 - 4 * 3 * 4 + 4 * 3 * 8
    assert part["transfer_s"] > 0 and part["compute_s"] > 0 and p["label"] == "modelled"
    host_layer = next(x for x in report["layers"] if x["unit"] == "host")
    assert host_layer["label"] == "modelled" and host_layer["host_nodes"] == ["topk0"]
    build.save(tmp_path / "b")
    html = (tmp_path / "b" / "report" / "report.html").read_text()
    assert 'id="host-partitions"' in html and "topk0" in html
    r = cli("report", tmp_path / "b")
    assert r.code == 0 and "Host partitions" in r.out and "where the nodes run" in r.out


# -- real exporters ------------------------------------------------------------------------------

torch = pytest.importorskip("torch")


class _Encoder(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.TransformerEncoderLayer(
            d_model=64, nhead=4, dim_feedforward=128, batch_first=True
        )

    def forward(self, x):
        # is_causal given as a bool: TorchScript's tracer otherwise passes it as a tensor
        return self.layer(x, is_causal=False)


@pytest.mark.parametrize("dynamo", [True, False], ids=["dynamo", "torchscript"])
def test_transformer_encoder_layer_compiles_and_matches(dynamo: bool, tmp_path: Path) -> None:
    torch.manual_seed(0)
    module = _Encoder().eval()
    path = tmp_path / "enc.onnx"
    torch.onnx.export(
        module,
        (torch.randn(1, 8, 64),),
        str(path),
        dynamo=dynamo,
        input_names=["x"],
        output_names=["y"],
    )
    plan = _check_fidelity(path, tmp_path)
    kinds = [layer.kind for layer in plan.layers]
    # the projections and the FFN on the AIE block, QK^T and attention x V as batched products;
    # with canonicalisation, the nonlinear kinds and the movement ops nothing is left for the
    # Host (it took the attention, norms and reshuffles before those kinds existed)
    assert kinds.count("gemm") >= 3 and kinds.count("batched_matmul") == 2
    assert "host" not in kinds, kinds


class _Lstm(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm = torch.nn.LSTM(16, 32, batch_first=True)
        self.fc = torch.nn.Linear(32, 8)

    def forward(self, x):
        y, _ = self.lstm(x)
        return self.fc(y)


@pytest.mark.parametrize("dynamo", [True, False], ids=["dynamo", "torchscript"])
def test_lstm_runs_on_the_host(cli, dynamo: bool, tmp_path: Path) -> None:
    torch.manual_seed(0)
    path = tmp_path / "lstm.onnx"
    torch.onnx.export(
        _Lstm().eval(), (torch.randn(1, 5, 16),), str(path), dynamo=dynamo, input_names=["x"]
    )
    plan = _check_fidelity(path, tmp_path)
    host = [layer for layer in plan.layers if layer.kind == "host"]
    assert any("LSTM" in layer.op_types for layer in host)
    assert any(layer.kind == "gemm" for layer in plan.layers)  # the Linear after it
    r = cli("inspect", path, "--json")
    data = json.loads(r.out)
    lstm = [n for n in data["nodes"] if n["op_type"] == "LSTM"]
    assert lstm and lstm[0]["unit"] == "Host" and "LSTM" in data["blockers"]
