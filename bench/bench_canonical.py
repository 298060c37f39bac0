"""Canonicalisation time of a BERT-base encoder as torch exports it (random weights).

Builds transformers' BertModel at BERT-base size (12 layers, hidden 768, 12 heads, FFN 3072;
sequence 128) from a config with random weights, exports it with torch.onnx.export
(TorchScript, ``dynamo=False``; ``--dynamo`` for the dynamo exporter), then measures in one run:

- onnx shape inference alone (the step the load path did before canonicalisation existed);
- :func:`codesign.frontend.canonical.canonicalize` alone;
- the whole :func:`codesign.frontend.load.load_model` (read, checks, inference, canonicalise,
  inference) -- and prints the canonical graph's op counts.

Run: ``.venv/bin/python bench/bench_canonical.py [--dynamo] [--layers 12]``. Nothing is
downloaded; the export writes ~440 MB to a temporary directory, removed afterwards.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from collections import Counter
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dynamo", action="store_true", help="use the dynamo exporter")
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--seq", type=int, default=128)
    args = ap.parse_args()

    import onnx
    import torch
    import transformers

    from codesign.frontend.canonical import canonicalize
    from codesign.frontend.load import load_model

    torch.manual_seed(0)
    cfg = transformers.BertConfig(num_hidden_layers=args.layers)
    bert = transformers.BertModel(cfg).eval()

    class Wrapper(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.m = bert

        def forward(self, ids):
            return self.m(input_ids=ids).last_hidden_state

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bert.onnx"
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                Wrapper(),
                (torch.randint(0, 1000, (1, args.seq)),),
                str(path),
                dynamo=args.dynamo,
                input_names=["input_ids"],
                output_names=["y"],
            )
        t_export = time.perf_counter() - t0
        raw = onnx.load(path)
        n_raw = len(raw.graph.node)

        t0 = time.perf_counter()
        inferred = onnx.shape_inference.infer_shapes(
            raw, check_type=True, strict_mode=True, data_prop=True
        )
        t_infer = time.perf_counter() - t0

        t0 = time.perf_counter()
        canon = canonicalize(inferred, str(path))
        t_canon = time.perf_counter() - t0

        t0 = time.perf_counter()
        loaded = load_model(path)
        t_load = time.perf_counter() - t0

    exporter = "dynamo" if args.dynamo else "torchscript"
    print(f"BERT-base-sized encoder ({args.layers} layers, seq {args.seq}), {exporter} export")
    print(f"  export (torch)                    {t_export:7.2f} s")
    print(f"  onnx shape inference, full model  {t_infer:7.2f} s")
    print(f"  canonicalize                      {t_canon:7.2f} s")
    print(f"  load_model (whole load path)      {t_load:7.2f} s")
    print(f"  nodes: exported {n_raw}, canonical {len(canon.graph.node)}")
    ops = Counter(n.op_type for n in loaded.graph.node)
    print("  canonical ops: " + ", ".join(f"{k} {v}" for k, v in sorted(ops.items())))


if __name__ == "__main__":
    main()
