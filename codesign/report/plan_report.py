"""The report of a build: its Plan run through the performance model, as the report dict.

Every GEMM layer is modelled with the block, tile and dataflow the scheduler chose; its entry
also carries the plan's own figures (K passes, padding, the modelled block cycles, the CP-SAT status)
and the modelled gain of the chosen dataflow over Tempus's policy on the same block and tile.
Chains of vector layers are modelled as one PL stream stage each (a fused vector unit makes
one pass over the data); reshapes cost nothing and are left out. The
largest GEMM is also mapped with the spatial (ARIES/CHARM-style) baseline for comparison.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from codesign.boards import Board
from codesign.cost import GemmWorkload, LayerEstimate, PlUsage, require_fit, summarize
from codesign.cost.calibration import TEMPUS_PL_USAGE
from codesign.cost.execution import whole_model
from codesign.ir.plan import (
    Execution,
    KernelVariant,
    Layer,
    LayerRun,
    Plan,
    inference_steps,
)
from codesign.kinds import registry
from codesign.kinds.registry import Cost
from codesign.report.build import compare_spatial, make_report


@dataclass(frozen=True)
class CostContext:
    """What a kind's cost entry needs: the board, the whole plan and the PL usage of the block."""

    board: Board
    plan: Plan
    pl: PlUsage


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
    largest_estimate: LayerEstimate | None = None
    for cost in stage_costs(plan, board, pl):
        layers.append(cost.estimate)
        if cost.extra:
            extra[cost.estimate.name] = dict(cost.extra)
        if cost.workload is not None and (largest is None or cost.workload.ops > largest.ops):
            largest, largest_estimate = cost.workload, cost.estimate
    notes = [
        "GEMM dataflow per layer: 'tempus' streams host-replicated tiles from DDR; 'reuse/<plan>' "
        "keeps panels on chip; gain_over_tempus is the modelled speed-up over Tempus's policy "
        "on the same block and tile",
        "the spatial rows compare the largest GEMM as the plan maps it (its block, tile and "
        "dataflow) with the ARIES/CHARM-style spatial baseline",
        f"PL resources: {pl.source}"
        + (f" ({synthesized['note']})" if synthesized and synthesized.get("note") else ""),
    ]
    notes.append(stage_summary(plan))
    notes += placement_notes(extra)
    if plan.execution is not None and plan.execution.variants:
        notes.append(variant_note(plan))
    notes += reuse_notes(plan)
    notes += [
        f"solver fallback in {name!r}: {e['solver_fallback']}"
        for name, e in extra.items()
        if e.get("solver_fallback")
    ]
    report = make_report(
        board,
        layers,
        title=_title(plan, board),
        spatial=compare_spatial(board, largest, largest_estimate) if largest else (),
        notes=notes,
        execution=whole_model(board, layers, launches(plan)),
    )
    for entry in report["layers"]:
        entry.update(extra.get(entry["name"], {}))
    _mark_synthesis(report, plan, synthesized)
    from codesign.report.placement import placement_entry

    report["placement"] = placement_entry(plan, report["layers"])
    return report


def estimate(plan: Plan, synthesized: dict[str, Any] | None = None) -> dict[str, Any]:
    """The report data (``report/report.json``) of ``plan`` on its board, from the cost model;
    FitError when the modelled resources exceed the board."""
    from codesign.boards import load

    return plan_report(plan, load(plan.board), synthesized)


def variant_note(plan: Plan) -> str:
    """The kernel tile variants the one graph is compiled with."""
    ex = plan.execution
    shown = ", ".join(f"{v.dtype} {v.tile}" for v in ex.variants)
    return (
        f"one graph serves every layer: {len(ex.variants)} GEMM kernel tile variant(s) "
        f"({shown}; at most {ex.max_variants} per dtype), chosen by the cost model"
    )


def _title(plan: Plan, board: Board) -> str:
    return f"codesign report: {plan.model or 'model'} on {board.name}"


