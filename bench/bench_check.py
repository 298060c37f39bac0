"""How long ``codesign check`` takes on the demo build (the bundled FFN block), against one
simulator run of the same build on the same inputs, measured in one run (these machines are
noisy: compare the ratio, not the seconds).

Run: .venv/bin/python bench/bench_check.py [--repeat N]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import codesign
from codesign.codegen.check import check_build, golden_inputs
from codesign.examples import models
from codesign.sim.functional import Simulator


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=1, help="runs of each (the minimum is shown)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        model = models.ffn_block(Path(tmp) / "ffn.onnx")
        root = codesign.compile(model, board="vek280", block="2x8").save(Path(tmp) / "build")
        build = codesign.load_build(root)
        inputs = golden_inputs(build)
        sim_s, check_s = [], []
        results = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            Simulator(build.plan, build.root).run_all(inputs)
            sim_s.append(time.perf_counter() - t)
            t = time.perf_counter()
            results = check_build(build)
            check_s.append(time.perf_counter() - t)
    ok = all(r.compiled and r.matched for r in results)
    gemms = sum(1 for r in results if r.part == "aie" and r.layer != "graph")
    print(
        f"demo build (ffn_block, vek280 2x8): {gemms} GEMM layer(s), check {'passed' if ok else 'FAILED'}"
    )
    print(f"  simulator run_all      {min(sim_s):8.3f} s")
    print(
        f"  codesign check         {min(check_s):8.3f} s  (g++ compile + x86 run + one simulator run)"
    )
    print(f"  check / simulator      {min(check_s) / min(sim_s):8.1f} x")


if __name__ == "__main__":
    main()
