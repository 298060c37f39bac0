"""Cost of a nonlinear layer (element-wise or row-wise) in each placement, and the choice.

A nonlinear layer (exp, erf, GELU, softmax, LayerNorm, ...) runs either

- on a **PL vector unit** (``"pl"``): ``pl_lanes`` fp32 lanes at the PL clock, fully
  pipelined, so one element per lane per cycle whatever the function's length (plus the
  pipeline fill, ``pl_op_latency_cycles`` per operation, and one row for a row function); it costs PL
  resources per fp32 operation and lane (DSP58 in fp32 mode, LUT, FF) and BRAM for a row buffer
  when the function works on rows;
- on the **AIE-ML vector cores** of the temporal block (``"aie"``), between GEMM runs: the
  function's fp32 operations per element over ``aie_vector_fp32_ops_per_cycle`` per core
  (fp32 is emulated with bf16 on AIE-ML), times the kernel efficiency, plus
  ``aie_layer_switch_cycles`` to switch the block's kernel for the layer, with the data streamed
  in over the block's A PLIOs and out over its C PLIOs (the layout the generated kernels use:
  codesign/aie/nonlinear.py; the parameters of a norm go over the B PLIOs and are not counted);
  no PL resources beyond the block's.

Both read their operands from DDR and write the result back. The figures come from the board
file's ``nonlinear`` section (each with its source) and its ``perf`` section. Every figure is
modelled. :func:`choose_placement` takes the faster placement (ties go to the PL, which needs no
AIE graph reconfiguration); the report shows both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from codesign.boards import Board
from codesign.cost.layers import LayerEstimate
from codesign.cost.params import perf_params, required
from codesign.cost.power import estimate_power
from codesign.cost.resources import PlUsage, ResourceUsage
from codesign.cost.temporal import MODELLED
from codesign.errors import OptionError

#: where a nonlinear layer can run (the same names as :data:`codesign.ir.nonlinear.PLACEMENTS`)
PLACEMENTS = ("pl", "aie")


@dataclass(frozen=True)
class NonlinearWork:
    """What a nonlinear layer does: ``elements`` outputs, ``ops`` fp32 operations per element,
    ``row`` the length of the rows it reduces over (0 for element-wise), and its DDR bytes."""

    elements: int
    ops: int
    bytes_in: int
    bytes_out: int
    row: int = 0
    #: the function the unit computes ("gelu", "softmax", ...): layers of one function (and
    #: row length) share one PL unit, as they run one after another
    function: str = ""


def _fig(board: Board, key: str) -> float:
    return float(required(board, "nonlinear", key))


def pl_usage(board: Board, work: NonlinearWork, name: str) -> PlUsage:
    """PL resources of the layer's vector unit (modelled, from the board's per-op figures)."""
    lanes = int(_fig(board, "pl_lanes"))
    units = max(work.ops, 1) * lanes
    bram = 0
    if work.row:
        # a row is held while its reduction runs (two rows: one filling, one draining)
        bram_bytes = float(required(board, "perf", "bram_block_bytes"))
        bram = math.ceil(2 * work.row * 4 / bram_bytes)
    return PlUsage(
        lut=int(units * _fig(board, "pl_lut_per_op")),
        ff=int(units * _fig(board, "pl_ff_per_op")),
        bram=bram,
        uram=0,
        dsp=int(units * _fig(board, "pl_dsp_per_op")),
        source=f"modelled nonlinear unit {name} ({work.ops} fp32 ops x {lanes} lanes)",
    )


def estimate_nonlinear(
    board: Board,
    name: str,
    work: NonlinearWork,
    placement: str,
    *,
    block: tuple[int, int],
    kind: str,
    plio_bytes: tuple[int, int] | None = None,
) -> LayerEstimate:
    """The modelled time, bound, power and resources of the layer placed on ``placement``
    ("pl" or "aie"; ``block``: (chains, cascade) of the AIE-ML block it may use).
    ``plio_bytes``: the (in, out) bytes an AIE placement streams over the block's A and C PLIOs
    when the compiled graph is known (whole buffer ports, padding included:
    :func:`codesign.aie.emit.port_bytes`); else the layer's own bytes."""
    chains, cascade = block
    cores = chains * cascade
    if placement not in PLACEMENTS:
        raise OptionError(f"layer {name}: placement must be one of {PLACEMENTS}, not {placement!r}")
    p = perf_params(board)
    ddr_bytes = work.bytes_in + work.bytes_out
    t_ddr = ddr_bytes / p.ddr_bytes_s
    detail = {
        "placement": placement,
        "elements": work.elements,
        "ops_per_element": work.ops,
        "row": work.row,
        "bytes_in": work.bytes_in,
        "bytes_out": work.bytes_out,
    }
    if placement == "pl":
        lanes = int(_fig(board, "pl_lanes"))
        # stream the elements through the lanes, plus the pipeline fill and, for a row
        # function, one row held back while its reduction completes
        fill = max(work.ops, 1) * int(_fig(board, "pl_op_latency_cycles"))
        cycles = math.ceil(work.elements / lanes) + fill + work.row
        t_compute = cycles / p.pl_clock_hz
        pl = pl_usage(board, work, name)
        unit = f"nonlinear-unit:{work.function or name}" + (f"/row{work.row}" if work.row else "")
        resources = ResourceUsage(pl=pl, pl_block=unit)
        active = 0
        clock = "pl"
        breakdown = {"compute": t_compute, "ddr": t_ddr}
    else:
        if cores < 1:
            raise OptionError(f"layer {name}: an AIE placement needs the block's cores")
        rate = _fig(board, "aie_vector_fp32_ops_per_cycle") * cores * p.kernel_efficiency
        switch = int(_fig(board, "aie_layer_switch_cycles"))
        cycles = math.ceil(work.elements * max(work.ops, 1) / rate) + switch
        t_compute = cycles / p.aie_clock_hz
        # in over the block's A PLIOs (one per cascade position), out over its C PLIOs
        widest = max(board.plio.widths_bits) / 8
        plio_clock = min(p.pl_clock_hz, p.aie_clock_hz * p.max_pl_clock_ratio)
        b_in, b_out = plio_bytes if plio_bytes is not None else (work.bytes_in, work.bytes_out)
        t_in = b_in / (cascade * widest * plio_clock)
        t_out = b_out / (chains * widest * plio_clock)
        pl = PlUsage()
        resources = ResourceUsage(aie_cores=cores)
        active = cores
        clock = "aie"
        breakdown = {"compute": t_compute, "plio": max(t_in, t_out), "ddr": t_ddr}
    time_s = max(breakdown.values())
    bound = max(breakdown, key=lambda k: breakdown[k])
    detail["cycles"] = cycles
    detail["clock"] = clock
    power = estimate_power(
        board,
        active_cores=active,
        ddr_bytes_s=ddr_bytes / time_s if time_s else 0.0,
        pl=pl if placement == "pl" else None,
    )
    return LayerEstimate(
        name=name,
        kind=kind,
        unit=placement,
        time_s=time_s,
        ops=work.elements * work.ops,
        ddr_bytes=ddr_bytes,
        bound=bound,
        power=power,
        breakdown=breakdown,
        resources=resources,
        critical_path={"launch": 0.0, "fill": 0.0, "steady": time_s},
        detail=detail,
        label=MODELLED,
    )


