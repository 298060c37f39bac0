"""CP-SAT model choosing the per-core GEMM tile (m, k, n) of the temporal block.

The tile is a multiple of the native aie::mmul shape (mm, mk, mn): m = mm*a, k = mk*b, n = mn*c.
Constraints: the double-buffered A and B tiles and the accumulator tile fit the core's data
memory. Objective: modelled cycles of the whole GEMM, padding included::

    iterations = ceil(M / m) * ceil(N / (chains * n))
    k_passes   = ceil(K / (cascade * k))
    pass       = max(a*b*c*cycles_per_mmul + pass_overhead, A-tile stream, B-tile stream)
    cycles     = iterations * (k_passes * pass + iteration_overhead)

All quantities are scaled to integers. Ties are broken towards larger tiles (fewer iterations)
by the search order. :func:`enumerate_tile` computes the same optimum by exhaustive search; it
is the fallback when CP-SAT does not prove a solution within its limits, and the tests' oracle.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

import numpy as np
from ortools.sat.python import cp_model

from codesign.errors import FitError
from codesign.ir.plan import SolverReport, Tile


@dataclass(frozen=True)
class TilingProblem:
    """Everything the tile choice depends on, in integers (hashable, so solves can be cached)."""

    M: int
    K: int
    N: int
    native: tuple[int, int, int]
    chains: int
    cascade: int
    memory_budget: int
    bytes_a: int
    bytes_b: int
    bytes_acc: int
    cycles_per_mmul: Fraction
    stream_bytes_per_cycle: Fraction
    pass_overhead: int
    iteration_overhead: int

    @property
    def bounds(self) -> tuple[int, int, int]:
        mm, mk, mn = self.native
        return (
            math.ceil(self.M / mm),
            math.ceil(self.K / (self.cascade * mk)),
            math.ceil(self.N / (self.chains * mn)),
        )

    def memory(self, a: int, b: int, c: int) -> int:
        mm, mk, mn = self.native
        m, k, n = mm * a, mk * b, mn * c
        return 2 * m * k * self.bytes_a + 2 * k * n * self.bytes_b + m * n * self.bytes_acc


def _scales(p: TilingProblem) -> tuple[int, int, int]:
    """(S, compute numerator, stream denominators) so that S*cycles is integral."""
    cpm, rate = p.cycles_per_mmul, p.stream_bytes_per_cycle
    scale = math.lcm(cpm.denominator, rate.numerator)
    return scale, int(cpm * scale), int(scale / rate)


def cycles_of(p: TilingProblem, a, b, c):
    """Modelled cycles (scaled by S of :func:`_scales`) of tilings (a, b, c).

    Vectorised over numpy arrays (int64, or object arrays of Python ints for problems whose
    cycle counts could overflow int64); exact for Python ints.
    """
    mm, mk, mn = p.native
    scale, comp, per_byte = _scales(p)
    mt = -(-p.M // (mm * a))
    kt = -(-p.K // (p.cascade * mk * b))
    nt = -(-p.N // (p.chains * mn * c))
    compute = (a * b * c * comp) + p.pass_overhead * scale
    stream_a = mm * mk * a * b * p.bytes_a * per_byte
    stream_b = mk * mn * b * c * p.bytes_b * per_byte
    if isinstance(a, int):
        passes = max(compute, stream_a, stream_b)
    else:
        passes = np.maximum(compute, np.maximum(stream_a, stream_b))
    return mt * nt * (kt * passes + p.iteration_overhead * scale)


def block_cycles(p: TilingProblem, tile: Tile) -> int:
    """The objective of one tile, in AIE cycles (rounded down)."""
    mm, mk, mn = p.native
    return int(cycles_of(p, tile.m // mm, tile.k // mk, tile.n // mn)) // _scales(p)[0]


#: CP-SAT variables and constraints must stay well inside int64.
_CP_SAT_LIMIT = 2**62


def solve_tile(p: TilingProblem, time_limit_s: float = 10.0) -> tuple[Tile, SolverReport]:
    """The cycle-minimal tile for ``p`` from CP-SAT, or from exhaustive search as a reported fallback.

    ``time_limit_s`` is CP-SAT's deterministic time limit (0 skips the search: the exhaustive
    fallback then chooses, and the report says so). Problems whose cycle bounds do not fit
    CP-SAT's 64-bit arithmetic also fall back. Raises :class:`FitError` when not even the native
    mmul tile fits the data memory.
    """
    return _solve_cached(p, float(time_limit_s))


@lru_cache(maxsize=256)
def _solve_cached(p: TilingProblem, time_limit_s: float) -> tuple[Tile, SolverReport]:
    if p.memory(1, 1, 1) > p.memory_budget:
        raise FitError(
            f"the native {p.native[0]}x{p.native[1]}x{p.native[2]} tile needs {p.memory(1, 1, 1)} bytes "
            f"of core data memory, but only {p.memory_budget} are available"
        )
    built = _build_model(p)
    if built is None:
        tile, objective = enumerate_tile(p)
        reason = "the GEMM is too large for the CP-SAT model's 64-bit bounds"
        report = SolverReport(
            "cp-sat", "NOT_RUN", objective, fallback=f"{reason}; exhaustive search chose the tile"
        )
        return tile, report
    model, (a, b, c), obj = built
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = 1
    solver.parameters.random_seed = 0
    # CP-SAT's own SIGINT catcher swallows Ctrl-C and then resets SIGINT to SIG_DFL, so a later
    # Ctrl-C killed the process without cleaning up its temporary build: keep Python's handler
    solver.parameters.catch_sigint_signal = False
    solver.parameters.max_deterministic_time = time_limit_s
    solver.parameters.max_time_in_seconds = 3 * time_limit_s
    status = solver.solve(model)
    mm, mk, mn = p.native
    if status == cp_model.OPTIMAL:
        av, bv, cv = solver.value(a), solver.value(b), solver.value(c)
        report = SolverReport("cp-sat", "OPTIMAL", int(solver.objective_value))
        return Tile(mm * av, mk * bv, mn * cv), report
    tile, objective = enumerate_tile(p)
    name = solver.status_name(status)
    report = SolverReport(
        "cp-sat",
        name,
        objective,
        fallback=f"CP-SAT ended {name} within its limit of {time_limit_s:g} s; "
        "exhaustive search chose the tile",
    )
    return tile, report


def _factor_bounds(p: TilingProblem) -> tuple[int, int, int]:
    """Upper bounds of the tile factors (a, b, c): the problem's, and the memory's with the other
    two factors at 1."""
    amax, bmax, cmax = p.bounds
    amax = max(1, min(amax, _largest(lambda v: p.memory(v, 1, 1), p.memory_budget, amax)))
    bmax = max(1, min(bmax, _largest(lambda v: p.memory(1, v, 1), p.memory_budget, bmax)))
    cmax = max(1, min(cmax, _largest(lambda v: p.memory(1, 1, v), p.memory_budget, cmax)))
    return amax, bmax, cmax


def _build_model(p: TilingProblem):
    """The CP-SAT model, or None when its bounds would leave CP-SAT's 64-bit range."""
    mm, mk, mn = p.native
    scale, comp, per_byte = _scales(p)
    amax, bmax, cmax = _factor_bounds(p)
    pass_hi = max(
        amax * bmax * cmax * comp + p.pass_overhead * scale,
        mm * mk * amax * bmax * p.bytes_a * per_byte,
        mk * mn * bmax * cmax * p.bytes_b * per_byte,
    )
    kt_hi = math.ceil(p.K / (p.cascade * mk))
    it_hi = math.ceil(p.M / mm) * math.ceil(p.N / (p.chains * mn))
    if it_hi * (kt_hi * pass_hi + p.iteration_overhead * scale) >= _CP_SAT_LIMIT:
        return None
    m = cp_model.CpModel()
    a = m.new_int_var(1, amax, "a")
    b = m.new_int_var(1, bmax, "b")
    c = m.new_int_var(1, cmax, "c")
    ab = m.new_int_var(1, amax * bmax, "ab")
    bc = m.new_int_var(1, bmax * cmax, "bc")
    ac = m.new_int_var(1, amax * cmax, "ac")
    abc = m.new_int_var(1, amax * bmax * cmax, "abc")
    m.add_multiplication_equality(ab, [a, b])
    m.add_multiplication_equality(bc, [b, c])
    m.add_multiplication_equality(ac, [a, c])
    m.add_multiplication_equality(abc, [ab, c])
    m.add(
        2 * mm * mk * p.bytes_a * ab + 2 * mk * mn * p.bytes_b * bc + mm * mn * p.bytes_acc * ac
        <= p.memory_budget
    )
    # tile counts: t = ceil(D / (unit * f)) encoded as unit*t*f >= D and unit*(t-1)*f < D
    mt, pm = _ceil_count(m, p.M, mm, a, amax, "m")
    kt, pk = _ceil_count(m, p.K, p.cascade * mk, b, bmax, "k")
    nt, pn = _ceil_count(m, p.N, p.chains * mn, c, cmax, "n")
    passes = m.new_int_var(0, pass_hi, "pass")
    m.add(passes >= comp * abc + p.pass_overhead * scale)
    m.add(passes >= mm * mk * p.bytes_a * per_byte * ab)
    m.add(passes >= mk * mn * p.bytes_b * per_byte * bc)
    k_work = m.new_int_var(0, kt_hi * pass_hi, "k_work")
    m.add_multiplication_equality(k_work, [kt, passes])
    iters = m.new_int_var(1, it_hi, "iterations")
    m.add_multiplication_equality(iters, [mt, nt])
    per_iter = m.new_int_var(0, kt_hi * pass_hi + p.iteration_overhead * scale, "per_iteration")
    m.add(per_iter == k_work + p.iteration_overhead * scale)
    obj = m.new_int_var(0, it_hi * (kt_hi * pass_hi + p.iteration_overhead * scale), "cycles")
    m.add_multiplication_equality(obj, [iters, per_iter])
    m.minimize(obj)
    # prefer larger tiles among equals: search a, c, b from the top
    m.add_decision_strategy([a, c, b], cp_model.CHOOSE_FIRST, cp_model.SELECT_MAX_VALUE)
    return m, (a, b, c), obj


