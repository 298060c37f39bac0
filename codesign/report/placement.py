"""Where each node runs (AIE / PL / Host) and what the Host partitions cost, for the report.

From the plan alone: a GEMM or vector layer is named after its ONNX node (``node/part`` for a
part of one), a Host layer lists its ONNX nodes. The Host partitions' figures (ARM compute,
boundary transfers, hand-off) come from the cost model's layer entries (modelled).
"""

from __future__ import annotations

from typing import Any

from codesign.ir.plan import Plan

#: report names of the plan-layer units
UNIT_NAMES = {"aie": "AIE", "pl": "PL", "host": "Host"}


def placement_entry(plan: Plan, layers: list[dict[str, Any]]) -> dict[str, Any]:
    """``{"nodes": [{node, unit, layer}], "units": {unit: count}, "host_partitions": [...],
    "transfer_s", "host_s", "label"}``; ``layers`` are the report's layer entries."""
    nodes: list[dict[str, str]] = []
    for layer in plan.layers:
        unit = UNIT_NAMES.get(layer.unit)
        if unit is None:
            continue  # views cost nothing and run nowhere
        names = getattr(layer, "nodes", None) if layer.unit == "host" else None
        for name in names or (layer.name,):
            nodes.append({"node": name, "unit": unit, "layer": layer.name})
    units: dict[str, int] = {}
    for n in nodes:
        units[n["unit"]] = units.get(n["unit"], 0) + 1
    by_name = {x["name"]: x for x in layers}
    partitions = []
    for layer in plan.layers:
        if layer.unit != "host":
            continue
        x = by_name.get(layer.name, {})
        b = x.get("breakdown_s") or {}
        partitions.append(
            {
                "name": layer.name,
                "nodes": list(getattr(layer, "nodes", ())),
                "op_types": list(getattr(layer, "op_types", ())),
                "transfer_bytes": x.get("ddr_bytes", 0),
                "transfer_s": b.get("transfer", 0.0),
                "handoff_s": b.get("handoff", 0.0),
                "compute_s": b.get("host", 0.0),
                "time_s": x.get("time_s", 0.0),
            }
        )
    return {
        "nodes": nodes,
        "units": units,
        "host_partitions": partitions,
        "transfer_s": sum(p["transfer_s"] + p["handoff_s"] for p in partitions),
        "host_s": sum(p["time_s"] for p in partitions),
        "label": "modelled",
    }


def render_placement(report: dict[str, Any], con: Any) -> None:
    """The placement tables for the terminal (80 columns; names folded, not cut)."""
    from codesign.report.terminal import make_table

    p = report.get("placement")
    if not p:
        return
    t = make_table("where the nodes run", ("runs on", "nodes", "names"))
    for unit in ("AIE", "PL", "Host"):
        names = [n["node"] for n in p["nodes"] if n["unit"] == unit]
        if names:
            shown = ", ".join(names[:6]) + (f" (+{len(names) - 6} more)" if len(names) > 6 else "")
            t.add_row(unit, str(len(names)), shown)
    con.print(t)
    if p["host_partitions"]:
        h = make_table(
            "Host partitions: ARM cores via onnxruntime (modelled)",
            ("partition", "nodes", "transfer KB", "transfer ms", "ARM ms"),
        )
        for x in p["host_partitions"]:
            h.add_row(
                x["name"],
                ", ".join(x["nodes"][:4]) + (" ..." if len(x["nodes"]) > 4 else ""),
                f"{x['transfer_bytes'] / 1024:,.1f}",
                f"{(x['transfer_s'] + x['handoff_s']) * 1e3:,.3f}",
                f"{x['compute_s'] * 1e3:,.3f}",
            )
        con.print(h)
