"""Cycle and time model of the temporal GEMM block (Tempus-style), calibrated on Tempus.

Per graph iteration the block goes through five overlapped stages (PL DATAFLOW and AIE
ping-pong buffers overlap them):

- ``ddr``: the iteration's share of DDR traffic at the achieved DDR bandwidth
  (board peak x fitted efficiency);
- ``plio``: the busiest input stream (A tile per cascade position, B tile per core) and the output
  tile per chain, at the slower of the PLIO (width x PL clock) and the 32-bit AIE stream port
  (memory-tile DMA channels when the data is kept on chip);
- ``compute``: ``k_passes`` x the tile in native ``aie::mmul`` shapes at the board's MACs/cycle
  and the kernel loop efficiency;
- ``cascade``: the m x n accumulator tile crossing the cascade port at the end of the chain.

Time = fixed overhead (DMA launch + graph run/wait, fitted) + iterations x slowest stage + the
pipeline fill and drain (the other stages once). ``bound`` names the term that dominates.
Every figure is modelled; :attr:`GemmEstimate.label` says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from math import ceil

from codesign.boards import Board
from codesign.cost.dataflow import DataflowPlan, plan_for
from codesign.cost.params import PerfParams, optional, perf_params
from codesign.cost.power import PowerEstimate, estimate_power
from codesign.cost.reference import TEMPUS_PL
from codesign.cost.resources import PlUsage, ResourceUsage
from codesign.cost.workload import DTYPE_BYTES, GemmWorkload, TemporalConfig, Tiling
from codesign.errors import OptionError
from codesign.ir.dtypes import ACC_TAG

MODELLED = "modelled"
STAGES = ("ddr", "plio", "compute", "cascade")


@dataclass(frozen=True)
class StageTimes:
    """Seconds one graph iteration spends in each stage (they overlap)."""

    ddr: float
    plio: float
    compute: float
    cascade: float

    def as_dict(self) -> dict[str, float]:
        return {s: getattr(self, s) for s in STAGES}

    @property
    def slowest(self) -> tuple[str, float]:
        d = self.as_dict()
        name = max(STAGES, key=lambda s: (d[s], -STAGES.index(s)))
        return name, d[name]


@dataclass(frozen=True)
class GemmEstimate:
    """Modelled time, throughput, traffic, power and resources of one GEMM on a temporal block.

    ``breakdown``: seconds each component is busy over the whole run (``compute``, ``cascade``,
    ``plio``, ``ddr``) and the fixed ``launch`` overhead; the stages overlap, so their sum exceeds
    ``time_s``. ``critical_path``: how ``time_s`` is made up (``launch``, ``fill``, ``steady``).
    """

    workload: GemmWorkload
    config: TemporalConfig
    board: str
    time_s: float
    cycles: int
    gops: float
    ddr_bytes: int
    ddr_bytes_by_operand: dict[str, int]
    iterations: int
    k_passes: int
    stage_s: StageTimes
    breakdown: dict[str, float]
    critical_path: dict[str, float]
    bound: str
    plan: DataflowPlan
    resources: ResourceUsage
    power: PowerEstimate
    notes: tuple[str, ...] = ()
    label: str = field(default=MODELLED)

    @property
    def modelled(self) -> bool:
        return self.label == MODELLED

    @property
    def power_w(self) -> float:
        return self.power.total_w

    @property
    def energy_j(self) -> float:
        return self.power_w * self.time_s

    @property
    def ddr_gbs(self) -> float:
        return self.ddr_bytes / self.time_s / 1e9

    @property
    def intensity(self) -> float:
        """Operations per DDR byte (roofline x-axis)."""
        return self.workload.ops / max(self.ddr_bytes, 1)


def _check(board: Board, w: GemmWorkload, c: TemporalConfig, p: PerfParams) -> tuple[int, int, int]:
    if w.dtype not in board.aie.macs_per_cycle:
        raise OptionError(
            f"dtype must be one of {', '.join(board.aie.macs_per_cycle)} on {board.name}, not {w.dtype!r}"
        )
    if c.plio_bits not in board.plio.widths_bits:
        raise OptionError(
            f"plio_bits must be one of {', '.join(map(str, board.plio.widths_bits))}, not {c.plio_bits}"
        )
    if p.pl_clock_hz > p.max_pl_clock_ratio * p.aie_clock_hz * (1 + 1e-9):
        raise OptionError(
            f"PL clock must be at most {p.max_pl_clock_ratio:g} x the AIE clock "
            f"({p.max_pl_clock_ratio * p.aie_clock_hz / 1e6:g} MHz), not {p.pl_clock_hz / 1e6:g} MHz"
        )
    return board.aie.mmul_shapes.get(w.dtype, (1, 1, 1))


def core_buffer_bytes(w: GemmWorkload, c: TemporalConfig, t: Tiling) -> int:
    """Per-core buffers: ping-pong A and B tiles, ping-pong output tile, and an accumulator tile
    when K needs more than one pass."""
    ba, bb, bo, acc = DTYPE_BYTES[w.dtype]
    m, k, n = c.tile_m, c.tile_k, c.tile_n
    buf = 2 * m * k * ba + 2 * k * n * bb + 2 * m * n * bo
    if t.k_passes > 1:
        buf += m * n * acc
    return ceil(buf)  # a sub-byte operand (int4) packs two elements per byte


@dataclass(frozen=True)
class PortStreams:
    """Bytes of one transfer into each A and B buffer port and out of each C buffer port of the
    compiled graph (:func:`codesign.aie.emit.port_bytes`). One graph serves every layer, so the
    ports are sized for the largest layer's tile and a smaller layer streams its tiles padded to
    them. C is an asynchronous output buffer sent once per tile, after its last K pass."""

    a: int
    b: int
    c: int


def estimate_temporal_gemm(
    board: Board,
    workload: GemmWorkload,
    config: TemporalConfig,
    *,
    pl: PlUsage | None = None,
    toggle: float | None = None,
    ports: PortStreams | None = None,
) -> GemmEstimate:
    """Model ``workload`` on the temporal block ``config`` of ``board``.

    ``pl``: PL resources of the data movers (default: Tempus's measured DMA, invariant to size).
    ``ports``: the compiled graph's buffer ports when known (a whole plan): the PLIO stage then
    carries whole padded ports (never less than the tile); without them the streams carry the
    tiles alone (the per-layer figure the tile search uses).
    Raises :class:`OptionError` for a dtype/PLIO/clock the board cannot run and
    :class:`BoardError` when the board file lacks a figure the model needs. It does not check the
    fit (see :func:`codesign.cost.resources.require_fit`).
    """
    w, c = workload, config
    p = perf_params(board, c.pl_clock_mhz, c.aie_clock_mhz)
    sa, sk, sn = _check(board, w, c, p)
    t = Tiling.of(w, c)
    plan = plan_for(board, w, c, t)
    notes: list[str] = []
    if c.dataflow == "reuse" and not plan.feasible:
        notes.append(f"reuse infeasible ({plan.why}); Tempus's streaming used instead")
        plan = plan_for(board, w, replace(c, dataflow="tempus", reuse_plan=None), t)
    ba, bb, bo, acc = DTYPE_BYTES[w.dtype]
    m, k, n = c.tile_m, c.tile_k, c.tile_n

    # stream rates (bytes/s): PLIO limited by the 32-bit AIE stream port; on-chip DMA channels
    plio_rate = min(c.plio_bits / 8 * p.pl_clock_hz, p.stream_bytes_per_cycle * p.aie_clock_hz)
    dma_rate = p.dma_bytes_per_cycle * p.aie_clock_hz
    rate = {"pl": plio_rate, "memtile": dma_rate, "uram": plio_rate}
    a_stream = t.k_passes * m * k * ba  # bytes per A stream per iteration
    b_stream = t.k_passes * k * n * bb
    c_stream = m * n * bo
    if ports is not None:  # whole buffer ports: a smaller layer pays for its padding
        a_stream = t.k_passes * max(ceil(m * k * ba), ports.a)
        b_stream = t.k_passes * max(ceil(k * n * bb), ports.b)
        c_stream = max(ceil(m * n * bo), ports.c)
    t_plio = max(
        a_stream / rate[plan.a_source], b_stream / rate[plan.b_source], c_stream / plio_rate
    )

    macs = board.aie.macs_per_cycle[w.dtype]
    padded = ceil(m / sa) * sa * ceil(k / sk) * sk * ceil(n / sn) * sn
    compute_cycles = t.k_passes * padded / macs / p.kernel_efficiency
    t_compute = compute_cycles / p.aie_clock_hz
    t_cascade = (m * n * acc / p.cascade_bytes_per_cycle) / p.aie_clock_hz if c.cascade > 1 else 0.0

    ddr_bw = p.ddr_bytes_s
    loaded = (plan.ddr_a if plan.a_source != "pl" else 0) + (
        plan.ddr_b if plan.b_source != "pl" else 0
    )
    t_ddr_total = plan.ddr_bytes / ddr_bw
    if plan.load_streams:
        t_ddr_total = max(t_ddr_total, loaded / (plan.load_streams * plio_rate))
    t_ddr = t_ddr_total / t.iterations

    stages = StageTimes(ddr=t_ddr, plio=t_plio, compute=t_compute, cascade=t_cascade)
    slow_name, slow = stages.slowest
    steady = t.iterations * slow
    fill = sum(stages.as_dict().values()) - slow
    fixed = p.fixed_overhead_s
    time_s = fixed + steady + fill
    bound = "launch" if fixed > steady else slow_name

    cores = c.cores
    plio_in = (c.cascade if plan.a_source == "pl" else 0) + (cores if plan.b_source == "pl" else 0)
    plio_in += plan.load_streams
    buf = core_buffer_bytes(w, c, t)
    resources = ResourceUsage(
        aie_cores=cores,
        memory_tiles=plan.memory_tiles,
        plio_in=plio_in,
        plio_out=c.chains,
        core_buffer_bytes=buf,
        aie_data_bytes=buf * cores,
        memory_tile_bytes=plan.onchip_bytes if plan.memory_tiles else 0,
        uram_blocks=plan.uram_blocks,
        aie_groups=(ACC_TAG.get(w.dtype, w.dtype),),
        pl=pl
        if pl is not None
        else PlUsage(
            TEMPUS_PL.lut,
            TEMPUS_PL.ff,
            TEMPUS_PL.bram,
            TEMPUS_PL.uram,
            TEMPUS_PL.dsp,
            source="Tempus DMA (reference)",
        ),
        pl_block="temporal-dma",
    )
    power = estimate_power(
        board,
        active_cores=cores,
        aie_clock_mhz=p.aie_clock_hz / 1e6,
        ddr_bytes_s=plan.ddr_bytes / time_s,
        pl=resources.pl,
        pl_clock_mhz=p.pl_clock_hz / 1e6,
        toggle=toggle,
    )
    if optional(board, "perf", "kernel_efficiency") is not None and bound == "compute":
        notes.append(
            f"compute-bound: kernel efficiency {p.kernel_efficiency:g} is a published figure "
            "(board file perf.kernel_efficiency), not measured by codesign"
        )
    return GemmEstimate(
        workload=w,
        config=c,
        board=board.name,
        time_s=time_s,
        cycles=round(time_s * p.aie_clock_hz),
        gops=w.ops / time_s / 1e9,
        ddr_bytes=plan.ddr_bytes,
        ddr_bytes_by_operand={"A": plan.ddr_a, "B": plan.ddr_b, "C": plan.ddr_c},
        iterations=t.iterations,
        k_passes=t.k_passes,
        stage_s=stages,
        breakdown={
            "compute": t_compute * t.iterations,
            "cascade": t_cascade * t.iterations,
            "plio": t_plio * t.iterations,
            "ddr": t_ddr_total,
            "launch": fixed,
        },
        critical_path={"launch": fixed, "fill": fill, "steady": steady},
        bound=bound,
        plan=plan,
        resources=resources,
        power=power,
        notes=tuple(notes),
    )
