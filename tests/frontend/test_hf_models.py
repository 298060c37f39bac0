"""Whole Hugging Face models through codesign.compile and Build.simulate, against onnxruntime.

Tiny random-weight models built from configs (codesign.examples.hf_models; nothing downloaded):
a GPT-2 decoder (causal mask, tanh GELU, LayerNorm) and a Llama decoder (RMSNorm, SwiGLU, rotary
embeddings, causal mask), 2 layers, hidden 64, 4 heads, FFN 128, sequence 16; and a BERT encoder
(2 layers, hidden 256, 4 heads, FFN 1024, sequence 128, a padding mask over the last quarter).
Each is exported by both torch exporters (dynamo and TorchScript) and run in float and after
onnxruntime's quantizers at their defaults: quantize_static (QDQ per tensor and per channel),
quantize_dynamic (int8) and MatMulNBitsQuantizer (4 bits, at its default accuracy level and at
level 4).

The bar (issue 12): the final output's cosine to onnxruntime >= 0.999 (>= 0.99 with 4-bit
weights), and ``simulate --reference``'s fidelity check (README, "Fidelity") passes: for a
quantized output <= 1 LSB on >= 99 % of the elements. The reference is codesign's: onnxruntime
at ``basic`` on the build's self-contained model.onnx.

Not run, and why:
- GPT-2 with MatMulNBits: its Conv1D layers export as Gemm, which MatMulNBitsQuantizer leaves
  in float (it quantizes MatMul only) -- the model would be the float one;
- quantize_static on a TorchScript export: TorchScript folds the decoders' causal mask into a
  constant holding -inf, and builds BERT's padding mask with Where(..., -inf); the quantizer
  calibrates either into a scale of inf. The model is broken (onnxruntime's own output has
  lost the mask, or all attention); codesign refuses it in one line naming the scale
  (test_static_quantizer_breaks_torchscript_*).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import codesign
from codesign.errors import ModelError
from codesign.frontend.reference import run_onnxruntime
from codesign.runtime.fidelity import compare
from codesign.sim.functional import Simulator

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("onnxruntime")

from codesign.examples.hf_models import HfConfig, example_inputs, export_hf, quantize  # noqa: E402

DECODER = HfConfig(layers=2, hidden=64, heads=4, ffn=128, seq=16, vocab=100)
BERT = HfConfig(layers=2, hidden=256, heads=4, ffn=1024, seq=128, vocab=1000)
OUT = "last_hidden_state"

_exports: dict[tuple[str, bool], Path] = {}


def _exported(family: str, dynamo: bool, tmp_path_factory) -> Path:
    """The float export of ``family`` by one exporter, made once per session."""
    key = (family, dynamo)
    if key not in _exports:
        d = tmp_path_factory.mktemp(f"{family}_{'dynamo' if dynamo else 'torchscript'}")
        _exports[key] = export_hf(family, d / "float.onnx", _cfg(family), dynamo)
    return _exports[key]


def _cfg(family: str) -> HfConfig:
    return BERT if family == "bert" else DECODER


def _model(family: str, dynamo: bool, how: str, tmp_path_factory, tmp_path: Path) -> Path:
    src = _exported(family, dynamo, tmp_path_factory)
    if how == "float":
        return src
    return quantize(src, tmp_path / f"{how}.onnx", how, family, _cfg(family))


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def _reference(build: codesign.Build, feed: dict, tmp_path: Path, opt: str = "basic"):
    ref = tmp_path / "reference.onnx"  # the build's self-contained model.onnx
    ref.write_bytes(build.reference)
    return run_onnxruntime(ref, feed, opt)[OUT]


def _check(family: str, dynamo: bool, how: str, tmp_path_factory, tmp_path: Path):
    """Compile, simulate, compare with onnxruntime at the issue's bar; return the build, the
    inputs and the simulated output."""
    path = _model(family, dynamo, how, tmp_path_factory, tmp_path)
    build = codesign.compile(str(path), synth=False)
    feed = example_inputs(family, _cfg(family))
    sim = Simulator(build.plan, build.root)
    got = sim.run(feed)
    want = _reference(build, feed, tmp_path)
    bar = 0.99 if how.startswith("nbits") else 0.999
    assert _cosine(got[OUT], want) >= bar
    constants = {name: sim.data(f) for name, f in build.plan.constants.items()}
    (result,) = compare(build.plan, got, {OUT: want}, constants)
    assert result.passed, result
    kinds = [layer.kind for layer in build.plan.layers]
    if how == "nbits4_int8":  # every weight MatMul: Q, K, V, O and the FFN's (Llama: 3)
        per_layer = {"bert": 6, "llama": 7}[family]
        assert kinds.count("gemm_nbits") == per_layer * _cfg(family).layers, kinds
    return build, feed, got[OUT]


QUANT = ["float", "static", "static_per_channel", "dynamic"]
NBITS = ["nbits4", "nbits4_int8"]
EXPORTERS = [pytest.param(True, id="dynamo"), pytest.param(False, id="torchscript")]


def _causal(build: codesign.Build, feed: dict, got: np.ndarray) -> None:
    """Changing the last token changes no earlier position's output (the causal mask)."""
    ids = feed["input_ids"].copy()
    ids[0, -1] = (ids[0, -1] + 1) % DECODER.vocab
    other = build.simulate({"input_ids": ids})[OUT]
    np.testing.assert_array_equal(other[:, :-1], got[:, :-1])
    assert not np.array_equal(other[:, -1], got[:, -1])


