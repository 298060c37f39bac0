"""ARIES/CHARM-style spatial GEMM mapping (cores grow with the matrix), as a modelled baseline.

The array is ``A x B x C`` cores (M-parallel x K-parallel x N-parallel), each multiplying an
``i x k x j`` tile per batch iteration; A tiles are broadcast along C, B tiles along A, partial
sums reduce over B inside the array and leave once per K loop. Throughput is

    cores x MACs/cycle x 2 x f_AIE x kernel efficiency x system efficiency x I/O ratio

where the I/O ratio (<= 1) compares a batch's compute time with the time its unique input tiles
and its outputs need on the available PLIOs (each limited by its width x PL clock and by the
32-bit AIE stream port), and the system efficiency (PL data movers, synchronisation, DDR) is the
one fitted parameter per dtype: fitted on the published VCK190 figures of ARIES and CHARM
(REFERENCES.md s4), i.e. both frameworks are explained by one efficiency per dtype. The AIE clock
of those designs is 1 GHz (CHARM: "400 AI Engine processors executing at 1 GHz"). Every figure is
modelled.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from math import ceil, prod, sqrt

from codesign.boards import Board, load
from codesign.cost.params import optional
from codesign.cost.power import PowerEstimate, estimate_power
from codesign.cost.reference import SPATIAL_POINTS, SpatialPoint
from codesign.cost.temporal import MODELLED
from codesign.cost.workload import DTYPE_BYTES, GemmWorkload
from codesign.errors import OptionError

#: per-core tile candidates (i, k, j), multiplied by the native mmul shape where needed
_TILES = (
    (32, 32, 32),
    (32, 64, 32),
    (32, 128, 32),
    (64, 32, 64),
    (64, 64, 64),
    (16, 64, 16),
    (16, 32, 16),
)

#: large square GEMM used to reproduce the published peak-throughput figures
PUBLISHED_SIZE = 6144


@dataclass(frozen=True)
class SpatialConfig:
    """A spatial mapping: array ``a x b x c`` (M, K, N), per-core tile ``i x k x j``."""

    a: int
    b: int
    c: int
    tile_i: int
    tile_k: int
    tile_j: int
    plio_in: int
    plio_out: int
    aie_clock_mhz: float
    pl_clock_mhz: float
    plio_bits: int = 128

    @property
    def cores(self) -> int:
        return self.a * self.b * self.c


@dataclass(frozen=True)
class SpatialEstimate:
    workload: GemmWorkload
    config: SpatialConfig
    board: str
    time_s: float
    gops: float
    peak_gops: float
    io_ratio: float
    io_demand: float
    system_efficiency: float
    kernel_efficiency: float
    bound: str
    power: PowerEstimate | None
    notes: tuple[str, ...] = ()
    label: str = field(default=MODELLED)

    @property
    def cores(self) -> int:
        return self.config.cores

    @property
    def efficiency(self) -> float:
        return self.gops / self.peak_gops

    @property
    def gops_per_core(self) -> float:
        return self.gops / self.cores

    @property
    def power_w(self) -> float | None:
        return None if self.power is None else self.power.total_w

    @property
    def gops_per_w(self) -> float | None:
        p = self.power_w
        return None if not p else self.gops / p


def _factorizations(p: int) -> list[tuple[int, int, int]]:
    out = []
    for a in range(1, p + 1):
        if p % a:
            continue
        for b in range(1, p // a + 1):
            if (p // a) % b:
                continue
            out.append((a, b, p // a // b))
    return out


def _system_efficiency(board: Board, dtype: str) -> tuple[float, str]:
    own = optional(board, "spatial", "system_efficiency")
    if isinstance(own, dict) and own.get(dtype) is not None:
        return float(own[dtype]), ""
    ref = optional(load("vck190"), "spatial", "system_efficiency") or {}
    if dtype in ref and ref[dtype] is not None:
        return float(
            ref[dtype]
        ), f"system efficiency for {dtype} taken from the VCK190 (AIE gen 1) fit"
    vals = [float(v) for v in ref.values() if v is not None]
    if not vals:
        return 1.0, "no system efficiency fitted; 1.0 used"
    return sum(vals) / len(vals), f"no fit for {dtype}: mean VCK190 system efficiency used"


def estimate_spatial_gemm(
    board: Board,
    workload: GemmWorkload,
    cfg: SpatialConfig,
    *,
    system_efficiency: float | None = None,
) -> SpatialEstimate:
    """Model ``workload`` on the spatial mapping ``cfg``."""
    w = workload
    if w.dtype not in board.aie.macs_per_cycle:
        raise OptionError(
            f"dtype must be one of {', '.join(board.aie.macs_per_cycle)} on {board.name}, not {w.dtype!r}"
        )
    notes: list[str] = []
    ba, bb, bo, _ = DTYPE_BYTES[w.dtype]
    macs = board.aie.macs_per_cycle[w.dtype]
    f = cfg.aie_clock_mhz * 1e6
    k_eff = float(optional(board, "perf", "kernel_efficiency") or 1.0)
    if system_efficiency is None:
        s_eff, note = _system_efficiency(board, w.dtype)
        if note:
            notes.append(note)
    else:
        s_eff = system_efficiency
    i, k, j = cfg.tile_i, cfg.tile_k, cfg.tile_j
    t_c = i * k * j / macs / k_eff / f
    rate = min(cfg.plio_bits / 8 * cfg.pl_clock_mhz * 1e6, board.aie.stream_bits / 8 * f)
    k_iters = max(1, ceil(w.K / (cfg.b * k)))
    t_in = (cfg.a * cfg.b * i * k * ba + cfg.b * cfg.c * k * j * bb) / (cfg.plio_in * rate)
    t_out = cfg.a * cfg.c * i * j * bo / k_iters / (cfg.plio_out * rate)
    io_ratio = min(1.0, t_c / max(t_in, t_out, 1e-30))
    Mp = ceil(w.M / (cfg.a * i)) * cfg.a * i
    Kp = ceil(w.K / (cfg.b * k)) * cfg.b * k
    Np = ceil(w.N / (cfg.c * j)) * cfg.c * j
    peak = cfg.cores * macs * 2 * f
    t_compute = 2 * Mp * Kp * Np / (peak * k_eff * s_eff * io_ratio)
    bound = "plio" if io_ratio < 1.0 else "compute"
    t_ddr = 0.0
    if board.ddr.bandwidth_gbs and optional(board, "perf", "ddr_efficiency"):
        bw = board.ddr.bandwidth_gbs * 1e9 * float(optional(board, "perf", "ddr_efficiency"))
        t_ddr = (w.a_bytes + w.b_bytes + w.c_bytes) / bw
    else:
        notes.append(f"DDR bound not modelled: {board.name} has no DDR bandwidth figures")
    time_s = max(t_compute, t_ddr)
    if t_ddr > t_compute:
        bound = "ddr"
    overhead = optional(board, "perf", "launch_s")
    if overhead is not None:
        time_s += float(overhead) + float(optional(board, "perf", "run_overhead_s") or 0.0)
    power = None
    if optional(board, "power", "aie_core_w_per_ghz") is not None:
        power = estimate_power(
            board,
            active_cores=cfg.cores,
            aie_clock_mhz=cfg.aie_clock_mhz,
            ddr_bytes_s=(w.a_bytes + w.b_bytes + w.c_bytes) / time_s,
            pl_clock_mhz=cfg.pl_clock_mhz,
        )
    return SpatialEstimate(
        workload=w,
        config=cfg,
        board=board.name,
        time_s=time_s,
        gops=w.ops / time_s / 1e9,
        peak_gops=peak / 1e9,
        io_ratio=io_ratio,
        io_demand=max(t_in, t_out) / t_c,
        system_efficiency=s_eff,
        kernel_efficiency=k_eff,
        bound=bound,
        power=power,
        notes=tuple(notes),
    )


def _clock(board: Board) -> float:
    return float(optional(board, "spatial", "aie_clock_mhz") or board.aie.clock_mhz)


def _tile_fits(board: Board, dtype: str, tile: tuple[int, int, int]) -> bool:
    ba, bb, bo, acc = DTYPE_BYTES[dtype]
    i, k, j = tile
    buf = 2 * i * k * ba + 2 * k * j * bb + i * j * max(bo, acc)
    modules = int(optional(board, "perf", "neighbour_memory_modules") or 1)
    return buf <= modules * board.aie.data_memory_bytes - board.aie.stack_reserve_bytes


def map_spatial(
    board: Board,
    workload: GemmWorkload,
    *,
    cores: int | None = None,
    plio_in: int | None = None,
    plio_out: int | None = None,
    pl_clock_mhz: float | None = None,
    system_efficiency: float | None = None,
) -> SpatialEstimate:
    """The best spatial mapping of ``workload``: cores grow with the matrix up to the array (or
    exactly ``cores``), PLIOs up to the board's limits (or the given counts). Deterministic
    enumeration of array shapes and per-core tiles; fastest wins, ties to the lowest I/O demand
    (PLIO time / compute time), then the squarest array."""
    w = workload
    shape = board.aie.mmul_shapes.get(w.dtype, (1, 1, 1))
    tiles = [
        t
        for t in {tuple(ceil(v / q) * q for v, q in zip(t, shape, strict=True)) for t in _TILES}
        if _tile_fits(board, w.dtype, t)
    ]
    if not tiles:
        raise OptionError(f"no spatial tile of {w.dtype} fits a core of {board.name}")
    pin = plio_in or board.plio_in_limit
    pout = plio_out or board.plio_out_limit
    f_aie, f_pl = _clock(board), pl_clock_mhz or board.pl.default_clock_mhz
    best = None
    for t in sorted(tiles):
        i, k, j = t
        if cores is None:
            need = ceil(w.M / i) * ceil(w.K / k) * ceil(w.N / j)
            p = min(board.aie.tiles, need)
        else:
            p = cores
        for a, b, c in _factorizations(p):
            if cores is None and (
                a * i > ceil(w.M / i) * i or c * j > ceil(w.N / j) * j or b * k > ceil(w.K / k) * k
            ):
                continue
            cfg = SpatialConfig(a, b, c, i, k, j, pin, pout, f_aie, f_pl)
            est = estimate_spatial_gemm(board, w, cfg, system_efficiency=system_efficiency)
            key = (round(est.time_s, 12), round(est.io_demand, 6), abs(a - c), t)
            if best is None or key < best[0]:
                best = (key, est)
    if best is None:
        raise OptionError(f"no spatial mapping of {w.label()} on {board.name}")
    est = best[1]
    if cores is None and est.cores == board.aie.tiles:
        need = min(
            ceil(w.M / est.config.tile_i)
            * ceil(w.K / est.config.tile_k)
            * ceil(w.N / est.config.tile_j),
            10**9,
        )
        if need > est.cores:
            est = replace(
                est,
                notes=est.notes
                + (f"the matrix wants {need} cores; the array has {board.aie.tiles}: capped",),
            )
    return est


# --- reproduction of the published VCK190 points --------------------------------------------


@dataclass(frozen=True)
class SpatialRow:
    point: SpatialPoint
    estimate: SpatialEstimate

    @property
    def modelled_tops(self) -> float:
        return self.estimate.gops / 1e3

    @property
    def error(self) -> float:
        return self.modelled_tops / self.point.tops - 1.0


def published_rows(
    board: Board | None = None, system_efficiency: dict[str, float] | None = None
) -> list[SpatialRow]:
    """Each published VCK190 design (REFERENCES.md s4) modelled with its core (and PLIO) count on
    a large square GEMM."""
    board = board or load("vck190")
    rows = []
    for pt in SPATIAL_POINTS:
        w = GemmWorkload(PUBLISHED_SIZE, PUBLISHED_SIZE, PUBLISHED_SIZE, pt.dtype)
        se = None if system_efficiency is None else system_efficiency[pt.dtype]
        est = map_spatial(
            board, w, cores=pt.cores, plio_in=pt.plio_in, plio_out=pt.plio_out, system_efficiency=se
        )
        rows.append(SpatialRow(pt, est))
    return rows


def fit_system_efficiency(board: Board | None = None) -> dict[str, float]:
    """One system efficiency per dtype: the geometric mean over the published designs of
    (published / modelled at efficiency 1), so ARIES and CHARM err symmetrically."""
    board = board or load("vck190")
    ones = {pt.dtype: 1.0 for pt in SPATIAL_POINTS}
    rows = published_rows(board, ones)
    out: dict[str, float] = {}
    for dtype in ones:
        ratios = [r.point.tops / r.modelled_tops for r in rows if r.point.dtype == dtype]
        out[dtype] = round(
            prod(ratios) ** (1 / len(ratios)) if len(ratios) != 2 else sqrt(prod(ratios)), 4
        )
    return out
