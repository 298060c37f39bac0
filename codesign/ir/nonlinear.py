"""KernelGraph ops and Plan layers of the nonlinear kinds (their registration, planner,
executor, cost and emitters are in :mod:`codesign.kinds.nonlinear` and
:mod:`codesign.kinds.rownorm`; the arithmetic in :mod:`codesign.sim.numerics.nonlinear`).

- :class:`Nonlinear` / :class:`NonlinearLayer`: an element-wise function (exp, erf, tanh,
  sigmoid, gelu, silu, sqrt, reciprocal, div, pow by a constant, neg, not, equal, where,
  expand; the table is :data:`codesign.sim.nonlinear.ELEMENTWISE`);
- :class:`RowNorm` / :class:`RowNormLayer`: a function over the last axis (softmax, layernorm,
  rmsnorm, reducemean; :data:`codesign.sim.nonlinear.ROWWISE`).

A layer runs either on a PL vector unit or on the AIE-ML vector cores: ``placement`` ("pl" or
"aie") is the cost model's choice, made by the planner; the layer's ``unit`` is its placement.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from codesign.ir.graph import Op
from codesign.ir.plan import Layer

#: where a nonlinear layer can run
PLACEMENTS = ("pl", "aie")


@dataclass(frozen=True)
class Nonlinear(Op):
    """An element-wise nonlinear function ``fn`` with static ``attrs`` (sorted (key, value))."""

    fn: str = "exp"
    attrs: tuple[tuple[str, object], ...] = ()
    kind: ClassVar[str] = "nonlinear"


@dataclass(frozen=True)
class RowNorm(Op):
    """A function ``fn`` over the last axis; inputs (x[, gamma[, beta]])."""

    fn: str = "softmax"
    attrs: tuple[tuple[str, object], ...] = ()
    kind: ClassVar[str] = "rownorm"


@dataclass(frozen=True)
class NonlinearLayer(Layer):
    """An element-wise nonlinear layer and where it runs (``placement``)."""

    fn: str = "exp"
    attrs: tuple[tuple[str, Any], ...] = ()
    placement: str = "pl"
    kind: ClassVar[str] = "nonlinear"

    @property
    def unit(self) -> str:  # type: ignore[override]  # the placement, per layer
        return self.placement


@dataclass(frozen=True)
class RowNormLayer(Layer):
    """A row-wise (last axis) layer and where it runs (``placement``)."""

    fn: str = "softmax"
    attrs: tuple[tuple[str, Any], ...] = ()
    placement: str = "pl"
    kind: ClassVar[str] = "rownorm"

    @property
    def unit(self) -> str:  # type: ignore[override]
        return self.placement
