"""``codesign estimate``: modelled time, throughput, power and DDR traffic of one GEMM.

A thin wrapper over :func:`codesign.cost.choose_temporal_config`; options left out are chosen
by the model. Registered in :mod:`codesign.cli`; errors are mapped to one line and an exit code there.
"""

from __future__ import annotations

import json
import re
from typing import Any

import click

from codesign.boards import DEFAULT_BOARD, load
from codesign.cost import choose_temporal_config, gemm_layer, require_fit
from codesign.cost.calibration import time_rows
from codesign.cost.execution import stage_run
from codesign.cost.reference import TEMPUS_POINTS
from codesign.errors import OptionError
from codesign.schedulers.tempus import parse_block

_DIMS = re.compile(r"^\s*(\d+)\s*[xX]\s*(\d+)\s*[xX]\s*(\d+)\s*$")
_PAIR = re.compile(r"^\s*(\d+)\s*[xX]\s*(\d+)\s*$")


def parse_dims(text: str, option: str) -> tuple[int, int, int]:
    """``"1024x512x256"`` -> (1024, 512, 256); :class:`OptionError` otherwise."""
    m = _DIMS.match(text)
    if not m or min(int(g) for g in m.groups()) < 1:
        raise OptionError(
            f"{option} must be MxKxN with positive integers (e.g. 1024x1024x1024), not {text!r}"
        )
    return tuple(int(g) for g in m.groups())  # type: ignore[return-value]


def estimate_dict(
    board_name: str,
    gemm: str,
    dtype: str,
    block: str | None = None,
    tile: str | None = None,
    dataflow: str = "auto",
    pl_clock_mhz: float | None = None,
    plio_bits: int = 128,
) -> dict[str, Any]:
    """The figures ``codesign estimate`` prints, as a JSON-ready dict (all modelled)."""
    from codesign.cost import GemmWorkload

    board = load(board_name)
    M, K, N = parse_dims(gemm, "--gemm")
    chains = cascade = None
    if block is not None:
        b = parse_block(block)
        chains, cascade = b.chains, b.cascade
    t = parse_dims(tile, "--tile") if tile is not None else None
    if dataflow not in ("auto", "tempus", "reuse"):
        raise OptionError(f"--dataflow must be one of auto, tempus, reuse, not {dataflow!r}")
    if plio_bits not in board.plio.widths_bits:
        raise OptionError(
            f"--plio-bits must be one of {', '.join(map(str, board.plio.widths_bits))}, not {plio_bits}"
        )
    w = GemmWorkload(M, K, N, dtype)
    choice = choose_temporal_config(
        board,
        w,
        chains=chains,
        cascade=cascade,
        tile=t,
        dataflow=None if dataflow == "auto" else dataflow,
        pl_clock_mhz=pl_clock_mhz,
        plio_bits=plio_bits,
    )
    e = choice.estimate
    util = require_fit(board, e.resources, f"GEMM {w.label()}")
    chosen = [
        name
        for name, given in (("block", block), ("tile", tile), ("dataflow", dataflow != "auto"))
        if not given
    ]
    c = e.config
    in_model = stage_run(board, gemm_layer("gemm", e))
    calibration = _calibration(board.name, dtype)
    measured = _published(board.name, w)
    return {
        "modelled": True,
        "label": e.label,
        "board": board.name,
        "gemm": {"M": M, "K": K, "N": N, "dtype": dtype},
        "block": [c.chains, c.cascade],
        "tile": [c.tile_m, c.tile_k, c.tile_n],
        "dataflow": "tempus" if e.plan.name == "tempus" else f"reuse/{e.plan.name}",
        "chosen_by_model": chosen,
        "time_ms": e.time_s * 1e3,
        "launches": 1,
        "in_model_time_ms": in_model.time_s * 1e3,
        "in_model_label": "the GEMM as one layer of a compiled model: the launch is paid once "
        "per inference for the whole model, the layer pays its reconfiguration, fill and tiles",
        "gops": e.gops,
        "power_w": e.power_w,
        "power_complete": e.power.complete,
        "power_missing": list(e.power.missing),
        "energy_mj": e.energy_j * 1e3,
        "ddr_bytes": e.ddr_bytes,
        "ddr_gbs": e.ddr_gbs,
        "bound": e.bound,
        "iterations": e.iterations,
        "k_passes": e.k_passes,
        "cycles": e.cycles,
        "breakdown_ms": {k: v * 1e3 for k, v in e.breakdown.items()},
        "tempus_time_ms": choice.tempus.time_s * 1e3,
        "tempus_tile": [
            choice.tempus.config.tile_m,
            choice.tempus.config.tile_k,
            choice.tempus.config.tile_n,
        ],
        "gain_over_tempus": choice.gain_over_tempus,
        "gain_over_tempus_label": "Tempus's policy (host-replicated streaming) on its best tile "
        f"on the same {c.chains}x{c.cascade} block, modelled",
        "tempus_best_time_ms": (choice.tempus_best or choice.tempus).time_s * 1e3,
        "tempus_best_block": [
            (choice.tempus_best or choice.tempus).config.chains,
            (choice.tempus_best or choice.tempus).config.cascade,
        ],
        "gain_over_tempus_best": choice.gain_over_tempus_best,
        "gain_over_tempus_best_label": "Tempus's policy on its best block and tile among the "
        "blocks searched, modelled",
        "resources": {r.resource: {"used": r.used, "available": r.available} for r in util},
        "tempus_measured_ms": measured.time_s * 1e3 if measured else None,
        "gain_over_tempus_measured": measured.time_s / e.time_s if measured else None,
        "tempus_measured_label": f"Tempus's published measurement ({measured.source})"
        if measured
        else None,
        "calibration": calibration,
        "calibration_max_error": calibration["max_error"] if calibration else None,
        "notes": list(choice.notes),
    }


