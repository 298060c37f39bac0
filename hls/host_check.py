"""Check the build's Host-partition runner (``host/partitions.h``) on x86 against the simulator.

The host program runs each Host partition between two launches of the PL kernel with the
onnxruntime C API (:mod:`codesign.codegen.vitis`). Here a generated harness includes the build's
``host/partitions.h``, is compiled with g++ (``-std=c++20 -Wall -Werror``) against
``onnxruntime_c_api.h`` and linked with the onnxruntime library the simulator runs partitions
with (:func:`codesign.runtime.onnxhost.library`), and runs each partition on the arena the
simulator's tensors fill: every output region must equal the simulator's bytes (part
``host:onnxruntime``). XRT, the rest of ``host/host.cpp``, has no x86 form here.

onnxruntime's Python package ships its library but not its C header: the header is looked up
in ``$ONNXRUNTIME_DIR/include`` (and ``include/onnxruntime``), then ``/usr/include/onnxruntime``
and ``/usr/local/include/onnxruntime``. Without one, each partition's row is *skipped* and says
what it needs (neither a pass nor a failure).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from codesign.codegen.check import CheckResult
from codesign.hls import pl
from codesign.hls.check import arena_bytes, compare_bytes, compile_cpp
from codesign.ir.plan import Plan

PART = "host:onnxruntime"
HEADER = "onnxruntime_c_api.h"


def onnxruntime_include() -> Path | None:
    """The directory that holds ``onnxruntime_c_api.h`` (see the module docstring), or None."""
    roots = []
    if env := os.environ.get("ONNXRUNTIME_DIR"):
        roots += [Path(env) / "include", Path(env) / "include" / "onnxruntime"]
    roots += [Path("/usr/include/onnxruntime"), Path("/usr/local/include/onnxruntime")]
    return next((r for r in roots if (r / HEADER).is_file()), None)


def check_host(build: Path, plan: Plan, tensors: dict[str, np.ndarray]) -> list[CheckResult]:
    """One row per Host partition of ``plan`` (none without partitions); see the module
    docstring."""
    from codesign.runtime.onnxhost import library

    partitions = [
        (st.layers[0], plan.layers[st.layers[0]]) for st in pl.stages(plan) if st.segment < 0
    ]
    if not partitions:
        return []
    include, lib = onnxruntime_include(), library()
    if include is None or lib is None:
        need = f"{HEADER} (set ONNXRUNTIME_DIR)" if include is None else "the onnxruntime library"
        return [
            CheckResult(layer.name, PART, False, False, f"not run here: needs {need}", skipped=True)
            for _, layer in partitions
        ]
    regions, _ = pl.arena(plan)
    full = bytes(arena_bytes(build, plan, tensors))
    rows = []
    with tempfile.TemporaryDirectory(prefix="codesign-host-") as tmp:
        work = Path(tmp)
        exe, err = _build(work, build, include, lib)
        for k, (_, layer) in enumerate(partitions):
            if err is not None:
                rows.append(CheckResult(layer.name, PART, False, False, err))
                continue
            arena = work / f"partition_{k}.arena"
            arena.write_bytes(_without(full, [regions[n] for n in layer.outputs]))
            run = subprocess.run(
                [str(exe), str(arena), str(k)],
                cwd=build,
                capture_output=True,
                text=True,
                check=False,
            )
            if run.returncode != 0:
                why = run.stderr.strip() or f"exit {run.returncode}"
                rows.append(CheckResult(layer.name, PART, True, False, why))
                continue
            got = arena.read_bytes()
            details = [
                f"output {name}: {d}"
                for name in layer.outputs
                for r in [regions[name]]
                if (
                    d := compare_bytes(
                        got[r.offset : r.offset + r.nbytes], full[r.offset : r.offset + r.nbytes]
                    )
                )
            ]
            rows.append(CheckResult(layer.name, PART, True, not details, "; ".join(details)))
    return rows


def _without(full: bytes, outputs: list[pl.Region]) -> bytes:
    """The arena before the partition ran: the simulator's, its output regions zeroed."""
    arena = bytearray(full)
    for r in outputs:
        arena[r.offset : r.offset + r.nbytes] = bytes(r.nbytes)
    return bytes(arena)


def _build(work: Path, build: Path, include: Path, lib: Path) -> tuple[Path, str | None]:
    """Compile the harness against the build's ``host/partitions.h``; (executable, error)."""
    src = work / "partition_harness.cpp"
    src.write_bytes(pl.render("partition_harness.cpp.j2"))
    # the package's library carries a versioned file name; the loader asks for its soname
    (work / "libonnxruntime.so.1").symlink_to(lib)
    exe = work / "partition_harness"
    link = (f"-I{include}", str(lib), f"-Wl,-rpath,{work}")
    return exe, compile_cpp(src, exe, build / "host", extra=link)
