"""The report of a build: its Plan run through the performance model, as the report dict.

Every GEMM layer is modelled with the block, tile and dataflow the scheduler chose; its entry
also carries the plan's own figures (K passes, padding, the tiling objective, the CP-SAT status)
and the modelled gain of the chosen dataflow over Tempus's policy on the same block and tile.
Chains of vector layers are modelled as one PL stream stage each (a fused vector unit makes
one pass over the data); reshapes cost nothing and are left out. The
largest GEMM is also mapped with the spatial (ARIES/CHARM-style) baseline for comparison.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from typing import Any

from codesign.boards import Board
from codesign.cost import (
    GemmWorkload,
    LayerEstimate,
    PlUsage,
    TemporalConfig,
    estimate_stream_layer,
    estimate_temporal_gemm,
    gemm_layer,
)
from codesign.cost.calibration import TEMPUS_PL_USAGE
from codesign.ir.graph import TensorType
from codesign.ir.plan import GemmLayer, Layer, Plan, VectorLayer
from codesign.report.build import compare_spatial, make_report


def _config(layer: GemmLayer) -> TemporalConfig:
    s = layer.schedule
    return TemporalConfig(
        s.block.chains,
        s.block.cascade,
        s.tile.m,
        s.tile.k,
        s.tile.n,
        dataflow=s.dataflow,
        reuse_plan=s.reuse_plan,
    )


def _gemm(
    board: Board, layer: GemmLayer, pl: PlUsage
) -> tuple[LayerEstimate, dict[str, Any], GemmWorkload]:
    s = layer.schedule
    work = GemmWorkload(s.M, s.K, s.N, layer.dtype)
    cfg = _config(layer)
    est = estimate_temporal_gemm(board, work, cfg, pl=pl)
    tempus = (
        est
        if cfg.dataflow == "tempus"
        else estimate_temporal_gemm(
            board, work, replace(cfg, dataflow="tempus", reuse_plan=None), pl=pl
        )
    )
    extra = {
        "k_passes": s.k_passes,
        "padded": [s.padded_M, s.padded_K, s.padded_N],
        "padding_waste": 1 - (s.M * s.K * s.N) / (s.padded_M * s.padded_K * s.padded_N),
        "cycles": est.cycles,
        "block_cycles": s.block_cycles,
        "core_memory_bytes": s.core_memory_bytes,
        "plio_in": s.plio_in,
        "plio_out": s.plio_out,
        "solver": s.solver.status,
        "solver_fallback": s.solver.fallback,
        "gain_over_tempus": tempus.time_s / est.time_s,
    }
    return gemm_layer(layer.name, est), extra, work


def pl_usage(synthesized: dict[str, Any] | None) -> PlUsage:
    """PL of the temporal block: the DMA data movers (Tempus's measured HLS figures, as the
    documented formula for HLS blocks) plus the build's RTL blocks from yosys when known."""
    if not synthesized:
        return TEMPUS_PL_USAGE
    rtl = PlUsage(
        lut=synthesized["lut"],
        ff=synthesized["ff"],
        bram=round(synthesized["bram"]),
        uram=synthesized["uram"],
        dsp=synthesized["dsp"],
        source="yosys synth_xilinx (xcup proxy): " + ", ".join(synthesized["blocks"]),
    )
    return TEMPUS_PL_USAGE + rtl


def plan_report(
    plan: Plan, board: Board, synthesized: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The report dict (schema in codesign/report/SCHEMA.md) of ``plan`` on ``board``.

    ``synthesized``: summed synthesis figures of the build's RTL blocks
    (:func:`codesign.codegen.rtl_blocks.synthesized_pl`), added to the PL resources and power.
    """
    pl = pl_usage(synthesized)
    layers: list[LayerEstimate] = []
    extra: dict[str, dict[str, Any]] = {}
    largest: GemmWorkload | None = None
    for group in _stages(plan):
        if isinstance(group[0], GemmLayer):
            est, extra[group[0].name], work = _gemm(board, group[0], pl)
            layers.append(est)
            if largest is None or work.ops > largest.ops:
                largest = work
        else:
            layers.append(_vector_stage(board, plan, group))
    notes = [
        "GEMM dataflow per layer: 'tempus' streams host-replicated tiles from DDR; 'reuse/<plan>' "
        "keeps panels on chip; gain_over_tempus is the modelled speed-up over Tempus's policy "
        "on the same block and tile",
        "the spatial rows compare the largest GEMM mapped by the model's own best temporal "
        "configuration with the ARIES/CHARM-style spatial baseline",
        f"PL resources: {pl.source}"
        + (f" ({synthesized['note']})" if synthesized and synthesized.get("note") else ""),
    ]
    notes += [
        f"solver fallback in {name!r}: {e['solver_fallback']}"
        for name, e in extra.items()
        if e.get("solver_fallback")
    ]
    report = make_report(
        board,
        layers,
        title=f"codesign report: {plan.model or 'model'} on {board.name}",
        spatial=compare_spatial(board, largest) if largest else (),
        notes=notes,
    )
    for entry in report["layers"]:
        entry.update(extra.get(entry["name"], {}))
    return report


def _stages(plan: Plan) -> list[list[Layer]]:
    """The plan's layers as hardware stages: a GEMM alone; a chain of element-wise layers, each
    consuming the previous one's output and nothing else of the chain, as one PL stream stage
    (one pass over the data, as a fused vector unit runs it); reshapes dropped (free views)."""
    stages: list[list[Layer]] = []
    # users per tensor, counted once for the whole plan (a scan per layer was quadratic)
    users = Counter(t for layer in plan.layers for t in set(layer.inputs))
    graph_outputs = {t.name for t in plan.outputs}
    for layer in plan.layers:
        if isinstance(layer, GemmLayer):
            stages.append([layer])
        elif isinstance(layer, VectorLayer):
            prev = stages[-1] if stages else None
            if (
                prev
                and isinstance(prev[-1], VectorLayer)
                and prev[-1].outputs[0] in layer.inputs
                and users[prev[-1].outputs[0]] == 1
                and prev[-1].outputs[0] not in graph_outputs
            ):
                prev.append(layer)
            else:
                stages.append([layer])
    return stages


def _vector_stage(board: Board, plan: Plan, group: list[Layer]) -> LayerEstimate:
    """One PL stream stage: reads the chain's external inputs, writes its last outputs."""
    internal = {t for layer in group[:-1] for t in layer.outputs}
    inputs = {
        t
        for layer in group
        for t in layer.inputs
        if t and t not in plan.constants and t not in internal
    }
    bytes_in = sum(_nbytes(plan, t) for t in sorted(inputs))
    bytes_out = sum(_nbytes(plan, t) for t in group[-1].outputs)
    name = group[0].name if len(group) == 1 else f"{group[0].name}..{group[-1].name}"
    kind = "vector:" + "+".join(layer.fn for layer in group)
    return estimate_stream_layer(board, name, bytes_in, bytes_out, kind=kind)


def _nbytes(plan: Plan, name: str) -> int:
    t = plan.tensor(name)
    return TensorType(tuple(t.shape), t.dtype).nbytes
