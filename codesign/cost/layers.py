"""Per-layer estimates for a whole model and their sum.

A model's layers run on three kinds of units: GEMMs on the temporal AIE block
(:func:`gemm_layer`), vector/elementwise layers streaming through the PL
(:func:`estimate_stream_layer`: bytes / (PL clock x stream width)), and host fallbacks on the
PS (:func:`estimate_host_layer`). :func:`summarize` adds them up, layer after layer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from codesign.boards import Board
from codesign.cost.params import perf_params, required
from codesign.cost.power import PowerEstimate, estimate_power
from codesign.cost.resources import PlUsage, ResourceUsage
from codesign.cost.temporal import MODELLED, GemmEstimate, estimate_temporal_gemm
from codesign.cost.workload import GemmWorkload, TemporalConfig
from codesign.errors import OptionError


@dataclass(frozen=True)
class LayerEstimate:
    """One layer, modelled. ``unit``: ``aie``, ``pl`` or ``ps``. ``breakdown``: busy seconds per
    component (overlapping). ``detail``: kind-specific figures for reports (M/K/N, tile ...)."""

    name: str
    kind: str
    unit: str
    time_s: float
    ops: int
    ddr_bytes: int
    bound: str
    power: PowerEstimate
    breakdown: dict[str, float]
    resources: ResourceUsage = field(default_factory=ResourceUsage)
    detail: dict[str, Any] = field(default_factory=dict)
    critical_path: dict[str, float] = field(default_factory=dict)
    label: str = MODELLED

    @property
    def gops(self) -> float:
        return self.ops / self.time_s / 1e9 if self.time_s > 0 else 0.0

    @property
    def power_w(self) -> float:
        return self.power.total_w

    @property
    def energy_j(self) -> float:
        return self.power_w * self.time_s


def gemm_layer(name: str, est: GemmEstimate, kind: str = "gemm") -> LayerEstimate:
    """A temporal GEMM estimate as one layer of a model."""
    c, w = est.config, est.workload
    return LayerEstimate(
        name=name,
        kind=kind,
        unit="aie",
        time_s=est.time_s,
        ops=w.ops,
        ddr_bytes=est.ddr_bytes,
        bound=est.bound,
        power=est.power,
        breakdown=dict(est.breakdown),
        resources=est.resources,
        critical_path=dict(est.critical_path),
        detail={
            "M": w.M,
            "K": w.K,
            "N": w.N,
            "dtype": w.dtype,
            "block": [c.chains, c.cascade],
            "tile": [c.tile_m, c.tile_k, c.tile_n],
            "dataflow": c.dataflow if est.plan.name == "tempus" else f"reuse/{est.plan.name}",
            "iterations": est.iterations,
            "k_passes": est.k_passes,
            "cycles": est.cycles,
        },
    )


def temporal_layer(
    board: Board,
    name: str,
    workload: GemmWorkload,
    config: TemporalConfig,
    *,
    pl: PlUsage | None = None,
    kind: str = "gemm",
) -> LayerEstimate:
    """Shorthand: :func:`estimate_temporal_gemm` then :func:`gemm_layer` (a Plan layer with its
    block, tile and dataflow fixed by the scheduler)."""
    return gemm_layer(name, estimate_temporal_gemm(board, workload, config, pl=pl), kind=kind)


def estimate_stream_layer(
    board: Board,
    name: str,
    bytes_in: int,
    bytes_out: int,
    *,
    kind: str = "vector",
    ops: int = 0,
    width_bits: int = 128,
    lanes: int = 1,
    pl_clock_mhz: float | None = None,
    from_ddr: bool = True,
    launch: bool = False,
    pl: PlUsage | None = None,
) -> LayerEstimate:
    """A vector/elementwise layer streaming through a PL unit ``lanes`` x ``width_bits`` wide:
    time = max(stream time, DDR time) (+ the launch overhead when it is launched on its own).
    ``from_ddr`` False: operands arrive on chip from the previous layer (no DDR traffic)."""
    if bytes_in < 0 or bytes_out < 0 or lanes < 1 or width_bits < 1:
        raise OptionError(f"stream layer {name}: bytes must be >= 0 and lanes, width >= 1")
    p = perf_params(board, pl_clock_mhz)
    rate = width_bits / 8 * p.pl_clock_hz * lanes
    t_stream = max(bytes_in, bytes_out) / rate
    ddr_bytes = bytes_in + bytes_out if from_ddr else 0
    t_ddr = ddr_bytes / p.ddr_bytes_s
    t_launch = p.fixed_overhead_s if launch else 0.0
    body = max(t_stream, t_ddr)
    time_s = t_launch + body
    bound = "launch" if t_launch > body else ("ddr" if t_ddr > t_stream else "stream")
    power = estimate_power(
        board,
        active_cores=0,
        ddr_bytes_s=ddr_bytes / time_s if time_s else 0.0,
        pl=pl,
        pl_clock_mhz=p.pl_clock_hz / 1e6,
    )
    return LayerEstimate(
        name=name,
        kind=kind,
        unit="pl",
        time_s=time_s,
        ops=ops,
        ddr_bytes=ddr_bytes,
        bound=bound,
        power=power,
        breakdown={"stream": t_stream, "ddr": t_ddr, "launch": t_launch},
        resources=ResourceUsage(pl=pl or PlUsage(), pl_block=f"stream:{name}"),
        critical_path={"launch": t_launch, "fill": 0.0, "steady": body},
        detail={
            "bytes_in": bytes_in,
            "bytes_out": bytes_out,
            "width_bits": width_bits,
            "lanes": lanes,
        },
    )


def estimate_host_layer(
    board: Board, name: str, flops: int, bytes_moved: int, *, kind: str = "host"
) -> LayerEstimate:
    """A layer left to the PS (onnxruntime on the A72s): max(flops / measured host GFLOPS,
    bytes / achieved DDR bandwidth)."""
    gflops = float(required(board, "ps", "host_gflops"))
    p = perf_params(board)
    t_cpu = flops / (gflops * 1e9)
    t_mem = bytes_moved / p.ddr_bytes_s
    time_s = max(t_cpu, t_mem, 1e-9)
    power = estimate_power(board, active_cores=0, ddr_bytes_s=bytes_moved / time_s)
    return LayerEstimate(
        name=name,
        kind=kind,
        unit="ps",
        time_s=time_s,
        ops=flops,
        ddr_bytes=bytes_moved,
        bound="host" if t_cpu >= t_mem else "ddr",
        power=power,
        breakdown={"host": t_cpu, "ddr": t_mem},
        critical_path={"launch": 0.0, "fill": 0.0, "steady": time_s},
        detail={"host_gflops": gflops},
    )


@dataclass(frozen=True)
class ModelEstimate:
    """A whole model, layers one after another: latency is the sum of layer times, energy the sum
    of layer energies; resources are shared by sequential layers (max), PL blocks add up."""

    layers: tuple[LayerEstimate, ...]
    time_s: float
    ops: int
    ddr_bytes: int
    energy_j: float
    resources: ResourceUsage
    missing_power: tuple[str, ...]
    label: str = MODELLED

    @property
    def gops(self) -> float:
        return self.ops / self.time_s / 1e9 if self.time_s else 0.0

    @property
    def avg_power_w(self) -> float:
        return self.energy_j / self.time_s if self.time_s else 0.0

    @property
    def peak_power_w(self) -> float:
        return max((x.power_w for x in self.layers), default=0.0)

    @property
    def inferences_per_s(self) -> float:
        return 1.0 / self.time_s if self.time_s else 0.0


def summarize(layers: Sequence[LayerEstimate]) -> ModelEstimate:
    """Sum ``layers`` (run in order) into a whole-model estimate."""
    res = ResourceUsage()
    missing: list[str] = []
    for x in layers:
        res = res.shared_with(x.resources)
        for m in x.power.missing:
            if m not in missing:
                missing.append(m)
    return ModelEstimate(
        layers=tuple(layers),
        time_s=sum(x.time_s for x in layers),
        ops=sum(x.ops for x in layers),
        ddr_bytes=sum(x.ddr_bytes for x in layers),
        energy_j=sum(x.energy_j for x in layers),
        resources=res.whole_design(),
        missing_power=tuple(missing),
    )
