"""The nonlinear lowerings on real exporters' output: torch.onnx.export (dynamo=True and the
TorchScript exporter, dynamo=False, at its default opset and at opset 16/17 where GELU and
LayerNorm come decomposed into Div/Erf/Add/Mul and ReduceMean/Sub/Pow/Sqrt/Div), onnxruntime's
quantize_static (QDQ, its defaults), and a padding mask built from an ``attention_mask`` input
that really masks. Each compiles through codesign.compile and simulates within the fidelity
tolerance of onnxruntime (codesign.runtime.fidelity), on the same inputs."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

import codesign
from codesign.errors import UnsupportedError
from codesign.examples import nonlinear_models
from codesign.runtime.fidelity import compare
from codesign.sim.functional import Simulator

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")

nn = torch.nn


def _ort(path, feeds):
    """onnxruntime on one thread at graph optimisation "basic", as codesign's reference run
    (higher levels fuse QDQ Softmax into QLinearSoftmax, a table-driven other arithmetic)."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    s = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in s.get_outputs()], s.run(None, feeds), strict=True))


def _check(path, feeds) -> codesign.Build:
    """Compile, simulate, compare with onnxruntime under the documented tolerances."""
    build = codesign.compile(str(path), synth=False)
    got = build.simulate(feeds)
    ref = _ort(path, feeds)
    sim = Simulator(build.plan)
    constants = {n: sim.data(f) for n, f in build.plan.constants.items()}
    results = compare(build.plan, got, ref, constants)
    assert all(r.passed for r in results), [(r.name, r.max_abs, r.criterion) for r in results]
    return build


def _export(module, args, path, dynamo: bool, names, opset: int | None = None):
    kw = {"opset_version": opset} if opset is not None else {}
    torch.onnx.export(
        module.eval(),
        args,
        str(path),
        dynamo=dynamo,
        input_names=names[0],
        output_names=names[1],
        **kw,
    )
    return path


def _mlp(kind: str) -> nn.Module:
    torch.manual_seed(0)
    if kind == "gelu":
        return nn.Sequential(nn.Linear(64, 256), nn.GELU(), nn.Linear(256, 64))
    if kind == "gelu_tanh":
        return nn.Sequential(nn.Linear(64, 256), nn.GELU(approximate="tanh"), nn.Linear(256, 64))
    if kind == "layernorm":
        return nn.Sequential(nn.Linear(64, 64), nn.LayerNorm(64), nn.Linear(64, 32))
    if kind == "softmax":
        return nn.Sequential(nn.Linear(64, 64), nn.Softmax(-1))
    if kind == "silu":
        return nn.Sequential(nn.Linear(64, 128), nn.SiLU(), nn.Linear(128, 64))
    if kind == "rmsnorm":
        return nn.Sequential(nn.Linear(64, 64), nn.RMSNorm(64, eps=1e-6), nn.Linear(64, 32))
    raise ValueError(kind)


KINDS = ("gelu", "gelu_tanh", "layernorm", "softmax", "silu")
X = np.random.default_rng(7).normal(size=(8, 64)).astype(np.float32)


def _layer_kinds(build) -> set[str]:
    return {layer.kind for layer in build.plan.layers}


@pytest.mark.parametrize("dynamo", [True, False], ids=["dynamo", "torchscript"])
@pytest.mark.parametrize("kind", KINDS)
def test_torch_mlp_compiles_and_matches_onnxruntime(tmp_path, kind, dynamo) -> None:
    path = _export(_mlp(kind), (torch.from_numpy(X),), tmp_path / "m.onnx", dynamo, (["x"], ["y"]))
    build = _check(path, {"x": X})
    assert _layer_kinds(build) & {"nonlinear", "rownorm"}


@pytest.mark.parametrize("kind", ["gelu", "gelu_tanh", "layernorm"])
def test_torchscript_decomposed_forms(tmp_path, kind) -> None:
    """TorchScript at opset 16 writes GELU as Div/Erf/Add/Mul/Mul (tanh form with Pow/Tanh) and
    LayerNorm as ReduceMean/Sub/Pow/Sqrt/Div: canonicalisation fuses what it recognises (the
    LayerNorm into a row norm), the element-wise lowerings take the rest as written."""
    path = _export(
        _mlp(kind), (torch.from_numpy(X),), tmp_path / "m.onnx", False, (["x"], ["y"]), 16
    )
    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    assert {"Gelu", "LayerNormalization"}.isdisjoint(ops)
    build = _check(path, {"x": X})
    assert ("rownorm" if kind == "layernorm" else "nonlinear") in _layer_kinds(build)


