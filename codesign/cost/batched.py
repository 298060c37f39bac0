"""Batched activation x activation GEMMs (QK^T, attention x V) on the temporal block: the terms
the one temporal model (:mod:`codesign.cost.temporal`) gains when both operands are streamed.

A batched product is ``batch`` independent ``M x K x N`` GEMMs (one per head) walked one after
the other on the same block in one graph run. Every figure is modelled:

- **per head**: :func:`codesign.cost.estimate_temporal_gemm` of the ``M x K x N`` workload with
  the scheduler's block, tile and dataflow, its fixed overhead (launch + run) taken out. The
  block drains and refills between heads (conservative: the pipeline fill is paid per head).
- **once**: the fixed overhead, one launch for all heads.
- **B from the producer, not pre-packed**: a weight is packed offline in the block's B stream
  order; an activation B arrives in the producer's row-major order. A PL tiler holds one B panel
  (``K x chains*n``, double-buffered) in block RAM and replays it in the stream order; its BRAM
  is a PL part of its own (``batched-b-tiler``). It streams at the B PLIO rate, overlapped with
  the block (already the model's B stream term), so it adds resources, not time.
- **strided reads**: an operand read through a folded Transpose (head split, K^T) leaves DDR in
  contiguous runs of ``run_bytes`` (the source tensor's innermost axis as the panel walks it).
  The DMA moves whole beats of the PLIO width, so a run costs ``ceil(run/beat)*beat`` bytes: the
  extra bytes are added to DDR traffic and, serialised (conservative), to the time.
- **zero points** (int8 with both operands quantized): the row sums of A and column sums of B are
  formed by the tiler and the A stream as the data passes (adders on the stream, overlapped); not
  a time term. Their LUTs are not modelled.

The tile is the per-head model's choice (:func:`codesign.cost.tiles.search_tile`): the batched
time is ``fixed + batch * (head time - fixed) + strided-read time``, increasing in the head time,
so the per-head optimum is the batched optimum up to the strided-read term (which the tile
ranking does not see; it depends on the tile only through the panel widths).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from math import ceil

from codesign.boards import Board
from codesign.cost.layers import LayerEstimate
from codesign.cost.params import optional, perf_params
from codesign.cost.resources import PlUsage
from codesign.cost.temporal import MODELLED, GemmEstimate, PortStreams, estimate_temporal_gemm
from codesign.cost.workload import DTYPE_BYTES, GemmWorkload, TemporalConfig, Tiling
from codesign.errors import OptionError

#: the PL part the B tiler's block RAM is counted under
TILER_BLOCK = "batched-b-tiler"


@dataclass(frozen=True)
class BatchedEstimate:
    """A batched GEMM, modelled: the per-head estimate and the batched totals."""

    head: GemmEstimate
    batch: int
    time_s: float
    ddr_bytes: int
    strided_extra_bytes: int
    tiler_bram: int | None
    layer: LayerEstimate
    label: str = MODELLED


def beat_bytes(config: TemporalConfig) -> int:
    """Bytes of one DMA beat: the PLIO width the block streams at."""
    return max(1, config.plio_bits // 8)


def strided_factor(run_bytes: int, beat: int) -> float:
    """Bytes moved per useful byte when reads come in contiguous runs of ``run_bytes``."""
    if run_bytes < 1:
        raise OptionError(f"a contiguous run must be at least one byte, not {run_bytes}")
    return ceil(run_bytes / beat) * beat / run_bytes


def estimate_batched_gemm(
    board: Board,
    name: str,
    workload: GemmWorkload,
    config: TemporalConfig,
    batch: int,
    *,
    a_run_bytes: int,
    b_run_bytes: int,
    pl: PlUsage | None = None,
    kind: str = "batched_matmul",
    ports: PortStreams | None = None,
) -> BatchedEstimate:
    """Model ``batch`` heads of ``workload`` on the block ``config`` (see the module docstring).

    ``a_run_bytes`` / ``b_run_bytes``: the contiguous DDR runs each operand is read in.
    ``ports``: the compiled graph's buffer ports (:class:`codesign.cost.temporal.PortStreams`)."""
    if batch < 1:
        raise OptionError(f"batch must be a positive integer, not {batch}")
    head = estimate_temporal_gemm(board, workload, config, pl=pl, ports=ports)
    p = perf_params(board, config.pl_clock_mhz, config.aie_clock_mhz)
    fixed = head.critical_path["launch"]
    per_head = head.time_s - fixed
    beat = beat_bytes(config)
    extra = 0.0
    for operand, run in (("A", a_run_bytes), ("B", b_run_bytes)):
        extra += head.ddr_bytes_by_operand[operand] * (strided_factor(run, beat) - 1)
    extra_bytes = ceil(extra * batch)
    t_strided = extra_bytes / p.ddr_bytes_s
    time_s = fixed + batch * per_head + t_strided
    ddr_bytes = batch * head.ddr_bytes + extra_bytes

    t = Tiling.of(workload, config)
    bb = DTYPE_BYTES[workload.dtype][1]
    panel = t.k_pad * config.chains * config.tile_n * bb
    block = optional(board, "perf", "bram_block_bytes")
    tiler_bram = ceil(2 * panel / block) if block else None
    tiler = PlUsage(bram=tiler_bram, source="B tiler block RAM (modelled)")
    res = head.resources
    dma_block = res.pl_block or "temporal-dma"
    resources = replace(
        res,
        pl=res.pl + tiler,
        pl_parts=((dma_block, res.pl), (TILER_BLOCK, tiler)),
    )
    w, c = workload, config
    breakdown = {k: v * batch for k, v in head.breakdown.items() if k != "launch"}
    breakdown["launch"] = fixed
    breakdown["strided_ddr"] = t_strided
    steady = batch * head.critical_path["steady"]
    fill = batch * head.critical_path["fill"]
    # the term that dominates: the fixed overhead, the slowest stage of the steady state, or
    # the serialised strided reads
    terms = {"launch": fixed, head.stage_s.slowest[0]: steady, "strided_ddr": t_strided}
    bound = max(terms, key=lambda k: terms[k])
    layer = LayerEstimate(
        name=name,
        kind=kind,
        unit="aie",
        time_s=time_s,
        ops=batch * w.ops,
        ddr_bytes=ddr_bytes,
        bound=bound,
        power=head.power,
        breakdown=breakdown,
        resources=resources,
        detail={
            "M": w.M,
            "K": w.K,
            "N": w.N,
            "batch": batch,
            "dtype": w.dtype,
            "block": [c.chains, c.cascade],
            "tile": [c.tile_m, c.tile_k, c.tile_n],
            "dataflow": c.dataflow if head.plan.name == "tempus" else f"reuse/{head.plan.name}",
            "iterations": head.iterations * batch,
            "k_passes": head.k_passes,
            "cycles": round(time_s * p.aie_clock_hz),
            "a_run_bytes": a_run_bytes,
            "b_run_bytes": b_run_bytes,
            "strided_extra_bytes": extra_bytes,
            "b_tiler_bram": tiler_bram,
        },
        critical_path={"launch": fixed, "fill": fill, "steady": steady, "strided": t_strided},
    )
    return BatchedEstimate(
        head=head,
        batch=batch,
        time_s=time_s,
        ddr_bytes=ddr_bytes,
        strided_extra_bytes=extra_bytes,
        tiler_bram=tiler_bram,
        layer=layer,
    )
