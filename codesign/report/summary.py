"""The build report as data: per layer shape, tile, iterations, modelled cycles and GOPS, and the
resources used against the board. Every timing figure is modelled, and labelled so."""

from __future__ import annotations

from typing import Any

from codesign.boards import Board
from codesign.ir.plan import GemmLayer, Plan

SCHEMA = "codesign.report/1"


def build_report(plan: Plan, board: Board) -> dict[str, Any]:
    """The report of a build as a JSON-able dict (schema ``codesign.report/1``)."""
    clock_hz = board.aie.clock_mhz * 1e6
    layers = []
    total_cycles = 0
    total_ops = 0
    for layer in plan.layers:
        entry: dict[str, Any] = {"name": layer.name, "kind": layer.kind, "unit": layer.unit}
        if isinstance(layer, GemmLayer):
            s = layer.schedule
            ops = 2 * s.M * s.K * s.N
            seconds = s.modelled_cycles / clock_hz
            entry.update(
                M=s.M,
                K=s.K,
                N=s.N,
                dtype=layer.dtype,
                tile=str(s.tile),
                graph_iterations=s.graph_iterations,
                k_passes=s.k_passes,
                padded=f"{s.padded_M}x{s.padded_K}x{s.padded_N}",
                modelled_cycles=s.modelled_cycles,
                modelled_time_us=round(seconds * 1e6, 3),
                modelled_gops=round(ops / seconds / 1e9, 1) if seconds else None,
                padding_waste=round(
                    1 - (s.M * s.K * s.N) / (s.padded_M * s.padded_K * s.padded_N), 4
                ),
                core_memory_bytes=s.core_memory_bytes,
                solver=s.solver.status
                + (f" (fallback: {s.solver.fallback})" if s.solver.fallback else ""),
            )
            total_cycles += s.modelled_cycles
            total_ops += ops
        elif layer.kind == "vector":
            entry["fn"] = getattr(layer, "fn", "")
        layers.append(entry)
    gemms = plan.gemms()
    block = plan.block
    plio_in = max((g.schedule.plio_in for g in gemms), default=0)
    plio_out = max((g.schedule.plio_out for g in gemms), default=0)
    mem = max((g.schedule.core_memory_bytes for g in gemms), default=0)
    seconds = total_cycles / clock_hz
    return {
        "schema": SCHEMA,
        "modelled": True,
        "note": "cycles, times and GOPS are modelled (compute and PLIO streaming of the temporal "
        "block at the board's AIE clock), not measured",
        "board": board.name,
        "device": board.device,
        "aie_clock_mhz": board.aie.clock_mhz,
        "block": str(block),
        "layers": layers,
        "totals": {
            "gemm_layers": len(gemms),
            "modelled_cycles": total_cycles,
            "modelled_time_us": round(seconds * 1e6, 3),
            "modelled_gops": round(total_ops / seconds / 1e9, 1) if seconds else None,
        },
        "resources": {
            "aie_cores": {"used": block.cores if gemms else 0, "available": board.aie.tiles},
            "plio_in": {"used": plio_in, "available": board.plio_in_limit},
            "plio_out": {"used": plio_out, "available": board.plio_out_limit},
            "core_data_memory_bytes": {
                "used": mem,
                "available": board.aie.data_memory_bytes - board.aie.stack_reserve_bytes,
            },
        },
    }
