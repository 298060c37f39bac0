"""Canonicalisation of what real exporters write: torch.onnx.export with dynamo=True (torch's
default) and dynamo=False (TorchScript), on small blocks and on tiny Hugging Face BERT, GPT-2
and Llama models built from a config with random weights (nothing downloaded).

Each test exports, loads through :func:`codesign.frontend.load.load_model` (shape inference,
canonicalisation, shape inference), asserts on the canonical graph's op counts, and checks that
onnxruntime computes the same outputs on the canonical model as on the exported one.
"""

from __future__ import annotations

import math
import warnings
from collections import Counter

import numpy as np
import onnx
import onnxruntime as ort
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from codesign.frontend.canonical import CANONICAL_OPSET  # noqa: E402
from codesign.frontend.load import load_model  # noqa: E402
from codesign.frontend.lower import lower_model  # noqa: E402
from codesign.kinds.movement import Movement  # noqa: E402

EXPORTERS = [pytest.param(True, id="dynamo"), pytest.param(False, id="torchscript")]

#: what exporters write for masks, position ids and shapes: nothing of it survives
NOISE = {
    "Shape",
    "ConstantOfShape",
    "Cast",
    "Range",
    "Equal",
    "Expand",
    "GatherElements",
    "Unsqueeze",
    "Squeeze",
    "Trilu",
    "Identity",
    "Constant",
    "IsNaN",  # the NaN guard of torch's attention export
    "Where",
}


def export(module, args, path, dynamo: bool, input_names) -> onnx.ModelProto:
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module.eval(),
            args,
            str(path),
            dynamo=dynamo,
            input_names=list(input_names),
            output_names=["y"],
            verbose=False,
        )
    return onnx.load(path)


def canonical(module, args, tmp_path, dynamo: bool, input_names=("x",)):
    """(exported model, canonical model, op counts of the canonical model); onnxruntime's
    outputs on both must agree."""
    path = tmp_path / "m.onnx"
    exported = export(module, args, path, dynamo, input_names)
    canon = load_model(path)
    feed = {n: a.numpy() for n, a in zip(input_names, args, strict=True)}
    want = ort.InferenceSession(exported.SerializeToString()).run(None, feed)[0]
    got = ort.InferenceSession(canon.SerializeToString()).run(None, feed)[0]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    assert {o.domain: o.version for o in canon.opset_import}[""] >= CANONICAL_OPSET
    return exported, canon, Counter(n.op_type for n in canon.graph.node)


X = (torch.randn(2, 8, 32),)