def choose_placement(
    board: Board,
    name: str,
    work: NonlinearWork,
    *,
    block: tuple[int, int],
    kind: str,
    pl_in_use: PlUsage | None = None,
    units: frozenset[str] | set[str] = frozenset(),
    aie_extra_s: float = 0.0,
) -> tuple[str, dict[str, LayerEstimate]]:
    """The placement the model picks (the faster; a tie goes to the PL) and both estimates.

    ``pl_in_use``: the PL already taken (the block's data movers and the units placed so far,
    whose names are ``units``: a layer whose unit exists adds nothing). The PL is no option
    when a new unit would take the PL past the board's LUT, FF or DSP count (where the board
    file gives them); the AIE none without a block. ``aie_extra_s``: what the AIE placement costs
    the other block layers (the weight GEMMs' tiles padded to the larger buffer ports its rows
    need, :func:`codesign.cost.variants.padding_penalty_s`), added to its time in the choice."""
    options = {}
    pl = estimate_nonlinear(board, name, work, "pl", block=block, kind=kind)
    total = pl_in_use or PlUsage()
    if pl.resources.pl_block not in units:
        total = total + pl.resources.pl
    too_big = any(
        cap is not None and (used or 0) > cap
        for used, cap in (
            (total.dsp, board.pl.dsp),
            (total.lut, board.pl.lut),
            (total.ff, board.pl.ff),
        )
    )
    if not too_big or block[0] * block[1] < 1:
        options["pl"] = pl
    if block[0] * block[1] >= 1:
        options["aie"] = estimate_nonlinear(board, name, work, "aie", block=block, kind=kind)
    extra = {"aie": aie_extra_s}
    best = min(options, key=lambda k: (options[k].time_s + extra.get(k, 0.0), PLACEMENTS.index(k)))
    return best, options


__all__ = [
    "PLACEMENTS",
    "NonlinearWork",
    "choose_placement",
    "estimate_nonlinear",
    "pl_usage",
]