@pytest.mark.parametrize("how", QUANT)
@pytest.mark.parametrize("dynamo", EXPORTERS)
def test_gpt2(how: str, dynamo: bool, tmp_path_factory, tmp_path: Path) -> None:
    if how.startswith("static") and not dynamo:
        pytest.skip("quantize_static breaks TorchScript's -inf causal mask (module doc)")
    build, feed, got = _check("gpt2", dynamo, how, tmp_path_factory, tmp_path)
    kinds = [layer.kind for layer in build.plan.layers]
    assert kinds.count("rownorm") == 7 and kinds.count("batched_matmul") == 4  # 5 LN, 2 softmax
    assert "host" not in kinds  # the NaN guard after a QDQ Softmax goes too
    if how == "float":
        _causal(build, feed, got)


@pytest.mark.parametrize("how", QUANT + NBITS)
@pytest.mark.parametrize("dynamo", EXPORTERS)
def test_llama(how: str, dynamo: bool, tmp_path_factory, tmp_path: Path) -> None:
    if how.startswith("static") and not dynamo:
        pytest.skip("quantize_static breaks TorchScript's -inf causal mask (module doc)")
    build, feed, got = _check("llama", dynamo, how, tmp_path_factory, tmp_path)
    fns = [getattr(layer, "fn", None) for layer in build.plan.layers]
    assert fns.count("softmax") == 2 and "host" not in [layer.kind for layer in build.plan.layers]
    # quantize_static puts QDQ between RMSNorm's ops (Pow, ReduceMean, Add, Sqrt, Div, Mul),
    # whose rounding is part of the model: they stay separate ops there
    assert fns.count("rmsnorm") == (0 if how.startswith("static") else 5)
    if how == "float":
        _causal(build, feed, got)


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_static_quantizer_breaks_torchscript_causal_mask(
    family: str, tmp_path_factory, tmp_path: Path
) -> None:
    """quantize_static on a TorchScript decoder calibrates the folded -inf causal mask into a
    scale of inf: onnxruntime's own output has lost the causal mask, and codesign refuses the
    model in one line naming the scale."""
    src = _exported(family, False, tmp_path_factory)
    path = quantize(src, tmp_path / "q.onnx", "static", family, DECODER)
    feed = example_inputs(family, DECODER)
    broken = run_onnxruntime(path, feed)[OUT]
    fine = run_onnxruntime(src, feed)[OUT]
    # the first position may attend only to itself; with the mask gone it attends to all
    assert _cosine(broken[0, 0], fine[0, 0]) < 0.9
    with pytest.raises(ModelError, match=r"quantisation scale .* must be finite and positive"):
        codesign.compile(str(path), synth=False)