def stage_costs(plan: Plan, board: Board, pl: PlUsage | None = None) -> list[Cost]:
    """The cost of every hardware stage of ``plan``, in order, each from its kind's cost entry
    (stages that cost nothing, such as views, are left out)."""
    ctx = CostContext(board, plan, pl if pl is not None else TEMPUS_PL_USAGE)
    costs = []
    for stage in stages(plan):
        cost = registry.coster(stage[0])(ctx, stage)
        if cost is not None:
            costs.append(cost)
    return costs


def execution_record(plan: Plan, board: Board, max_variants: int) -> Execution:
    """The plan's :class:`~codesign.ir.plan.Execution`: its hardware stages as one graph run per
    inference (:func:`codesign.cost.execution.whole_model`), in AIE cycles, with the GEMM kernel
    tile variants its layers use."""
    wm = whole_model(board, [c.estimate for c in stage_costs(plan, board)], launches(plan))
    hz = board.aie.clock_mhz * 1e6

    def cyc(seconds: float) -> int:
        return round(seconds * hz)

    variants: list[KernelVariant] = []
    index: dict[str, int] = {}
    for g in plan.gemms():
        v = KernelVariant(g.dtype, g.schedule.tile)
        if v not in variants:
            variants.append(v)
        index[g.name] = variants.index(v)
    runs = tuple(
        LayerRun(
            layer=s.name,
            unit=s.unit,
            variant=index.get(s.name, -1),
            tiles=s.tiles,
            tile_cycles=cyc(s.tile_s),
            fill_cycles=cyc(s.fill_s),
            reconfig_cycles=cyc(s.reconfig_s),
            weight_bytes=s.weight_bytes,
            launch_cycles=cyc(s.launch_s),
        )
        for s in wm.stages
    )
    return Execution(
        mode="whole-model",
        launches=wm.launches,
        launch_cycles=cyc(wm.launch_s),
        aie_clock_mhz=float(board.aie.clock_mhz),
        cycles=cyc(wm.time_s),
        per_launch_cycles=cyc(wm.per_launch_time_s),
        max_variants=max_variants,
        variants=tuple(variants),
        layers=runs,
        reconfig_source=wm.reconfig_source,
    )


def launches(plan: Plan) -> int:
    """Launches of the PL kernel and AIE graph per inference: one, plus one after each Host
    partition that layers follow (:func:`codesign.ir.plan.inference_steps`)."""
    steps = inference_steps([layer.unit for layer in plan.layers])
    return sum(what == "launch" for what, _ in steps)


def reuse_notes(plan: Plan) -> list[str]:
    """One note when GEMMs use a reuse dataflow, which the generated design does not express."""
    reuse = [g.schedule for g in plan.gemms() if g.schedule.dataflow == "reuse"]
    if not reuse:
        return []
    plans = sorted({s.reuse_plan or "reuse" for s in reuse})
    return [
        f"{len(reuse)} GEMM layer(s) use a reuse dataflow ({', '.join(plans)}), modelled with "
        "their operands kept on chip; the generated Vitis design does not express this reuse "
        "yet (its memory-tile buffers pass each tile through and the PL replays the operands "
        "from DDR, as in Tempus's policy), so the build moves more DDR bytes for these layers "
        "than modelled"
    ]


def check_fit(plan: Plan, board: Board, synthesized: dict[str, Any] | None = None) -> None:
    """Raise :class:`~codesign.errors.FitError` when the plan's modelled resources exceed the
    board (the same check and message as the report's)."""
    m = summarize([c.estimate for c in stage_costs(plan, board, pl_usage(synthesized))])
    require_fit(board, m.resources, _title(plan, board))


