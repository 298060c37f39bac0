"""CP-SAT model narrowing the per-core GEMM tile (m, k, n) of the temporal block.

The tile is a multiple of the native aie::mmul shape (mm, mk, mn): m = mm*a, k = mk*b, n = mn*c.
The tile is finally chosen by the reported cost model (:mod:`codesign.cost.tiles`); this module
holds the integer part of that model that CP-SAT can express exactly.

**What CP-SAT expresses.** The reported time of a tile (:func:`codesign.cost.estimate_temporal_gemm`,
whichever dataflow is fastest) is ``launch + iterations x slowest stage + fill``. Its stages are
compute, cascade, PLIO and DDR. CP-SAT minimises a *proven lower bound* of that time built from
the same terms, in integer time units of :data:`UNIT_S` (every coefficient rounded down, so the
bound stays a bound)::

    per_iteration = max(k_passes*abc*compute, ac*cascade, k_passes*ab*A-stream,
                        k_passes*bc*B-stream, ac*C-stream)           # at the fastest source
    lower_bound   = launch + max(iterations * per_iteration,
                                 DDR bytes of the best dataflow (every operand read once) / DDR rate)

**What it cannot express exactly, and how the rest is decided.** The pipeline fill, the choice
among the dataflows and reuse plans (which depends on memory-tile and URAM placement), and the
stream source of each operand are not in the CP-SAT model. So CP-SAT *narrows*: after it proves
the optimum of the lower bound, the reported model times its tile (an upper bound ``U`` of the
best time), and :func:`candidates` enumerates with CP-SAT every tile whose lower bound is at most
``U``. No tile outside that set can beat the CP-SAT tile, so the reported model, deciding among
the candidates, finds the same tile as an exhaustive search under the reported model.

Both searches also keep only the *smallest tile of each (m_tiles, k_passes, n_tiles) class*:
within a class the iterations are equal and every term of the reported model (padded compute,
streams, cascade, DDR panels, buffers, on-chip bytes) grows with the tile, so the smallest tile is
never slower and the tie-break (smaller tile first) prefers it too.

Solvers are deterministic (one worker, fixed seed, deterministic time limit). When CP-SAT does not
prove its optimum, or the bounds leave its 64-bit range, a numpy enumeration of the same classes
takes its place and the :class:`SolverReport` says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from ortools.sat.python import cp_model

from codesign.errors import FitError
from codesign.ir.plan import SolverReport, Tile
from codesign.ir.tiling import tile_counts

#: Integer time unit of the CP-SAT model, in seconds (0.1 ps: coefficients lose < 0.1 %).
UNIT_S = 1e-13

#: CP-SAT variables and constraints must stay well inside int64.
_CP_SAT_LIMIT = 2**57  # several variables span the bound; their domains must sum inside int64


@dataclass(frozen=True)
class TilingProblem:
    """Everything the tile bound depends on, in integers (hashable, so solves can be cached).

    ``memory_budget``: bytes one core's buffers may use (ping-pong A, B and output tiles, and the
    accumulator when K needs more than one pass). The ``*_units`` figures are the lower-bound
    coefficients in units of :data:`UNIT_S` (see the module docstring). ``replicated``: only
    Tempus's policy is allowed, so A and B panels leave DDR every iteration (a tighter bound).
    """

    M: int
    K: int
    N: int
    native: tuple[int, int, int]
    chains: int
    cascade: int
    memory_budget: int
    bytes_a: int
    bytes_b: int
    bytes_out: int
    bytes_acc: int
    fixed_units: int
    compute_units: int
    cascade_units: int
    stream_a_units: int
    stream_b_units: int
    stream_c_units: int
    ddr_a_units: int
    ddr_b_units: int
    ddr_c_units: int
    replicated: bool = False

    @property
    def bounds(self) -> tuple[int, int, int]:
        """Largest useful factors (a, b, c): one tile covering the dimension."""
        mm, mk, mn = self.native
        return (
            math.ceil(self.M / mm),
            math.ceil(self.K / (self.cascade * mk)),
            math.ceil(self.N / (self.chains * mn)),
        )

    def counts(self, a, b, c):
        """(m_tiles, k_passes, n_tiles) of factors (a, b, c); works on numpy arrays."""
        mm, mk, mn = self.native
        tc = tile_counts(self.M, self.K, self.N, self.chains, self.cascade, mm * a, mk * b, mn * c)
        return tc.m_tiles, tc.k_passes, tc.n_tiles

    def memory(self, a, b, c):
        """Bytes of one core's buffers for factors (a, b, c); works on numpy arrays."""
        mm, mk, mn = self.native
        m, k, n = mm * a, mk * b, mn * c
        kt = self.counts(a, b, c)[1]
        base = 2 * m * k * self.bytes_a + 2 * k * n * self.bytes_b + 2 * m * n * self.bytes_out
        return base + (kt > 1) * (m * n * self.bytes_acc)

    def base_memory(self, a, b, c):
        """:meth:`memory` without the accumulator: a lower bound for every K split."""
        mm, mk, mn = self.native
        m, k, n = mm * a, mk * b, mn * c
        return 2 * m * k * self.bytes_a + 2 * k * n * self.bytes_b + 2 * m * n * self.bytes_out

    def lower_bound(self, a, b, c):
        """The lower bound of the reported time, in :data:`UNIT_S` (exact for Python ints)."""
        mt, kt, nt = self.counts(a, b, c)
        per_iter = _max(
            kt * a * b * c * self.compute_units,
            a * c * self.cascade_units,
            kt * a * b * self.stream_a_units,
            kt * b * c * self.stream_b_units,
            a * c * self.stream_c_units,
        )
        pm, pk, pn = mt * a, kt * b, nt * c
        if self.replicated:
            it = mt * nt
            ab = it * pk * (a * self.ddr_a_units + c * self.ddr_b_units)
        else:
            ab = pm * pk * self.ddr_a_units + pn * pk * self.ddr_b_units
        ddr = ab + pm * pn * self.ddr_c_units
        return self.fixed_units + _max(mt * nt * per_iter, ddr)

    def tile(self, a: int, b: int, c: int) -> Tile:
        mm, mk, mn = self.native
        return Tile(int(mm * a), int(mk * b), int(mn * c))

    def factors(self, tile: Tile) -> tuple[int, int, int]:
        mm, mk, mn = self.native
        return tile.m // mm, tile.k // mk, tile.n // mn


