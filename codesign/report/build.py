"""Build the report dict (schema ``codesign.report/1``, see SCHEMA.md) from modelled layers.

The lead's ``codesign report`` turns a Plan into :class:`LayerEstimate` objects (one per layer,
with :func:`codesign.cost.gemm_layer`, :func:`estimate_stream_layer`,
:func:`estimate_host_layer`) and calls :func:`make_report`; the renderers in
:mod:`codesign.report.html` and :mod:`codesign.report.terminal` take the dict.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from codesign.boards import Board, load
from codesign.cost import LayerEstimate, capacities, require_fit, summarize
from codesign.cost.calibration import power_rows, time_rows
from codesign.cost.execution import PER_LAUNCH_LABEL, WholeModelEstimate
from codesign.cost.params import optional

SCHEMA = "codesign.report/1"


def _layer_peak_gops(board: Board, layer: LayerEstimate) -> float | None:
    d = layer.detail
    if layer.unit != "aie" or "block" not in d:
        return None
    macs = board.aie.macs_per_cycle.get(d["dtype"])
    if macs is None:
        return None
    return d["block"][0] * d["block"][1] * macs * 2 * board.aie.clock_mhz / 1e3


def layer_entry(board: Board, layer: LayerEstimate) -> dict[str, Any]:
    """One ``layers[]`` entry."""
    d = layer.detail
    return {
        "name": layer.name,
        "kind": layer.kind,
        "unit": layer.unit,
        "M": d.get("M"),
        "K": d.get("K"),
        "N": d.get("N"),
        "dtype": d.get("dtype"),
        "block": d.get("block"),
        "tile": d.get("tile"),
        "dataflow": d.get("dataflow"),
        "iterations": d.get("iterations"),
        "time_s": layer.time_s,
        "bound": layer.bound,
        "ops": layer.ops,
        "gops": layer.gops,
        "ddr_bytes": layer.ddr_bytes,
        "intensity": (layer.ops / layer.ddr_bytes) if layer.ddr_bytes and layer.ops else None,
        "power_w": layer.power_w,
        "energy_j": layer.energy_j,
        "peak_gops": _layer_peak_gops(board, layer),
        "breakdown_s": dict(layer.breakdown),
        "critical_path_s": dict(layer.critical_path),
        "label": layer.label,
    }


def calibration_entries() -> list[dict[str, Any]]:
    """The calibration table (Tempus on VE2302), stated in every report."""
    ve = load("ve2302")
    out = []
    for r in time_rows(ve) + power_rows(ve):
        out.append(
            {
                "name": r.name,
                "quantity": r.quantity,
                "measured": r.measured,
                "modelled": r.modelled,
                "error": r.error,
                "tolerance": r.tolerance,
                "ok": r.ok,
                "source": r.source,
            }
        )
    return out


def board_entry(board: Board) -> dict[str, Any]:
    eff = optional(board, "perf", "ddr_efficiency")
    peak = board.ddr.bandwidth_gbs
    return {
        "name": board.name,
        "device": board.device,
        "part": board.part,
        "aie_clock_mhz": board.aie.clock_mhz,
        "pl_clock_mhz": board.pl.default_clock_mhz,
        "aie_tiles": board.aie.tiles,
        "memory_tiles": board.memory_tiles.count,
        "ddr_peak_gbs": peak,
        "ddr_achieved_gbs": peak * float(eff) if peak and eff is not None else None,
        "peak_gops": {
            dt: board.aie.tiles * m * 2 * board.aie.clock_mhz / 1e3
            for dt, m in board.aie.macs_per_cycle.items()
        },
    }


def make_report(
    board: Board,
    layers: Sequence[LayerEstimate],
    *,
    title: str | None = None,
    spatial: Iterable[dict[str, Any]] = (),
    notes: Iterable[str] = (),
    check_fit: bool = True,
    execution: WholeModelEstimate | None = None,
) -> dict[str, Any]:
    """The report dict for ``layers`` run in order on ``board``.

    ``check_fit``: raise :class:`FitError` (what overflows, by how much) when the shared
    resources exceed the board. ``spatial``: optional side-by-side rows (see :func:`spatial_entry`).
    ``execution``: the layers as one graph run per inference
    (:func:`codesign.cost.execution.whole_model` of ``layers``): the rows and totals then show
    the whole-model times, with each layer's and the model's per-launch figures beside them
    (Tempus's host flow). Without it each GEMM is its own graph run.
    """
    per_launch = list(layers)
    if execution is not None:
        layers = list(execution.views)
    m = summarize(layers)
    if check_fit:
        require_fit(board, m.resources, title or "model")
    util = capacities(board, m.resources)
    busiest = max(layers, key=lambda x: x.power_w) if layers else None
    power: dict[str, Any] = {
        "components": {},
        "total_w": 0.0,
        "complete": True,
        "missing": [],
        "assumptions": [],
    }
    if busiest is not None:
        p = busiest.power
        power = {
            "layer": busiest.name,
            "components": dict(p.components),
            "total_w": p.total_w,
            "complete": p.complete,
            "missing": list(m.missing_power),
            "assumptions": list(p.assumptions),
        }
    all_notes = ["every figure in this report is modelled (codesign.cost), not measured"]
    if m.missing_power:
        all_notes.append(
            f"power is a lower bound: {', '.join(m.missing_power)} not known for {board.name}"
        )
    all_notes += list(notes)
    resources = [
        {
            "resource": r.resource,
            "used": r.used,
            "available": r.available,
            "unit": r.unit,
            "fraction": r.fraction,
        }
        for r in util
    ]
    entries = [layer_entry(board, x) for x in layers]
    time_s, energy_j = m.time_s, m.energy_j
    if execution is not None:
        time_s = execution.time_s
        energy_j += execution.launch_energy_j
        for entry, x in zip(entries, per_launch, strict=True):
            entry["per_launch_time_s"] = x.time_s
        all_notes.append(execution_note(execution))
    totals = {
        "time_s": time_s,
        "ops": m.ops,
        "gops": m.ops / time_s / 1e9 if time_s else 0.0,
        "ddr_bytes": m.ddr_bytes,
        "energy_j": energy_j,
        "avg_power_w": energy_j / time_s if time_s else 0.0,
        "peak_power_w": m.peak_power_w,
        "inferences_per_s": 1.0 / time_s if time_s else 0.0,
    }
    if execution is not None:
        totals["per_launch_time_s"] = execution.per_launch_time_s
    return {
        "schema": SCHEMA,
        "modelled": True,
        "title": title or f"codesign report ({board.name})",
        "board": board_entry(board),
        "layers": entries,
        "totals": totals,
        "execution": execution_entry(execution) if execution is not None else None,
        "resources": resources,
        "fit": fit_verdict(board, resources),
        "advice": advice(layers, time_s, execution),
        "power": power,
        "calibration": calibration_entries(),
        "spatial": [_flag_plios(board, s) for s in spatial],
        "notes": all_notes,
    }


def build_context(
    root: Path | None,
    plan: Any,
    options: dict[str, Any] | None = None,
    tools: dict[str, str] | None = None,
    *,
    read_json: Callable[[Path, str], Any] | None = None,
) -> dict[str, Any]:
    """What was compiled and how, for the report: the codesign and tool versions, the compile
    options (given, or read back from the build's manifest.json), the graph's input and output
    shapes, and the last ``simulate --reference`` result (report/simulation.json) if any.
    ``root`` None: a build in memory (nothing to read back). ``read_json(root, rel)`` reads a
    build's JSON file, None when it is missing or unreadable: the callers pass
    :func:`codesign.sim.build_files.read_json` (no symlink followed; this module reads no files,
    so the schedulers that import it never import the file layer)."""
    from codesign.version import __version__

    def json_or(rel: str, default: Any) -> Any:
        if root is None or read_json is None:
            return default
        value = read_json(root, rel)
        return default if value is None else value

    manifest = json_or("manifest.json", {})
    if not isinstance(manifest, dict):
        manifest = {}
    # a damaged manifest or record only costs the report its options or simulation
    simulation = json_or(f"report/{SIMULATION_FILE}", None)

    def spec(t: Any) -> dict[str, Any]:
        return {"name": t.name, "shape": list(t.shape), "dtype": str(t.dtype)}

    return {
        "codesign_version": __version__,
        "tools": tools if tools is not None else manifest.get("tools", {}),
        "options": options if options is not None else manifest.get("options", {}),
        "inputs": [spec(t) for t in plan.inputs],
        "outputs": [spec(t) for t in plan.outputs],
        "simulation": simulation,
    }


#: Where ``codesign simulate --reference`` records its comparison inside BUILD/report/.
SIMULATION_FILE = "simulation.json"


def simulation_entry(results: Sequence[Any], ort_opt: str) -> dict[str, Any]:
    """The simulation record the report shows: per output the errors and the verdict."""
    return {
        "reference": f"onnxruntime (graph optimisation {ort_opt})",
        "passed": all(r.passed for r in results),
        "outputs": [
            {
                "name": r.name,
                "kind": r.kind,
                "max_abs": r.max_abs,
                "max_lsb": r.max_lsb,
                "equal_fraction": r.equal_fraction,
                "criterion": r.criterion,
                "passed": r.passed,
            }
            for r in results
        ],
    }


def fit_verdict(board: Board, resources: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Does the design fit ``board``? Resources whose capacity the board file leaves null are
    listed as unchecked rather than counted as fitting."""
    over = [r["resource"] for r in resources if r["fraction"] is not None and r["fraction"] > 1]
    unchecked = [r["resource"] for r in resources if r["available"] is None]
    if over:
        text = f"does not fit {board.name}: {', '.join(over)} over capacity"
    elif unchecked:
        text = (
            f"fits {board.name} on every checked resource; fit is unchecked for "
            f"{', '.join(unchecked)} (capacity not known for {board.name})"
        )
    else:
        text = f"fits {board.name} on every resource"
    return {"fits": not over, "over": over, "unchecked": unchecked, "text": text}


#: Share of the modelled time above which the report says the model is launch-bound.
LAUNCH_BOUND_SHARE = 0.5


def execution_entry(e: WholeModelEstimate) -> dict[str, Any]:
    """The report's ``execution`` section: what is paid per inference, per layer, per tile."""
    return {
        "mode": "whole-model",
        "launches_per_inference": e.launches,
        "launch_s": e.launch_s,
        "time_s": e.time_s,
        "per_launch_time_s": e.per_launch_time_s,
        "per_launch_label": PER_LAUNCH_LABEL,
        "speedup_over_per_launch": e.speedup,
        "reconfig_s": sum(s.reconfig_s for s in e.stages),
        "fill_s": sum(s.fill_s for s in e.stages),
        "steady_s": sum(s.steady_s for s in e.stages),
        "reconfig_source": e.reconfig_source,
        "per_layer": [
            {
                "name": s.name,
                "unit": s.unit,
                "reconfig_s": s.reconfig_s,
                "fill_s": s.fill_s,
                "tiles": s.tiles,
                "tile_s": s.tile_s,
                "weight_bytes": s.weight_bytes,
            }
            for s in e.stages
        ],
        "label": e.label,
    }


def execution_note(e: WholeModelEstimate) -> str:
    """One line saying how the latency is counted, with the per-launch figure beside it."""
    runs = "one graph run" if e.launches == 1 else f"{e.launches} graph runs"
    times = "once" if e.launches == 1 else "each time (one run per segment between Host partitions)"
    return (
        f"latency is {runs} per inference: launch {e.launch_s * 1e3:.3f} ms {times}, then "
        f"every layer's reconfiguration, pipeline fill and tiles ({e.time_s * 1e3:.3f} ms, "
        f"modelled); {PER_LAUNCH_LABEL}: {e.per_launch_time_s * 1e3:.3f} ms "
        f"({e.speedup:.2f}x slower); per-layer reconfiguration: {e.reconfig_source}"
    )


def advice(
    layers: Sequence[LayerEstimate], total_s: float, execution: WholeModelEstimate | None = None
) -> list[str]:
    """What would help, from where the modelled time goes (empty when nothing stands out).

    The fixed launch cost (kernel launch and graph run) is read from each layer's critical path,
    or once per inference under whole-model ``execution``; when it is most of the time, more work
    per launch is what helps."""
    if total_s <= 0:
        return []
    if execution is not None:
        launch = execution.launches * execution.launch_s
        share = launch / total_s
        if share < LAUNCH_BOUND_SHARE:
            return []
        return [
            f"{share:.1%} of the modelled time is launch overhead, paid once per inference "
            f"(one graph run per inference, {launch * 1e3:.3f} ms): the model is too small to "
            "keep the array busy; batch several inputs into one run (a larger M per GEMM)"
        ]
    launch = sum(x.critical_path.get("launch", 0.0) for x in layers)
    share = launch / total_s
    if share < LAUNCH_BOUND_SHARE:
        return []
    runs = sum(1 for x in layers if x.critical_path.get("launch", 0.0) > 0)
    return [
        f"{share:.1%} of the modelled time is launch overhead ({runs} graph run(s) of "
        f"{launch / max(runs, 1) * 1e3:.3f} ms fixed cost each): the model is too small to "
        "keep the array busy; batch several inputs into one run (a larger M per GEMM), or fuse "
        "the layers into one graph run so the launch is paid once"
    ]


def _flag_plios(board: Board, row: dict[str, Any]) -> dict[str, Any]:
    """A spatial/temporal row with the board's PLIO limit and whether the row exceeds it."""
    limit = board.plio_in_limit + board.plio_out_limit
    return {
        **row,
        "plio_limit": limit,
        "plio_over": row["plios"] > limit,
        "plio_full": row["plios"] >= limit,
    }


def spatial_entry(
    design: str, *, cores: int, plios: int, gops: float, power_w: float | None
) -> dict[str, Any]:
    """One row of the temporal-vs-spatial comparison."""
    return {
        "design": design,
        "cores": cores,
        "plios": plios,
        "gops": gops,
        "power_w": power_w,
        "gops_per_w": gops / power_w if power_w else None,
        "gops_per_core": gops / cores if cores else None,
    }


def compare_spatial(
    board: Board, workload, chosen: LayerEstimate | None = None
) -> list[dict[str, Any]]:
    """Temporal and spatial (ARIES/CHARM-style) rows for one GEMM on ``board``.

    The temporal row is ``chosen`` when given (the plan's own estimate of that GEMM: its block,
    tile and dataflow, as the cost model modelled it for the plan), else the cost model's best
    temporal configuration over every block (:func:`codesign.cost.choose_temporal_config`, a
    search of every block: seconds of CP-SAT for a large GEMM)."""
    from codesign.cost import choose_temporal_config
    from codesign.schedulers.spatial import map_spatial

    if chosen is not None:
        chains, cascade = chosen.detail["block"]
        temporal = spatial_entry(
            f"temporal {chains}x{cascade} ({workload.label()}, the plan's)",
            cores=chosen.resources.aie_cores or chains * cascade,
            plios=chosen.resources.plio_in + chosen.resources.plio_out,
            gops=chosen.gops,
            power_w=chosen.power_w,
        )
    else:
        t = choose_temporal_config(board, workload).estimate
        temporal = spatial_entry(
            f"temporal {t.config.chains}x{t.config.cascade} ({workload.label()})",
            cores=t.config.cores,
            plios=t.resources.plio_in + t.resources.plio_out,
            gops=t.gops,
            power_w=t.power_w,
        )
    s = map_spatial(board, workload)
    return [
        temporal,
        spatial_entry(
            f"spatial {s.config.a}x{s.config.b}x{s.config.c} ({workload.label()})",
            cores=s.cores,
            plios=s.config.plio_in + s.config.plio_out,
            gops=s.gops,
            power_w=s.power_w,
        ),
    ]
