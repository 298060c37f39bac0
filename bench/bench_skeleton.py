"""Walking-skeleton benchmark: compile time of a 1024^3 GEMM (without yosys, whose figures are
cached by block parameters), and the simulator's time against a
plain numpy matmul and onnxruntime on the same model, measured side by side in one run.

Run: .venv/bin/python bench/bench_skeleton.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from codesign.codegen.build import CompileOptions, compile_model
from codesign.examples import models
from codesign.frontend.reference import run_onnxruntime
from codesign.sim.functional import Simulator
from codesign.solvers.tiling import _solve_cached


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="codesign-bench-"))
    try:
        print(
            f"{'case':<18}{'compile s':>11}{'sim s':>9}{'ort s':>9}{'numpy s':>9}{'sim/numpy':>11}{'sim/ort':>9}"
        )
        for dtype in ("int8", "int16"):
            model = models.qdq_gemm(root / f"{dtype}.onnx", 1024, 1024, 1024, dtype=dtype)
            build = root / f"build-{dtype}"

            def do_compile(model=model, build=build):
                _solve_cached.cache_clear()  # time the CP-SAT solve too, not a cached tile
                compile_model(model, build, CompileOptions(force=True, synth=False))

            t_compile = best(do_compile, args.repeat)
            sim = Simulator(build)
            inputs = models.random_inputs(model)
            sim.run(inputs)  # warm the weight cache
            t_sim = best(lambda sim=sim, inputs=inputs: sim.run(inputs), args.repeat)
            t_ort = best(
                lambda model=model, inputs=inputs: run_onnxruntime(model, inputs), args.repeat
            )
            a = inputs["input"]
            w = np.random.default_rng(0).standard_normal((1024, 1024)).astype(np.float32)
            t_np = best(lambda a=a, w=w: a @ w, args.repeat)
            print(
                f"{'1024^3 ' + dtype:<18}{t_compile:>11.3f}{t_sim:>9.3f}{t_ort:>9.3f}{t_np:>9.4f}"
                f"{t_sim / t_np:>11.1f}{t_sim / t_ort:>9.1f}"
            )
        print("(best of", args.repeat, "runs; onnxruntime includes session creation, one thread)")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