class LayerNormBlock(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(32, 32)
        self.ln = nn.LayerNorm(32)

    def forward(self, x):
        return self.ln(self.fc(x))


class ManualLayerNorm(nn.Module):
    """LayerNorm written out, as older model code does."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.linspace(0.5, 1.5, 32))
        self.b = nn.Parameter(torch.linspace(-1, 1, 32))

    def forward(self, x):
        mean = x.mean(-1, keepdim=True)
        var = (x - mean).pow(2).mean(-1, keepdim=True)
        return (x - mean) / torch.sqrt(var + 1e-5) * self.w + self.b


class Ffn(nn.Module):
    def __init__(self, act) -> None:
        super().__init__()
        self.up, self.down, self.act = nn.Linear(32, 64), nn.Linear(64, 32), act

    def forward(self, x):
        return self.down(self.act(self.up(x)))


def erf_gelu(x):
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


def tanh_gelu(x):  # GPT-2's NewGELUActivation
    return (
        0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))
    )


class Lambda(nn.Module):
    def __init__(self, fn) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


class LlamaRMSNorm(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(32, 32)
        self.weight = nn.Parameter(torch.linspace(0.5, 1.5, 32))

    def forward(self, x):
        x = self.fc(x)
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * self.weight


@pytest.mark.parametrize("dynamo", EXPORTERS)
@pytest.mark.parametrize("block", [LayerNormBlock, ManualLayerNorm])
def test_layernorm_is_one_op(block, dynamo, tmp_path) -> None:
    _, _, ops = canonical(block(), X, tmp_path, dynamo)
    assert ops["LayerNormalization"] == 1
    assert not {"ReduceMean", "Sqrt", "Div", "Pow", "Sub"} & set(ops)


@pytest.mark.parametrize("dynamo", EXPORTERS)
@pytest.mark.parametrize(
    ("act", "approximate"),
    [
        pytest.param(Lambda(erf_gelu), "none", id="erf"),
        pytest.param(Lambda(tanh_gelu), "tanh", id="tanh"),
        pytest.param(nn.GELU(), "none", id="nn.GELU"),
        pytest.param(nn.GELU(approximate="tanh"), "tanh", id="nn.GELU-tanh"),
    ],
)
def test_gelu_ffn_has_one_gelu(act, approximate, dynamo, tmp_path) -> None:
    _, canon, ops = canonical(Ffn(act), X, tmp_path, dynamo)
    assert ops["Gelu"] == 1
    assert not {"Erf", "Tanh", "Pow", "Div"} & set(ops)
    (gelu,) = [n for n in canon.graph.node if n.op_type == "Gelu"]
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in gelu.attribute}
    assert attrs.get("approximate", b"none") == approximate.encode()


@pytest.mark.parametrize("dynamo", EXPORTERS)
def test_llama_rmsnorm_is_one_op(dynamo, tmp_path) -> None:
    _, _, ops = canonical(LlamaRMSNorm(), X, tmp_path, dynamo)
    assert ops["RMSNormalization"] == 1
    assert not {"Pow", "ReduceMean", "Sqrt", "Reciprocal", "Div", "Mul"} & set(ops)


class FusedQkv(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.qkv = nn.Linear(32, 96)

    def forward(self, x):
        q, k, v = self.qkv(x).split(32, dim=-1)
        return q * k + v


@pytest.mark.parametrize("dynamo", EXPORTERS)
def test_fused_qkv_split_lowers_to_three_slices(dynamo, tmp_path) -> None:
    _, canon, ops = canonical(FusedQkv(), X, tmp_path, dynamo)
    assert ops["Split"] == 1 and not NOISE & set(ops)
    kg = lower_model(canon)
    slices = [op for op in kg.ops if isinstance(op, Movement)]
    assert [(s.fn, s.starts) for s in slices] == [
        ("slice", (0, 0, 0)),
        ("slice", (0, 0, 32)),
        ("slice", (0, 0, 64)),
    ]


class Embeddings(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.tok = nn.Embedding(100, 32)
        self.pos = nn.Embedding(64, 32)

    def forward(self, ids):
        return self.tok(ids) + self.pos(torch.arange(ids.shape[1]))


@pytest.mark.parametrize("dynamo", EXPORTERS)
def test_embedding_is_one_gather_and_position_ids_fold(dynamo, tmp_path) -> None:
    ids = (torch.randint(0, 100, (1, 16)),)
    _, canon, ops = canonical(Embeddings(), ids, tmp_path, dynamo, ("ids",))
    # the token lookup stays (ids are an input); the position lookup folds to a constant
    assert ops == Counter({"Gather": 1, "Add": 1})
    kg = lower_model(canon)
    (gather,) = [op for op in kg.ops if isinstance(op, Movement)]
    assert gather.fn == "gather" and gather.inputs[1] == "ids"


# -- Hugging Face models (tiny: hidden 64, 2 layers, 4 heads, sequence 16) ----------------------


def _hf(name: str):
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    common = dict(num_hidden_layers=2, num_attention_heads=4, vocab_size=100)
    if name == "bert":
        cfg = transformers.BertConfig(
            hidden_size=64, intermediate_size=128, max_position_embeddings=64, **common
        )
        model = transformers.BertModel(cfg)
    elif name == "gpt2":
        cfg = transformers.GPT2Config(
            n_embd=64, n_layer=2, n_head=4, vocab_size=100, n_positions=64
        )
        model = transformers.GPT2Model(cfg)
    else:
        cfg = transformers.LlamaConfig(
            hidden_size=64,
            intermediate_size=128,
            num_key_value_heads=4,
            max_position_embeddings=64,
            **common,
        )
        model = transformers.LlamaModel(cfg)
    model.eval()

    class Wrapper(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.m = model

        def forward(self, ids):
            return self.m(input_ids=ids).last_hidden_state

    return Wrapper()


#: expected fused ops per model (2 layers): BERT 5 LayerNorms (embeddings + 2 per layer) and a
#: GELU per layer; GPT-2 5 LayerNorms (2 per layer + final) and a tanh GELU per layer; Llama 5
#: RMSNorms (2 per layer + final)
FUSED = {
    "bert": {"LayerNormalization": 5, "Gelu": 2},
    "gpt2": {"LayerNormalization": 5, "Gelu": 2},
    "llama": {"RMSNormalization": 5},
}


@pytest.mark.parametrize("dynamo", EXPORTERS)
@pytest.mark.parametrize("name", ["bert", "gpt2", "llama"])
def test_hugging_face_models_canonicalise(name, dynamo, tmp_path) -> None:
    ids = (torch.randint(0, 100, (1, 16)),)
    exported, _, ops = canonical(_hf(name), ids, tmp_path, dynamo, ("ids",))
    before = Counter(n.op_type for n in exported.graph.node)
    assert not NOISE & set(ops), f"left over: {NOISE & set(ops)}"
    for op, n in FUSED[name].items():
        assert ops[op] == n, (op, ops)
    assert not {"Erf", "Tanh", "Pow", "ReduceMean", "Sqrt", "Reciprocal"} & set(ops)
    assert ops["Gather"] == 1  # the token embedding; position and token-type lookups folded
    assert sum(ops.values()) < sum(before.values())
