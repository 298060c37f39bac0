"""The AIE part of ``codesign check``: compile the build's AIE-ML kernels with g++ against the
x86 header set (``aie/include``), run every GEMM layer through a generated harness that follows
the graph (:mod:`codesign.aie.emit`; template ``harness.cc.j2``), and compare each layer's output
with the simulator bit for bit.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from importlib import resources
from pathlib import Path

import numpy as np

from codesign.aie.emit import gemm_layers, graph_context, render
from codesign.codegen.check import CheckResult
from codesign.ir.graph import numpy_dtype
from codesign.ir.plan import GemmLayer, Plan

#: g++ flags of the check: the issue's bar is "compiles without a warning"
CXXFLAGS = ("-std=c++20", "-Wall", "-Werror", "-O2")
PART = "aie"


def include_dir() -> Path:
    """The x86 AIE/ADF header set shipped with codesign."""
    return Path(str(resources.files("codesign.aie") / "include"))


def _gxx(args: list[str], cwd: Path) -> tuple[bool, str]:
    p = subprocess.run(
        ["g++", *args], cwd=cwd, capture_output=True, text=True, check=False, timeout=600
    )
    return p.returncode == 0, (p.stderr or p.stdout).strip()


def compile_kernels(aie_dir: Path, work: Path) -> tuple[list[Path], dict[str, str]]:
    """Compile every ``aie/kernels/*.cc`` of a build to an object in ``work``; return the objects
    and the compiler's message of each file that failed (warnings are errors)."""
    objects, failures = [], {}
    kernels = aie_dir / "kernels"
    for src in sorted(kernels.glob("*.cc")):
        obj = work / (src.stem + ".o")
        ok, msg = _gxx(
            [*CXXFLAGS, f"-I{include_dir()}", f"-I{kernels}", "-c", str(src), "-o", str(obj)],
            work,
        )
        if ok:
            objects.append(obj)
        else:
            failures[src.name] = msg
    return objects, failures


def harness_source(plan: Plan) -> bytes:
    """The x86 harness of the plan's graph (see ``templates/harness.cc.j2``)."""
    ctx = graph_context(plan)
    layers = gemm_layers(plan)
    ctx["groups_index"] = {g["tag"]: i for i, g in enumerate(ctx["groups"])}
    ctx["tiles"] = {i: (g.schedule.m_tiles, g.schedule.n_tiles) for i, g in enumerate(layers)}
    ctx["csize"] = {"int8": 1, "uint8": 1, "int16": 2, "uint16": 2, "int32": 4, "bfloat16": 2}
    ctx["csize"]["float"] = 4
    return render("harness.cc.j2", **ctx)


def _stored(arr: np.ndarray, dtype: str) -> bytes:
    """Raw little-endian bytes of a decoded data file (bf16: its upper 16 bits)."""
    if dtype == "bf16":
        return (np.asarray(arr, dtype=np.float32).view("<u4") >> 16).astype("<u2").tobytes()
    return np.ascontiguousarray(arr, dtype=numpy_dtype(dtype).newbyteorder("<")).tobytes()


def _epilogue_words(sim, g: GemmLayer) -> bytes:
    """The whole layer's epilogue table (harness input): bias, colsum over padded N; multiplier
    and shift over padded N when per-channel, else one word each."""
    s = g.schedule
    pn = s.padded_N
    words: list[np.ndarray] = []

    def col(v: np.ndarray, dtype) -> np.ndarray:
        out = np.zeros(pn, dtype=dtype)
        out[: v.size] = v.reshape(-1)
        return out

    if g.bias is not None:
        b = sim.data(g.bias)
        if g.dtype == "bf16":
            words.append(col(np.asarray(b, dtype=np.float32), np.float32).view(np.int32))
        else:
            words.append(col(np.asarray(b, dtype=np.int64), np.int64).astype(np.int32))
    if g.colsum is not None and len(g.inputs) > 1:
        words.append(col(np.asarray(sim.data(g.colsum), dtype=np.int64), np.int64).astype(np.int32))
    r = g.requant
    if r is not None:
        mult = np.asarray(sim.data(r.multiplier), dtype=np.int64).reshape(-1)
        shift = np.asarray(sim.data(r.shift), dtype=np.int64).reshape(-1)
        if mult.size > 1 or shift.size > 1:
            full = np.broadcast_to
            words.append(col(full(mult, (s.N,)), np.int64).astype(np.int32))
            words.append(col(full(shift, (s.N,)), np.int64).astype(np.int32))
        else:
            words += [mult.astype(np.int32), shift.astype(np.int32)]
    if not words:
        return np.zeros(1, dtype="<i4").tobytes()
    return np.concatenate(words).astype("<i4").tobytes()


def _compare(got: np.ndarray, want: np.ndarray) -> tuple[bool, float]:
    """Bit-for-bit equality (a NaN matches a NaN of any payload) and the largest |difference|."""
    if np.issubdtype(want.dtype, np.floating):
        g32, w32 = got.astype(np.float32), want.astype(np.float32)
        both_nan = np.isnan(g32) & np.isnan(w32)
        same = (g32.view(np.uint32) == w32.view(np.uint32)) | both_nan
        with np.errstate(all="ignore"):
            diff = np.where(both_nan, 0.0, np.abs(g32.astype(np.float64) - w32.astype(np.float64)))
        return bool(same.all()), float(np.nan_to_num(diff, nan=np.inf).max(initial=0.0))
    diff = np.abs(got.astype(np.int64) - want.astype(np.int64))
    return bool((diff == 0).all()), float(diff.max(initial=0))


def check_aie(root: Path, plan: Plan, env: dict[str, np.ndarray]) -> list[CheckResult]:
    """Compile the build's AIE kernels and harness; run and compare every GEMM layer."""
    from codesign.sim.functional import Simulator

    layers = gemm_layers(plan)
    if not layers:
        return []
    aie_dir = Path(root) / "aie"
    if not (aie_dir / "kernels").is_dir():
        return [
            CheckResult(g.name, PART, False, False, f"{aie_dir}/kernels: missing from the build")
            for g in layers
        ]
    sim = Simulator(plan, Path(root))
    with tempfile.TemporaryDirectory(prefix="codesign-aie-") as tmp:
        work = Path(tmp)
        objects, failures = compile_kernels(aie_dir, work)
        if failures:
            first = next(iter(failures.items()))
            detail = f"{first[0]}: {first[1].splitlines()[0] if first[1] else 'failed'}"
            return [CheckResult(g.name, PART, False, False, detail) for g in layers]
        (work / "harness.cc").write_bytes(harness_source(plan))
        exe = work / "harness"
        ok, msg = _gxx(
            [
                *CXXFLAGS,
                f"-I{include_dir()}",
                f"-I{aie_dir / 'kernels'}",
                "harness.cc",
                *[str(o) for o in objects],
                "-o",
                str(exe),
            ],
            work,
        )
        if not ok:
            line = msg.splitlines()[0] if msg else "failed"
            return [CheckResult(g.name, PART, False, False, f"harness: {line}") for g in layers]
        results = []
        for i, g in enumerate(layers):
            results.append(_run_layer(sim, exe, work / f"l{i}", i, g, env))
    return results


def _run_layer(sim, exe: Path, d: Path, index: int, g: GemmLayer, env) -> CheckResult:
    d.mkdir()
    s = g.schedule
    a = np.asarray(env[g.inputs[0]]).reshape(s.M, s.K)
    if g.dtype == "bf16":
        (d / "a.bin").write_bytes(np.ascontiguousarray(a, dtype="<f4").tobytes())
    else:
        (d / "a.bin").write_bytes(_stored(a, sim.plan.tensor(g.inputs[0]).dtype))
    (d / "b.bin").write_bytes(_stored(sim.data(g.weight), g.weight.dtype))
    (d / "epi.bin").write_bytes(_epilogue_words(sim, g))
    za = 0
    if len(g.inputs) > 1 and g.inputs[1]:
        za = int(np.asarray(env[g.inputs[1]]).reshape(-1)[0])
    p = subprocess.run(
        [str(exe), str(index), str(d), str(za)],
        capture_output=True,
        text=True,
        check=False,
        timeout=3600,
        env={**os.environ},
    )
    if p.returncode != 0:
        return CheckResult(
            g.name, PART, True, False, f"harness exit {p.returncode}: {p.stderr[:200]}"
        )
    want = np.asarray(env[g.outputs[0]]).reshape(s.M, s.N)
    got = np.frombuffer((d / "c.bin").read_bytes(), dtype=want.dtype.newbyteorder("<"))
    if got.size != want.size:
        return CheckResult(
            g.name, PART, True, False, f"output has {got.size} values, not {want.size}"
        )
    same, diff = _compare(got.reshape(s.M, s.N), want)
    detail = "" if same else f"{int(np.sum(got.reshape(-1) != want.reshape(-1)))} value(s) differ"
    return CheckResult(g.name, PART, True, same, detail, diff)