def test_bert_float_padding_masks(tmp_path_factory, tmp_path: Path) -> None:
    """The BERT encoder in float (dynamo), and its padding mask really masks: the padded
    positions change no unpadded output, and dropping the mask changes them."""
    build, feed, got = _check("bert", True, "float", tmp_path_factory, tmp_path)
    ids = feed["input_ids"].copy()
    keep = BERT.seq - BERT.seq // 4
    ids[0, keep:] = (ids[0, keep:] + 1) % BERT.vocab
    other = build.simulate({"input_ids": ids, "attention_mask": feed["attention_mask"]})[OUT]
    np.testing.assert_array_equal(other[:, :keep], got[:, :keep])
    unmasked = build.simulate({"input_ids": feed["input_ids"], "attention_mask": 1 + 0 * ids})
    assert np.abs(unmasked[OUT][:, :keep] - got[:, :keep]).max() > 0.01


@pytest.mark.slow
@pytest.mark.parametrize(
    ("dynamo", "how"),
    [(True, h) for h in QUANT[1:] + NBITS] + [(False, h) for h in ["float", "dynamic", *NBITS]],
)
def test_bert(dynamo: bool, how: str, tmp_path_factory, tmp_path: Path) -> None:
    _check("bert", dynamo, how, tmp_path_factory, tmp_path)


@pytest.mark.slow
def test_static_quantizer_breaks_torchscript_bert_padding_mask(tmp_path_factory, tmp_path) -> None:
    """TorchScript's BERT builds its padding mask with Where(..., -inf): quantize_static
    calibrates a scale of inf, the dequantised mask is NaN everywhere, and torch's NaN guard
    then zeroes every attention probability -- onnxruntime's output no longer mixes positions
    (changing the first token changes no other position). codesign refuses the model in one
    line naming the scale."""
    src = _exported("bert", False, tmp_path_factory)
    path = quantize(src, tmp_path / "q.onnx", "static", "bert", BERT)
    feed = example_inputs("bert", BERT)
    other = dict(feed, input_ids=feed["input_ids"].copy())
    other["input_ids"][0, 0] = (other["input_ids"][0, 0] + 1) % BERT.vocab
    np.testing.assert_array_equal(
        run_onnxruntime(path, feed)[OUT][:, 1:], run_onnxruntime(path, other)[OUT][:, 1:]
    )
    assert not np.array_equal(run_onnxruntime(src, feed)[OUT], run_onnxruntime(src, other)[OUT])
    with pytest.raises(ModelError, match=r"quantisation scale .* must be finite and positive"):
        codesign.compile(str(path), synth=False)


@pytest.mark.parametrize("family", ["bert", "gpt2", "llama"])
def test_cli_compiles_and_simulates_with_its_own_inputs(
    family: str, cli, tmp_path_factory, tmp_path: Path
) -> None:
    """What a new user runs first: ``codesign compile`` (which simulates golden/ inputs) and
    ``codesign simulate --reference`` on the dynamo export, with no inputs given. Token ids are
    drawn below the embedding's rows (through GPT-2's reshape of input_ids) and BERT's
    attention_mask as 0/1, so both runs succeed and match onnxruntime."""
    src = _exported(family, True, tmp_path_factory)
    build = tmp_path / "build"
    r = cli("compile", src, "-o", build)
    assert r.code == 0, r.err
    golden = codesign.load_build(build)
    ins = codesign.api.random_inputs(golden.plan, 0)
    for name, x in ins.items():
        if name == "attention_mask":
            assert set(np.unique(x)) == {0, 1}
        else:
            assert x.min() >= 0 and x.max() < _cfg(family).vocab
    r = cli("simulate", build, "--reference")
    assert r.code == 0, r.out + r.err
    assert "fail" not in r.out