def test_rmsnorm_dynamo(tmp_path) -> None:
    path = _export(
        _mlp("rmsnorm"), (torch.from_numpy(X),), tmp_path / "m.onnx", True, (["x"], ["y"])
    )
    _check(path, {"x": X})


class _Reader:
    def __init__(self) -> None:
        rng = np.random.default_rng(3)
        self.it = iter([{"x": rng.normal(size=(8, 64)).astype(np.float32)} for _ in range(4)])

    def get_next(self):
        return next(self.it, None)


@pytest.mark.parametrize("kind", KINDS)
def test_quantize_static_qdq_around_nonlinear_ops(tmp_path, kind) -> None:
    """onnxruntime's quantize_static (QDQ, per tensor, int8: its defaults) puts Q/DQ around the
    nonlinear ops; they run in float between the dequantisation and the quantisation."""
    from onnxruntime.quantization import quantize_static

    src = _export(_mlp(kind), (torch.from_numpy(X),), tmp_path / "f.onnx", True, (["x"], ["y"]))
    q = tmp_path / "q.onnx"
    quantize_static(str(src), str(q), _Reader())
    ops = {n.op_type for n in onnx.load(str(q)).graph.node}
    assert "DequantizeLinear" in ops
    build = _check(q, {"x": X})
    assert _layer_kinds(build) & {"nonlinear", "rownorm"}


S = 16