def _ceil_count(m: cp_model.CpModel, dim: int, unit: int, f, fmax: int, tag: str):
    tmax = math.ceil(dim / unit)
    t = m.new_int_var(1, tmax, f"{tag}_tiles")
    prod = m.new_int_var(1, tmax * fmax, f"{tag}_padded_units")
    m.add_multiplication_equality(prod, [t, f])
    m.add(unit * prod >= dim)
    m.add(unit * (prod - f) <= dim - 1)
    return t, prod


def _largest(cost, budget: int, hi: int) -> int:
    lo = 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if cost(mid) <= budget:
            lo = mid
        else:
            hi = mid - 1
    return lo


def enumerate_tile(p: TilingProblem) -> tuple[Tile, int]:
    """Exhaustive search over all tilings that fit; same objective and tie-break as CP-SAT.

    Walks the factor ``a`` and vectorises over (b, c), so its memory stays bounded by the core
    memory's tilings, whatever the GEMM's size.
    """
    amax, bmax, cmax = _factor_bounds(p)
    scale, comp, per_byte = _scales(p)
    mm, mk, mn = p.native
    worst = (
        math.ceil(p.M / mm)
        * math.ceil(p.N / (p.chains * mn))
        * (
            math.ceil(p.K / (p.cascade * mk))
            * max(
                amax * bmax * cmax * comp + p.pass_overhead * scale,
                mm * mk * amax * bmax * p.bytes_a * per_byte,
                mk * mn * bmax * cmax * p.bytes_b * per_byte,
            )
            + p.iteration_overhead * scale
        )
    )
    dtype = np.int64 if worst < 2**62 else object
    best: tuple[int, int, int, int] | None = None  # (cycles, a, b, c)
    for a in range(1, amax + 1):
        if p.memory(a, 1, 1) > p.memory_budget:
            break
        b_hi = _largest(lambda v, a=a: p.memory(a, v, 1), p.memory_budget, bmax)
        c_hi = _largest(lambda v, a=a: p.memory(a, 1, v), p.memory_budget, cmax)
        b, c = np.meshgrid(
            np.arange(1, b_hi + 1, dtype=np.int64),
            np.arange(1, c_hi + 1, dtype=np.int64),
            indexing="ij",
        )
        b, c = b.ravel(), c.ravel()
        fits = p.memory(a, b, c) <= p.memory_budget
        b, c = b[fits].astype(dtype), c[fits].astype(dtype)
        cyc = cycles_of(p, np.full(b.shape, a, dtype=dtype), b, c)
        low = cyc.min()
        idx = np.flatnonzero(cyc == low)
        # tie-break within a: largest c, then b; across a: the larger a (later) wins a tie
        i = idx[np.lexsort((b[idx], c[idx]))[-1]]
        if best is None or int(low) <= best[0]:
            best = (int(low), a, int(b[i]), int(c[i]))
    assert best is not None  # the native tile fits (checked by the caller)
    cycles, a, b, c = best
    return Tile(int(mm * a), int(mk * b), int(mn * c)), cycles
