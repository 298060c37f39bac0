"""Drive a model file through ``codesign compile`` and ``codesign simulate`` in-process.

:func:`run_cli` calls :func:`codesign.cli.main` (the real error mapping) and returns the exit
code and the captured output; an exception that escapes ``main`` propagates (it is a bug too).
:func:`drive` runs the compile -> simulate chain on one model and returns the outcomes, which the
fuzz test judges with :func:`verdict`.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from codesign.cli import main
from codesign.examples import models

#: Small base models (seconds to build once, milliseconds to compile).
BASE_BUILDERS = {
    "float_mlp": lambda p: models.float_mlp(p, dims=(8, 16, 4), batch=2),
    "float_gemm": lambda p: models.float_mlp(p, dims=(8, 16, 4), batch=2, use_gemm=True),
    "float_reshape": lambda p: models.float_mlp_reshape(
        p, dims=(8, 16, 4), batch=2, input_shape=(2, 4)
    ),
    "float_flatten": lambda p: models.float_mlp_reshape(
        p, dims=(8, 16, 4), batch=2, input_shape=(2, 4), input_op="Flatten"
    ),
    "qdq_mlp": lambda p: models.qdq_mlp(p, dims=(8, 16, 4), batch=2),
    "qdq_mlp_pc_gemm": lambda p: models.qdq_mlp(
        p, dims=(8, 16, 4), batch=2, per_channel=True, use_gemm=True
    ),
    "qdq_mlp_uint8": lambda p: models.qdq_mlp(
        p, dims=(8, 16, 4), batch=2, activation_type="uint8", reduce_range=True
    ),
    "dynamic_mlp": lambda p: models.dynamic_mlp(p, dims=(8, 16, 4), batch=2, reduce_range=True),
    "qlinear_uint8": lambda p: models.qlinear_matmul(p, 2, 8, 4),
    "qlinear_int8": lambda p: models.qlinear_matmul(p, 2, 8, 4, dtype="int8"),
    "qdq_gemm_pc": lambda p: models.qdq_gemm(p, 3, 8, 5, per_channel=True),
    "qdq_gemm_int16": lambda p: models.qdq_gemm(p, 3, 8, 5, dtype="int16"),
    "ffn_block": lambda p: models.ffn_block(p, d_model=8, d_ff=16, seq=2),
    "dynamic_dim": lambda p: models.dynamic_dim_model(p, dims=(8, 16, 4)),
    # wider ones, so what reaches the simulator is not only 8x16x4
    "qdq_mlp_wide_gemm": lambda p: models.qdq_mlp(
        p, dims=(64, 96, 40), batch=4, per_channel=True, use_gemm=True
    ),
    "qdq_gemm_int16_wide": lambda p: models.qdq_gemm(p, 24, 80, 48, dtype="int16"),
    "float_mlp_wide": lambda p: models.float_mlp(p, dims=(48, 64, 24), batch=6),
}


@dataclass(frozen=True)
class Outcome:
    """One CLI call: the arguments, exit code, and what it printed."""

    args: tuple[str, ...]
    code: int
    out: str
    err: str


def run_cli(*args: object) -> Outcome:
    """Run ``codesign ARGS...`` in-process with its real exit-code mapping."""
    argv = tuple(str(a) for a in args)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(list(argv))
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
    return Outcome(argv, code, out.getvalue(), err.getvalue())


def prepare_model_dir(root: Path) -> Path:
    """A directory for fuzzed models with the external-data neighbours the mutations name:
    ``data.bin`` (64 bytes), ``sub/`` and ``escape_link`` (a symlink to a file outside)."""
    d = root / "models"
    d.mkdir(parents=True, exist_ok=True)
    (d / "data.bin").write_bytes(bytes(range(64)))
    (d / "sub").mkdir(exist_ok=True)
    outside = root / "outside.bin"
    outside.write_bytes(b"secret" * 8)
    link = d / "escape_link"
    if not link.is_symlink():
        os.symlink(outside, link)
    return d


def drive(model_dir: Path, data: bytes, extra: tuple[str, ...], reference: bool) -> list[Outcome]:
    """Write ``data`` as a model, compile it, and simulate the build when the compile succeeds."""
    model = model_dir / "fuzzed.onnx"
    build = model_dir.parent / "build"
    shutil.rmtree(build, ignore_errors=True)
    model.write_bytes(data)
    outcomes = [run_cli("compile", model, "-o", build, *extra)]
    if outcomes[0].code == 0:
        sim = ("simulate", build) + (("--reference",) if reference else ())
        outcomes.append(run_cli(*sim))
    return outcomes


def reached(outcomes: list[Outcome]) -> list[str]:
    """How far one case got: "scheduled" when compile succeeded (it passed the frontend, the
    passes and the scheduler), "compared" when ``simulate --reference`` compared the build's
    outputs with onnxruntime (exit 0 or 3)."""
    tags = []
    if outcomes[0].code == 0:
        tags.append("scheduled")
    if any(
        o.args[0] == "simulate" and "--reference" in o.args and o.code in (0, 3) for o in outcomes
    ):
        tags.append("compared")
    return tags


def reach_fractions(counts: dict[str, int]) -> dict[str, float]:
    """The fraction of ``counts["cases"]`` that were scheduled and compared (see :func:`reached`)."""
    cases = max(counts.get("cases", 0), 1)
    return {k: counts.get(k, 0) / cases for k in ("scheduled", "compared")}


#: The user errors a simulation of a freshly compiled build may give: the memory check, and
#: onnxruntime declining the reference (it supports less than the ONNX spec).
FRESH_BUILD_REFUSALS = ("simulating this build needs about", "onnxruntime could not run")


def verdict(
    outcomes: list[Outcome], fresh_build: bool = False, values_only: bool = False
) -> str | None:
    """None when every outcome is acceptable, else a description of the failure.

    Acceptable: exit 0; exit 2 with exactly one ``error:`` line and no traceback; exit 3 only
    for ``simulate --reference`` (fidelity). With ``fresh_build`` (the build was just written by
    ``compile``), a simulation may refuse only as :data:`FRESH_BUILD_REFUSALS` says: any other
    exit 2 means compile wrote a build that simulate does not accept. With ``values_only`` (the
    mutations changed only values of a supported model), exit 3 is a failure too: a model that
    compiles must compute what onnxruntime computes, or be refused at compile.
    """
    for o in outcomes:
        if values_only and o.code == 3:
            return (
                f"a model whose values alone were changed compiled, then failed the fidelity "
                f"check: codesign {' '.join(o.args)}: {o.err.strip()[:2000]}"
            )
        if o.code == 0:
            continue
        if (
            fresh_build
            and o.args[0] == "simulate"
            and o.code == 2
            and not any(r in o.err for r in FRESH_BUILD_REFUSALS)
        ):
            return f"a freshly compiled build was refused: {o.err.strip()[:2000]}"
        lines = [line for line in o.err.splitlines() if line.strip()]
        fidelity = o.code == 3 and o.args[0] == "simulate" and "--reference" in o.args
        one_line = len(lines) == 1 and lines[0].startswith("error: ")
        if (o.code == 2 or fidelity) and one_line and "Traceback" not in o.err:
            continue
        return f"codesign {' '.join(o.args)} exited {o.code}: {o.err.strip()[:2000]}"
    return None
