"""Tiny Hugging Face transformers built from a config with random weights (nothing downloaded),
exported by torch's exporters, and quantized by onnxruntime's quantizers: the test and bench
models of issue 12 ("Real transformers from real exporters").

- :func:`export_hf` writes a ``BertModel`` encoder (inputs ``input_ids`` and ``attention_mask``,
  a padding mask that masks the last quarter of the sequence), a ``GPT2Model`` decoder or a
  ``LlamaModel`` decoder (input ``input_ids``; the causal mask, and for Llama the rotary
  embeddings, are built inside the model), output ``last_hidden_state``, with
  ``torch.onnx.export`` (``dynamo`` True: torch's default exporter; False: TorchScript).
- :func:`quantize` applies one of onnxruntime's quantizers at its defaults: ``static`` (QDQ, per
  tensor), ``static_per_channel`` (QDQ, per-channel weights), ``dynamic``
  (``quantize_dynamic``, int8 weights), ``nbits4`` (``MatMulNBitsQuantizer``, 4-bit weights,
  its default accuracy level: float compute) or ``nbits4_int8`` (the same at accuracy level 4:
  int8 activations). MatMulNBitsQuantizer quantizes MatMul nodes only: a model whose linear
  layers export as Gemm (GPT-2's Conv1D) keeps them in float.
- :func:`example_inputs` gives the inputs the models are exported, calibrated and run with.

torch, transformers and onnxruntime are imported only when a function is called.
"""

from __future__ import annotations

import copy
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FAMILIES = ("bert", "gpt2", "llama")
QUANTIZERS = ("static", "static_per_channel", "dynamic", "nbits4", "nbits4_int8")


@dataclass(frozen=True)
class HfConfig:
    """The size of a model: layers, hidden size, heads, FFN width, sequence, vocabulary."""

    layers: int = 2
    hidden: int = 64
    heads: int = 4
    ffn: int = 128
    seq: int = 16
    vocab: int = 100


def input_names(family: str) -> tuple[str, ...]:
    """The graph input names of ``family``'s export."""
    return ("input_ids", "attention_mask") if family == "bert" else ("input_ids",)


def example_inputs(family: str, cfg: HfConfig, seed: int = 0) -> dict[str, np.ndarray]:
    """Token ids (int64 ``[1, seq]``) and for BERT an int64 padding mask whose last quarter is
    0 (padding), by input name."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, cfg.vocab, size=(1, cfg.seq), dtype=np.int64)
    if family != "bert":
        return {"input_ids": ids}
    mask = np.ones((1, cfg.seq), dtype=np.int64)
    mask[:, cfg.seq - cfg.seq // 4 :] = 0
    return {"input_ids": ids, "attention_mask": mask}


def _model(family: str, cfg: HfConfig):
    import torch
    import transformers

    torch.manual_seed(0)
    if family == "bert":
        conf = transformers.BertConfig(
            hidden_size=cfg.hidden,
            num_hidden_layers=cfg.layers,
            num_attention_heads=cfg.heads,
            intermediate_size=cfg.ffn,
            vocab_size=cfg.vocab,
            max_position_embeddings=max(64, cfg.seq),
        )
        return transformers.BertModel(conf, add_pooling_layer=False).eval()
    if family == "gpt2":
        conf = transformers.GPT2Config(
            n_embd=cfg.hidden,
            n_layer=cfg.layers,
            n_head=cfg.heads,
            n_inner=cfg.ffn,
            vocab_size=cfg.vocab,
            n_positions=max(64, cfg.seq),
        )
        return transformers.GPT2Model(conf).eval()
    if family == "llama":
        conf = transformers.LlamaConfig(
            hidden_size=cfg.hidden,
            num_hidden_layers=cfg.layers,
            num_attention_heads=cfg.heads,
            num_key_value_heads=cfg.heads,
            intermediate_size=cfg.ffn,
            vocab_size=cfg.vocab,
            max_position_embeddings=max(64, cfg.seq),
        )
        return transformers.LlamaModel(conf).eval()
    raise ValueError(f"family must be one of {', '.join(FAMILIES)}, not {family!r}")


def export_hf(family: str, path: str | Path, cfg: HfConfig = HfConfig(), dynamo: bool = True):
    """Export ``family``'s random-weight model (``last_hidden_state`` only) to ``path``; return
    the path. The dynamo exporter may write the weights to ``path`` + ``.data`` beside it."""
    import torch

    model = _model(family, cfg)
    names = input_names(family)

    class LastHidden(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.m = model

        def forward(self, *args):
            return self.m(**dict(zip(names, args, strict=True))).last_hidden_state

    feed = example_inputs(family, cfg)
    args = tuple(torch.from_numpy(feed[n]) for n in names)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            LastHidden().eval(),
            args,
            str(path),
            input_names=list(names),
            output_names=["last_hidden_state"],
            dynamo=dynamo,
            **({} if dynamo else {"opset_version": 17}),
        )
    return Path(path)


class _Calibration:
    """onnxruntime's CalibrationDataReader protocol over a few example inputs (other seeds than
    the inputs the tests run)."""

    def __init__(self, family: str, cfg: HfConfig, count: int = 4) -> None:
        self._it = iter([example_inputs(family, cfg, seed=100 + i) for i in range(count)])

    def get_next(self):
        return next(self._it, None)


def quantize(
    src: str | Path, dst: str | Path, how: str, family: str, cfg: HfConfig = HfConfig()
) -> Path:
    """Quantize ``src`` into ``dst`` with onnxruntime's quantizer ``how`` (module doc) at its
    defaults; return ``dst``."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )

    logging.disable(logging.WARNING)  # the quantizers advise pre-processing on every call
    try:
        if how in ("static", "static_per_channel"):

            class Reader(_Calibration, CalibrationDataReader):
                pass

            quantize_static(
                str(src),
                str(dst),
                Reader(family, cfg),
                quant_format=QuantFormat.QDQ,
                per_channel=how == "static_per_channel",
            )
        elif how == "dynamic":
            quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8)
        elif how in ("nbits4", "nbits4_int8"):
            from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

            level = {"accuracy_level": 4} if how == "nbits4_int8" else {}
            q = MatMulNBitsQuantizer(copy.deepcopy(onnx.load(str(src))), bits=4, **level)
            q.process()
            onnx.save(q.model.model, str(dst))
        else:
            raise ValueError(f"how must be one of {', '.join(QUANTIZERS)}, not {how!r}")
    finally:
        logging.disable(logging.NOTSET)
    return Path(dst)