def _max(*xs):
    if all(isinstance(x, int) for x in xs):
        return max(xs)
    out = xs[0]
    for x in xs[1:]:
        out = np.maximum(out, x)
    return out


def _class_minimal(total_units: int, fmax: int) -> list[int]:
    """Factors f in 1..fmax that are the smallest of their tile-count class for a dimension of
    ``total_units`` native units (``ceil(total_units / f)`` tiles); O(sqrt) steps."""
    out = []
    f = 1
    while f <= fmax:
        out.append(f)
        t = -(-total_units // f)
        if t <= 1:
            break
        f = -(-total_units // (t - 1))  # the smallest factor giving fewer tiles
    return out


def _memory_caps(p: TilingProblem) -> tuple[int, int, int]:
    """Factor bounds: the problem's, and the buffers' with the other two factors at 1."""
    amax, bmax, cmax = p.bounds

    def largest(cost, hi: int) -> int:
        lo = 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if cost(mid) <= p.memory_budget:
                lo = mid
            else:
                hi = mid - 1
        return lo

    return (
        largest(lambda v: p.base_memory(v, 1, 1), amax),
        largest(lambda v: p.base_memory(1, v, 1), bmax),
        largest(lambda v: p.base_memory(1, 1, v), cmax),
    )


def class_factors(p: TilingProblem) -> tuple[list[int], list[int], list[int]]:
    """The smallest factor of every tile-count class whose buffers may fit, per dimension."""
    amax, bmax, cmax = p.bounds
    ca, cb, cc = _memory_caps(p)
    return (
        _class_minimal(amax, ca),
        _class_minimal(bmax, cb),
        _class_minimal(cmax, cc),
    )


def _grid(xs, ys, zs, dtype):
    a, b, c = np.meshgrid(
        np.asarray(xs, dtype=np.int64),
        np.asarray(ys, dtype=np.int64),
        np.asarray(zs, dtype=np.int64),
        indexing="ij",
    )
    return a.ravel().astype(dtype), b.ravel().astype(dtype), c.ravel().astype(dtype)


def _dtype(p: TilingProblem):
    return np.int64 if _worst_bound(p) < 2**62 else object


def all_tiles(p: TilingProblem) -> list[tuple[int, int, int]]:
    """Every tiling (a, b, c) whose buffers fit, sorted: the exhaustive search's space."""
    amax, bmax, cmax = _memory_caps(p)
    out: list[tuple[int, int, int]] = []
    for a in range(1, amax + 1):
        if p.base_memory(a, 1, 1) > p.memory_budget:  # grows with a: no larger a fits
            break
        b, c = np.meshgrid(
            np.arange(1, bmax + 1, dtype=np.int64),
            np.arange(1, cmax + 1, dtype=np.int64),
            indexing="ij",
        )
        b, c = b.ravel(), c.ravel()
        fits = p.memory(a, b, c) <= p.memory_budget
        out.extend((a, int(x), int(y)) for x, y in zip(b[fits], c[fits], strict=True))
    return out


def _slabs(p: TilingProblem):
    """Per factor ``a`` of the classes: (a, b, c, lower bounds) of the class-minimal tilings that
    fit. Bounds in int64 when the problem's bounds fit, else float64 (approximate)."""
    xs, ys, zs = class_factors(p)
    dtype = np.int64 if _worst_bound(p) < 2**62 else np.float64
    for a in xs:  # one slab per a keeps memory bounded
        _, b, c = _grid([a], ys, zs, np.int64)
        av = np.full(b.shape, a, dtype=np.int64)
        fits = _memory_i64(p, av, b, c) <= p.memory_budget
        av, b, c = av[fits], b[fits], c[fits]
        if b.size:
            yield a, b, c, p.lower_bound(av.astype(dtype), b.astype(dtype), c.astype(dtype))


def enumerate_candidates(p: TilingProblem, bound: int | None) -> list[tuple[int, int, int]]:
    """numpy enumeration of the class-minimal tilings that fit and whose lower bound is at most
    ``bound`` (all of them when None), sorted by (lower bound, a, b, c).

    Buffers are checked exactly (int64). The bound is evaluated in int64 when the problem's
    bounds fit, else in float64 with a relative slack of 1e-6 (a superset, in approximate
    lower-bound order: :func:`codesign.cost.tiles.search_tile` allows for it when it stops).
    """
    out: list[tuple] = []
    for a, b, c, lb in _slabs(p):
        keep = np.ones(lb.shape, dtype=bool) if bound is None else lb <= bound * (1 + 1e-6)
        out.extend(
            (x.item(), a, int(y), int(z))
            for x, y, z in zip(lb[keep], b[keep], c[keep], strict=True)
        )
    out.sort()
    return [(a, b, c) for _, a, b, c in out]


def _memory_i64(p: TilingProblem, a, b, c):
    """:meth:`TilingProblem.memory` on int64 arrays, exact for any K (the accumulator is needed
    when K exceeds one pass of ``cascade * k``)."""
    mm, mk, mn = p.native
    multi = True if p.K >= 2**62 else (p.cascade * mk * b < p.K)
    return p.base_memory(a, b, c) + multi * (mm * a * mn * c * p.bytes_acc)


def _worst_bound(p: TilingProblem) -> int:
    amax, bmax, cmax = p.bounds
    mt, kt, nt = p.counts(1, 1, 1)
    per_iter = max(
        kt * amax * bmax * cmax * p.compute_units,
        amax * cmax * p.cascade_units,
        kt * amax * bmax * p.stream_a_units,
        kt * bmax * cmax * p.stream_b_units,
        amax * cmax * p.stream_c_units,
    )
    pm, pk, pn = mt * amax, kt * bmax, nt * cmax
    ddr = pm * pk * p.ddr_a_units + pn * pk * p.ddr_b_units + pm * pn * p.ddr_c_units
    ddr += mt * nt * pk * (amax * p.ddr_a_units + cmax * p.ddr_b_units)
    return p.fixed_units + mt * nt * per_iter + ddr + pm * pk * pn


def check_native_fits(p: TilingProblem) -> None:
    """:class:`FitError` when not even the native mmul tile's buffers fit a core."""
    if p.base_memory(1, 1, 1) > p.memory_budget:
        raise FitError(
            f"the native {p.native[0]}x{p.native[1]}x{p.native[2]} tile needs {p.base_memory(1, 1, 1)} "
            f"bytes of core data memory, but only {p.memory_budget} are available"
        )


def solve_bound(p: TilingProblem, time_limit_s: float = 10.0) -> tuple[Tile, SolverReport]:
    """The class-minimal tile of smallest lower bound: from CP-SAT, or from the numpy enumeration
    as a reported fallback (``time_limit_s`` 0 skips CP-SAT). The report's objective is the proven
    lower bound in :data:`UNIT_S` (a limit of 0 leaves CP-SAT UNKNOWN: the fallback decides).
    Raises :class:`FitError` when the native tile does not fit."""
    return _solve_cached(p, float(time_limit_s))


def _fallback(p: TilingProblem, status: str, why: str) -> tuple[Tile, SolverReport]:
    tile, lb = enumerate_tile(p)
    return tile, SolverReport(
        "cp-sat",
        status,
        lb,
        fallback=f"{why}; exhaustive search chose the tile "
        "(numpy enumeration of the tile-count classes, decided by the reported model)",
    )


@lru_cache(maxsize=256)
def _solve_cached(p: TilingProblem, time_limit_s: float) -> tuple[Tile, SolverReport]:
    check_native_fits(p)
    built = _build_model(p)
    if built is None:
        return _fallback(p, "NOT_RUN", "the GEMM is too large for the CP-SAT model's 64-bit bounds")
    model, (a, b, c), obj = built
    model.minimize(obj)
    # among equal bounds prefer the smallest factors (the reported model's tie-break)
    model.add_decision_strategy([a, b, c], cp_model.CHOOSE_FIRST, cp_model.SELECT_MIN_VALUE)
    solver = _solver(time_limit_s)
    status = solver.solve(model)
    if status == cp_model.OPTIMAL:
        tile = p.tile(solver.value(a), solver.value(b), solver.value(c))
        return tile, SolverReport("cp-sat", "OPTIMAL", int(solver.objective_value))
    name = solver.status_name(status)
    return _fallback(p, name, f"CP-SAT ended {name} within its limit of {time_limit_s:g} s")


def _solver(time_limit_s: float) -> cp_model.CpSolver:
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = 1
    solver.parameters.random_seed = 0
    # CP-SAT's own SIGINT catcher swallows Ctrl-C and then resets SIGINT to SIG_DFL, so a later
    # Ctrl-C killed the process without cleaning up its temporary build: keep Python's handler
    solver.parameters.catch_sigint_signal = False
    solver.parameters.max_deterministic_time = time_limit_s
    solver.parameters.max_time_in_seconds = 3 * time_limit_s
    return solver


class _Collect(cp_model.CpSolverSolutionCallback):
    def __init__(self, vs) -> None:
        super().__init__()
        self.vs, self.found = vs, []

    def on_solution_callback(self) -> None:
        self.found.append(tuple(self.value(v) for v in self.vs))


def candidates(
    p: TilingProblem, bound: int, time_limit_s: float = 10.0
) -> tuple[list[tuple[int, int, int]], str | None]:
    """Every class-minimal tiling (a, b, c) that fits and whose lower bound is at most ``bound``
    (in :data:`UNIT_S`), enumerated by CP-SAT; sorted by (lower bound, a, b, c).

    Returns the list and a fallback note (None when CP-SAT enumerated them all).
    """
    built = _build_model(p) if time_limit_s > 0 else None
    if built is None:
        return enumerate_candidates(p, bound), "numpy enumeration listed the candidate tiles"
    model, abc, obj = built
    model.add(obj <= bound)
    solver = _solver(time_limit_s)
    solver.parameters.enumerate_all_solutions = True
    cb = _Collect(abc)
    status = solver.solve(model, cb)
    if status not in (cp_model.OPTIMAL, cp_model.INFEASIBLE):
        return enumerate_candidates(p, bound), (
            f"CP-SAT ended {solver.status_name(status)} listing candidates; "
            "numpy enumeration listed them"
        )
    found = sorted({(int(p.lower_bound(*t)), *t) for t in cb.found})
    return [(a, b, c) for _, a, b, c in found], None


def _build_model(p: TilingProblem):
    """The CP-SAT model of the lower bound over class-minimal tilings that fit, or None when its
    bounds would leave CP-SAT's 64-bit range. Returns (model, (a, b, c), objective)."""
    if _worst_bound(p) >= _CP_SAT_LIMIT:
        return None
    mm, mk, mn = p.native
    amax, bmax, cmax = p.bounds
    ca, cb, cc = _memory_caps(p)
    m = cp_model.CpModel()
    a = m.new_int_var(1, ca, "a")
    b = m.new_int_var(1, cb, "b")
    c = m.new_int_var(1, cc, "c")

    def prod(x, y, hi: int, name: str):
        v = m.new_int_var(0, hi, name)
        m.add_multiplication_equality(v, [x, y])
        return v

    ab = prod(a, b, amax * bmax, "ab")
    bc = prod(b, c, bmax * cmax, "bc")
    ac = prod(a, c, amax * cmax, "ac")
    mt, pm = _class_count(m, p.M, mm, a, amax, "m")
    kt, pk = _class_count(m, p.K, p.cascade * mk, b, bmax, "k")
    nt, pn = _class_count(m, p.N, p.chains * mn, c, cmax, "n")
    # buffers: ping-pong A, B and output; the accumulator only when K takes more than one pass
    base = (
        2 * mm * mk * p.bytes_a * ab + 2 * mk * mn * p.bytes_b * bc + 2 * mm * mn * p.bytes_out * ac
    )
    multi = m.new_bool_var("k_multi_pass")
    m.add(kt >= 2).only_enforce_if(multi)
    m.add(kt <= 1).only_enforce_if(multi.negated())
    m.add(base <= p.memory_budget)
    m.add(base + mm * mn * p.bytes_acc * ac <= p.memory_budget).only_enforce_if(multi)

    kt_hi, it_hi = p.bounds[1], p.bounds[0] * p.bounds[2]
    pk_ac = prod(pk, ac, kt_hi * bmax * amax * cmax, "pk_ac")
    pk_a = prod(pk, a, kt_hi * bmax * amax, "pk_a")
    pk_c = prod(pk, c, kt_hi * bmax * cmax, "pk_c")
    terms = [
        coef * v
        for coef, v in (
            (p.compute_units, pk_ac),
            (p.cascade_units, ac),
            (p.stream_a_units, pk_a),
            (p.stream_b_units, pk_c),
            (p.stream_c_units, ac),
        )
        if coef > 0  # a zero coefficient (no cascade) is not a valid CP-SAT max term
    ] or [0 * ac]
    hi = _worst_bound(p)
    per_iter = m.new_int_var(0, hi, "per_iteration")
    m.add_max_equality(per_iter, terms)
    iters = prod(mt, nt, it_hi, "iterations")
    steady = prod(iters, per_iter, hi, "steady")
    pm_hi, pk_hi, pn_hi = amax * p.counts(1, 1, 1)[0], kt_hi * bmax, cmax * p.counts(1, 1, 1)[2]
    pmpn = prod(pm, pn, pm_hi * pn_hi, "pm_pn")
    ddr = m.new_int_var(0, hi, "ddr")
    if p.replicated:  # Tempus: the A and B panels leave DDR every iteration
        it_a = prod(iters, pk_a, it_hi * kt_hi * bmax * amax, "it_pk_a")
        it_c = prod(iters, pk_c, it_hi * kt_hi * bmax * cmax, "it_pk_c")
        m.add(ddr == p.ddr_a_units * it_a + p.ddr_b_units * it_c + p.ddr_c_units * pmpn)
    else:  # any dataflow reads every operand at least once
        pmpk = prod(pm, pk, pm_hi * pk_hi, "pm_pk")
        pnpk = prod(pn, pk, pn_hi * pk_hi, "pn_pk")
        m.add(ddr == p.ddr_a_units * pmpk + p.ddr_b_units * pnpk + p.ddr_c_units * pmpn)
    body = m.new_int_var(0, hi, "slowest")
    m.add_max_equality(body, [steady, ddr])
    obj = m.new_int_var(0, hi, "lower_bound")
    m.add(obj == body + p.fixed_units)
    return m, (a, b, c), obj


def _class_count(m: cp_model.CpModel, dim: int, unit: int, f, fmax: int, tag: str):
    """t = ceil(dim / (unit*f)), with f the smallest factor giving t tiles (class-minimal):
    unit*t*f >= dim, unit*(t*f - f) < dim, and unit*(t*f - t) < dim."""
    tmax = math.ceil(dim / unit)
    t = m.new_int_var(1, tmax, f"{tag}_tiles")
    prod = m.new_int_var(1, tmax * fmax, f"{tag}_padded_units")
    m.add_multiplication_equality(prod, [t, f])
    m.add(unit * prod >= dim)
    m.add(unit * (prod - f) <= dim - 1)
    m.add(unit * (prod - t) <= dim - 1)
    return t, prod


def enumerate_tile(p: TilingProblem) -> tuple[Tile, int]:
    """The class-minimal tile of smallest lower bound by numpy enumeration, and that bound: what
    :func:`solve_bound` falls back to (ties: smallest a, b, c). Exact: the near-best tilings of
    each slab are compared in Python integers."""
    check_native_fits(p)
    pool: list[tuple[int, int, int]] = []
    lead = None
    for a, b, c, lb in _slabs(p):
        low = lb.min().item()
        if lead is not None and low > lead * (1 + 1e-6):
            continue
        lead = low if lead is None else min(lead, low)
        near = lb <= low * (1 + 1e-6)
        pool.extend((a, int(y), int(z)) for y, z in zip(b[near], c[near], strict=True))
    a, b, c = min(pool, key=lambda t: (p.lower_bound(*t), t))
    return p.tile(a, b, c), int(p.lower_bound(a, b, c))


#: Former name of :func:`solve_bound`.
solve_tile = solve_bound