def _mark_synthesis(report: dict[str, Any], plan: Plan, synthesized: dict[str, Any] | None) -> None:
    """Say whether the PL figures include yosys synthesis of the build's RTL blocks: without it
    (yosys not on PATH at compile, or --no-synth) those blocks' LUT/FF/BRAM are left out."""
    from codesign.kinds.registry import rtl_specs_for

    missing = synthesized is None and bool(rtl_specs_for(plan))
    report["pl_synthesised"] = not missing
    if missing:
        report["notes"].insert(
            1,
            "PL figures NOT synthesised: yosys was not run at compile (not on PATH, or "
            "--no-synth), so the build's RTL blocks are left out of the PL LUT/FF/BRAM/DSP rows, "
            "which are understated; install yosys and compile again",
        )
        for r in report["resources"]:
            if r["resource"].startswith("PL "):
                r["synthesised"] = False


def placement_notes(extra: dict[str, dict[str, Any]]) -> list[str]:
    """One note on the layers a kind placed by the cost model (entries with a "placement"):
    how many run where, their modelled cycles and the PL resources of their units."""
    placed = {name: e for name, e in extra.items() if e.get("placement")}
    if not placed:
        return []
    where = Counter(e["placement"] for e in placed.values())
    # layers of one function share its PL unit: count each unit once
    pl = {e["pl_unit"]: e["nonlinear_pl"] for e in placed.values() if e.get("nonlinear_pl")}
    res = {k: sum(p[k] or 0 for p in pl.values()) for k in ("lut", "ff", "dsp", "bram")}
    return [
        f"nonlinear layers placed by the cost model (the faster of PL vector unit and AIE-ML "
        f"vector cores): {where.get('pl', 0)} on the PL, {where.get('aie', 0)} on the AIE; "
        f"{sum(e['cycles'] for e in placed.values()):,} modelled cycles in all (each at its "
        f"unit's clock); their {len(pl)} PL unit(s): {res['lut']:,} LUT, {res['ff']:,} FF, {res['dsp']:,} "
        f"DSP, {res['bram']:,} BRAM36 (modelled, not synthesised)"
    ] + (
        [
            f"the {where['aie']} nonlinear layer(s) on the AIE are modelled at the vector "
            "cores' fp32 rate; the generated AIE kernels compute them in scalar C++ (not yet "
            "vectorised), so on the board they take longer than modelled"
        ]
        if where.get("aie")
        else []
    )


def stage_summary(plan: Plan) -> str:
    """How the plan's layers map onto the report's rows (compile counts plan layers): the
    hardware stages of :func:`stages` by unit; views (unit "none") cost nothing and have no row."""
    rows = [s for s in stages(plan) if s[0].unit != "none"]
    by_unit: dict[str, int] = {}
    for s in rows:
        by_unit[s[0].unit] = by_unit.get(s[0].unit, 0) + 1
    free = len(plan.layers) - sum(len(s) for s in rows)
    parts = ", ".join(f"{n} on the {unit.upper()}" for unit, n in sorted(by_unit.items()))
    return (
        f"{len(plan.layers)} plan layers run as {len(rows)} hardware stages (the report's rows: "
        f"{parts or 'none'}); a chain of element-wise layers is one fused stream stage"
        + (f"; {free} view(s) cost nothing and have no row" if free else "")
    )


def stages(plan: Plan) -> list[list[Layer]]:
    """The plan's layers as hardware stages: each layer alone, except that consecutive layers of
    a kind that ``fuses`` (vector), each consuming the previous one's output and nothing else of
    the chain, form one stream stage (one pass over the data, as a fused vector unit runs it)."""
    stages: list[list[Layer]] = []
    # users per tensor, counted once for the whole plan (a scan per layer was quadratic)
    users = Counter(t for layer in plan.layers for t in set(layer.inputs))
    graph_outputs = {t.name for t in plan.outputs}
    for layer in plan.layers:
        prev = stages[-1] if stages else None
        if (
            prev
            and registry.fuses(layer)
            and prev[-1].kind == layer.kind
            and prev[-1].outputs[0] in layer.inputs
            and users[prev[-1].outputs[0]] == 1
            and prev[-1].outputs[0] not in graph_outputs
        ):
            prev.append(layer)
        else:
            stages.append([layer])
    return stages