class _AdditiveMask(nn.Module):
    """scores + (1 - mask) * finfo.min, softmax: the BERT-style padding mask."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.score, self.out = nn.Linear(32, S), nn.Linear(S, 32)

    def forward(self, x, attention_mask):
        m = (1.0 - attention_mask[:, None, :].to(torch.float32)) * torch.finfo(torch.float32).min
        p = torch.softmax(self.score(x) + m, -1)
        return self.out(p), p


class _FillMask(_AdditiveMask):
    """masked_fill(mask == 0, -inf): Equal and Where with an infinite fill value."""

    def forward(self, x, attention_mask):
        s = self.score(x).masked_fill(attention_mask[:, None, :] == 0, float("-inf"))
        p = torch.softmax(s, -1)
        return self.out(p), p


@pytest.mark.parametrize("dynamo", [True, False], ids=["dynamo", "torchscript"])
@pytest.mark.parametrize("cls", [_AdditiveMask, _FillMask])
def test_padding_mask_from_attention_mask_really_masks(tmp_path, cls, dynamo) -> None:
    x = torch.randn(2, S, 32, generator=torch.Generator().manual_seed(1))
    am = torch.from_numpy(nonlinear_models.padding_mask(2, S, [13, 10]))
    path = _export(
        cls(), (x, am), tmp_path / "m.onnx", dynamo, (["x", "attention_mask"], ["y", "p"])
    )
    feeds = {"x": x.numpy(), "attention_mask": am.numpy()}
    build = _check(path, feeds)
    p = build.simulate(feeds)["p"]
    assert np.all(p[0, :, 13:] == 0) and np.all(p[1, :, 10:] == 0)
    assert np.all(p[1, :, :10] > 0)
    np.testing.assert_allclose(p.sum(-1), 1, atol=1e-5)
    # a different mask gives a different answer: the mask is an input, not folded
    other = dict(feeds, attention_mask=nonlinear_models.padding_mask(2, S, [S, S]))
    assert np.all(build.simulate(other)["p"] > 0)


def test_masked_norm_block_example(tmp_path) -> None:
    """The hand-built example: every nonlinear op family and the Equal/Where mask."""
    path = nonlinear_models.masked_norm_block(tmp_path / "m.onnx")
    mask = nonlinear_models.padding_mask(4, 16, [16, 10, 5, 1])
    feeds = {
        "x": np.random.default_rng(1).normal(size=(4, 32)).astype(np.float32),
        "attention_mask": mask,
    }
    build = _check(path, feeds)
    p = build.simulate(feeds)["p"]
    assert np.array_equal(p == 0, mask == 0)
    report = build.report()
    rows = {e["name"]: e for e in report["layers"]}
    for name in ("ln", "gelu", "softmax", "mask"):
        assert rows[name]["placement"] in ("pl", "aie")
        assert rows[name]["unit"] == rows[name]["placement"]
        assert rows[name]["cycles"] > 0
        assert set(rows[name]["placement_options_s"]) == {"pl", "aie"}
        chosen = rows[name]["placement_options_s"][rows[name]["placement"]]
        assert chosen == min(rows[name]["placement_options_s"].values())


def _single_node_model(tmp_path, node, inputs, outputs, inits=(), opset=20):
    from onnx import helper

    graph = helper.make_graph([node], "g", inputs, outputs, list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 10
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    return path


def test_refusals_name_the_node(tmp_path) -> None:
    from onnx import TensorProto, helper, numpy_helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 8])
    path = _single_node_model(
        tmp_path, helper.make_node("Softmax", ["x"], ["y"], name="sm0", axis=0), [x], [y]
    )
    with pytest.raises(UnsupportedError, match=r"Softmax 'sm0' \('sm0': Softmax over axis 0"):
        codesign.compile(str(path), synth=False, strict=True)
    p = numpy_helper.from_array(np.array(1.7, np.float32), "p")
    path = _single_node_model(
        tmp_path, helper.make_node("Pow", ["x", "p"], ["y"], name="pw"), [x], [y], [p]
    )
    with pytest.raises(UnsupportedError, match=r"Pow 'pw' \('pw': Pow exponent must be one of"):
        codesign.compile(str(path), synth=False, strict=True)


def _ms_model(tmp_path, nodes, inits, n_in: int = 1, opset: int = 23):
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info(f"x{i}", TensorProto.FLOAT, [4, 16]) for i in range(n_in)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 16])],
        [numpy_helper.from_array(v, k) for k, v in inits.items()],
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", opset), helper.make_opsetid("com.microsoft", 1)],
    )
    model.ir_version = 10
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize(
    ("op", "domain", "inputs", "attrs"),
    [
        ("Gelu", "com.microsoft", ["x0"], {}),
        ("FastGelu", "com.microsoft", ["x0", "bias"], {}),
        ("SkipLayerNormalization", "com.microsoft", ["x0", "x1", "gamma", "beta", "bias"], {}),
        ("RMSNormalization", "", ["x0", "gamma"], {"epsilon": 1e-6}),
        ("LayerNormalization", "", ["x0", "gamma"], {"epsilon": 1e-5}),
        ("Gelu", "", ["x0"], {"approximate": "tanh"}),
    ],
)
def test_hand_built_norm_and_gelu_forms(tmp_path, op, domain, inputs, attrs) -> None:
    """The com.microsoft fused forms onnxruntime's transformer optimiser writes, and the opset
    20/23 standard ops, against onnxruntime."""
    from onnx import helper

    rng = np.random.default_rng(5)
    inits = {
        "gamma": rng.normal(1, 0.3, 16).astype(np.float32),
        "beta": rng.normal(0, 0.3, 16).astype(np.float32),
        "bias": rng.normal(0, 0.3, 16).astype(np.float32),
    }
    inits = {k: v for k, v in inits.items() if k in inputs}
    node = helper.make_node(op, inputs, ["y"], domain=domain, name="n0", **attrs)
    n_in = sum(1 for i in inputs if i.startswith("x"))
    path = _ms_model(tmp_path, [node], inits, n_in)
    feeds = {f"x{i}": rng.normal(0, 2, (4, 16)).astype(np.float32) for i in range(n_in)}
    build = _check(path, feeds)
    assert _layer_kinds(build) & {"nonlinear", "rownorm"}


def _additive_mask_model(path):
    """scores + causal (0 on and below the diagonal, -inf above) -> Softmax: the constant
    mask TorchScript folds out of a decoder's Where."""
    from onnx import TensorProto, helper, numpy_helper

    mask = np.triu(np.full((8, 8), -np.inf, np.float32), 1)
    g = helper.make_graph(
        [
            helper.make_node("Add", ["x", "mask"], ["s"]),
            helper.make_node("Softmax", ["s"], ["y"], axis=-1),
        ],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 8, 8])],
        [numpy_helper.from_array(mask, "mask")],
    )
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def test_additive_inf_mask_into_softmax(tmp_path) -> None:
    """A constant holding -inf may be added to scores that go only into Softmax (the causal
    mask): it compiles, and each row's masked positions get probability 0. Elsewhere (into
    Relu) an infinite constant is still refused, naming it."""
    path = _additive_mask_model(tmp_path / "m.onnx")
    x = np.random.default_rng(0).standard_normal((1, 2, 8, 8)).astype(np.float32)
    build = _check(path, {"x": x})
    y = build.simulate({"x": x})["y"]
    assert np.all(y[..., np.triu_indices(8, 1)[0], np.triu_indices(8, 1)[1]] == 0)
    bad = tmp_path / "relu.onnx"
    g = onnx.load(str(_additive_mask_model(tmp_path / "r.onnx")))
    g.graph.node[1].op_type = "Relu"
    del g.graph.node[1].attribute[:]
    onnx.save(g, str(bad))
    with pytest.raises(codesign.errors.ModelError, match="initializer 'mask'.*finite numbers"):
        codesign.compile(str(bad), synth=False)