#: (board, dtype) pairs whose time model was fitted to published measurements (Tempus, int16
#: on VE2302: see codesign.cost.calibration).
_CALIBRATED = {("ve2302", "int16"): "Tempus's measured 512^3, 768^3 and 1024^3 int16 times"}


def _calibration(board: str, dtype: str) -> dict[str, Any] | None:
    """The calibration that applies to ``board`` and ``dtype``, or None when there is none."""
    what = _CALIBRATED.get((board, dtype))
    if what is None:
        return None
    rows = time_rows(load(board), holdouts=False)
    return {"against": what, "max_error": max(abs(r.error) for r in rows)}


def _published(board: str, w: Any) -> Any:
    """Tempus's published measurement of this very GEMM on this board, or None."""
    if board != "ve2302":
        return None
    for pt in TEMPUS_POINTS:
        if (pt.M, pt.K, pt.N, pt.dtype) == (w.M, w.K, w.N, w.dtype):
            return pt
    return None


def _table(d: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    g = d["gemm"]
    tbl = Table(
        title=f"codesign estimate: {g['M']}x{g['K']}x{g['N']} {g['dtype']} on {d['board']} (modelled)"
    )
    tbl.add_column("quantity", overflow="fold")
    tbl.add_column("value", justify="right", overflow="fold")
    chosen = set(d["chosen_by_model"])

    def mark(key: str) -> str:
        return " (chosen)" if key in chosen else ""

    power = f"{d['power_w']:.2f}" + (
        "" if d["power_complete"] else f" (lower bound: {', '.join(d['power_missing'])} not known)"
    )
    for k, v in (
        ("block (chains x cascade)", f"{d['block'][0]}x{d['block'][1]}{mark('block')}"),
        ("tile m x k x n", "x".join(map(str, d["tile"])) + mark("tile")),
        ("dataflow", d["dataflow"] + mark("dataflow")),
        ("time ms (one graph run)", f"{d['time_ms']:.3f}"),
        ("as a layer of a model: ms", f"{d['in_model_time_ms']:.3f} (launch shared)"),
        ("GOPS", f"{d['gops']:.1f}"),
        ("power W", power),
        ("DDR bytes", f"{d['ddr_bytes']:,}"),
        ("bound", d["bound"]),
        ("graph iterations", str(d["iterations"])),
        (
            "Tempus policy, best tile, same block: ms",
            f"{d['tempus_time_ms']:.3f} ({'x'.join(map(str, d['tempus_tile']))})",
        ),
        ("gain over Tempus policy, same block", f"{d['gain_over_tempus']:.2f}x"),
        (
            "Tempus policy, best block: ms",
            f"{d['tempus_best_time_ms']:.3f} ({d['tempus_best_block'][0]}x{d['tempus_best_block'][1]})",
        ),
        ("gain over Tempus policy, best block", f"{d['gain_over_tempus_best']:.2f}x"),
    ):
        tbl.add_row(k, v)
    if d["tempus_measured_ms"] is not None:
        tbl.add_row("Tempus measured (published) ms", f"{d['tempus_measured_ms']:.3f}")
        tbl.add_row(
            "gain over Tempus measured",
            f"{d['gain_over_tempus_measured']:.2f}x (modelled / measured)",
        )
    cal = d["calibration"]
    modelled = (
        "every figure is modelled"
        if d["tempus_measured_ms"] is None
        else "every figure is modelled but Tempus's published measurement"
    )
    tbl.caption = f"{modelled}; " + (
        f"time calibrated on {cal['against']} within {cal['max_error']:.1%}"
        if cal
        else f"no calibration applies to {d['gemm']['dtype']} on {d['board']} (uncalibrated)"
    )
    Console().print(tbl)


@click.command("estimate")
@click.option("--board", "board_name", default=DEFAULT_BOARD, show_default=True, help="Board name.")
@click.option("--gemm", required=True, help="GEMM shape MxKxN.")
@click.option(
    "--dtype", default="int16", show_default=True, help="int8, int16, int16x8, bf16, int32."
)
@click.option("--block", default=None, help="Temporal block CHAINSxCASCADE (default: chosen).")
@click.option("--tile", default=None, help="Per-core tile MxKxN (default: chosen).")
@click.option("--dataflow", default="auto", show_default=True, help="tempus, reuse or auto.")
@click.option(
    "--pl-clock", "pl_clock_mhz", type=float, default=None, help="PL clock in MHz (default: board)."
)
@click.option("--plio-bits", type=int, default=128, show_default=True, help="PLIO width in bits.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def estimate(
    board_name: str,
    gemm: str,
    dtype: str,
    block: str | None,
    tile: str | None,
    dataflow: str,
    pl_clock_mhz: float | None,
    plio_bits: int,
    as_json: bool,
) -> None:
    """Model one GEMM on a temporal AIE block: time, GOPS, power, DDR bytes and the bound.

    Every figure is modelled (calibrated on Tempus's measurements), not measured.
    """
    d = estimate_dict(board_name, gemm, dtype, block, tile, dataflow, pl_clock_mhz, plio_bits)
    if as_json:
        click.echo(json.dumps(d, indent=2))
    else:
        _table(d)
