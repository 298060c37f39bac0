"""Comparing simulated outputs with a reference, with the documented tolerances.

Tolerances (README, "Fidelity"):

- quantised outputs (a graph output produced by dequantising an int8/uint8/int16 tensor with a
  per-tensor scale): the difference measured in LSBs of that scale must be at most 1, and at
  least 99 % of the elements must be equal;
- float outputs of the bf16 path: max |sim - ref| <= 2**-6 * max |ref| + 1e-6 (bf16 keeps 8
  significant bits; fp32 accumulation);
- integer outputs: equal.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from codesign.ir.plan import Plan
from codesign.kinds import registry

FLOAT_RTOL = 2.0**-6
FLOAT_ATOL = 1e-6
MAX_LSB = 1
MIN_EQUAL = 0.99


@dataclass(frozen=True)
class OutputComparison:
    """Error statistics of one output against the reference and whether they pass."""

    name: str
    kind: str  # "quantized", "float" or "integer"
    max_abs: float
    mean_abs: float
    max_lsb: float | None
    equal_fraction: float
    passed: bool
    criterion: str


def _output_scale(plan: Plan, name: str, constants: dict[str, np.ndarray]) -> float | None:
    """The quantisation step of graph output ``name``, as the kind of the layer producing it says
    (its ``output_scale`` entry in :mod:`codesign.kinds`), or None."""
    for layer in plan.layers:
        if name in layer.outputs:
            return registry.output_scale(layer)(plan, layer, name, constants)
    return None


def _abs_diff(s: np.ndarray, r: np.ndarray) -> np.ndarray:
    """|s - r| in float64, 0 where both hold the same non-finite value (NaN and NaN, inf and
    inf), inf where only one of them is non-finite."""
    a, b = s.astype(np.float64), r.astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.abs(a - b)
    same = (a == b) | (np.isnan(a) & np.isnan(b))
    diff[same] = 0.0
    diff[np.isnan(diff)] = np.inf
    return diff


def compare(
    plan: Plan,
    sim: dict[str, np.ndarray],
    ref: dict[str, np.ndarray],
    constants: dict[str, np.ndarray],
) -> list[OutputComparison]:
    """Compare every graph output of ``plan``; ``constants`` are the plan's constant values."""
    results = []
    for t in plan.outputs:
        s = np.asarray(sim[t.name])
        r = np.asarray(ref[t.name])
        if s.shape != r.shape:
            results.append(
                OutputComparison(
                    t.name,
                    "shape",
                    math.inf,
                    math.inf,
                    None,
                    0.0,
                    False,
                    f"shape {s.shape} must equal the reference's {r.shape}",
                )
            )
            continue
        diff = _abs_diff(s, r)
        max_abs = float(diff.max(initial=0.0))
        mean_abs = float(diff.mean()) if diff.size else 0.0
        scale = _output_scale(plan, t.name, constants)
        if scale is not None:
            lsb = np.rint(diff / scale)
            max_lsb = float(lsb.max(initial=0.0))
            eq = float((lsb == 0).mean()) if lsb.size else 1.0
            passed = max_lsb <= MAX_LSB and eq >= MIN_EQUAL
            results.append(
                OutputComparison(
                    t.name,
                    "quantized",
                    max_abs,
                    mean_abs,
                    max_lsb,
                    eq,
                    passed,
                    f"<= {MAX_LSB} LSB and >= {MIN_EQUAL:.0%} equal",
                )
            )
        elif np.issubdtype(s.dtype, np.floating):
            finite = np.abs(r[np.isfinite(r)]) if np.issubdtype(r.dtype, np.floating) else r
            bound = FLOAT_RTOL * float(np.abs(finite).max(initial=0.0)) + FLOAT_ATOL
            eq = float((diff == 0).mean()) if diff.size else 1.0
            results.append(
                OutputComparison(
                    t.name,
                    "float",
                    max_abs,
                    mean_abs,
                    None,
                    eq,
                    max_abs <= bound,
                    f"max |err| <= 2^-6 max|ref| + 1e-6 = {bound:.3g}",
                )
            )
        else:
            eq = float((diff == 0).mean()) if diff.size else 1.0
            results.append(
                OutputComparison(
                    t.name, "integer", max_abs, mean_abs, max_abs, eq, max_abs == 0, "equal"
                )
            )
    return results
