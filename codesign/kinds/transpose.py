"""The transpose kind: a Transpose that no consumer or producer could absorb, run by a PL tiler.

KernelGraph op :class:`Transpose`, plan layer :class:`TransposeLayer` (both defined here).
Most transposes of an attention block never become layers: the head split (Reshape
``[B,S,H*D] -> [B,S,H,D]`` then Transpose ``(0,2,1,3)``) and K^T are folded into the read order of
the batched product that consumes them, and the head merge into its write order
(:mod:`codesign.passes.attention`). A Transpose left over (e.g. of a graph input feeding a weight
GEMM) is a PL tiler that reads the tensor from DDR in the permuted order and writes it back
row-major: a stream layer, modelled with the bytes it moves (:func:`cost`), its reads in
contiguous runs of the axes that stay in place (a corner-turn buffer of one beat square when the
innermost axis moves).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from codesign.cost import estimate_stream_layer
from codesign.cost.batched import strided_factor
from codesign.ir.graph import Op, TensorType
from codesign.ir.plan import Layer, Plan
from codesign.kinds.registry import (
    Cost,
    Emitted,
    LayerMemory,
    OpKind,
    no_output_scale,
    register,
)

if TYPE_CHECKING:
    from codesign.report.plan_report import CostContext
    from codesign.schedulers.planner import PlanContext
    from codesign.sim.functional import Simulator
    from codesign.sim.plan_check import PlanChecker

#: PLIO width of the tiler's stream, in bits (the block's PLIO width on every board file)
STREAM_BITS = 128


@dataclass(frozen=True)
class Transpose(Op):
    """``out = numpy.transpose(x, perm)`` (ONNX Transpose): inputs ``(x,)``, any dtype."""

    perm: tuple[int, ...] = ()
    kind: ClassVar[str] = "transpose"


@dataclass(frozen=True)
class TransposeLayer(Layer):
    """A PL tiler that writes ``transpose(x, perm)`` row-major."""

    perm: tuple[int, ...] = ()
    kind: ClassVar[str] = "transpose"
    unit: ClassVar[str] = "pl"


def is_permutation(perm: tuple[int, ...], rank: int) -> bool:
    return sorted(perm) == list(range(rank))


def compose(first: tuple[int, ...], then: tuple[int, ...]) -> tuple[int, ...]:
    """The one permutation equal to ``transpose(transpose(x, first), then)``."""
    return tuple(first[i] for i in then)


def run_elements(shape: tuple[int, ...], perm: tuple[int, ...]) -> int:
    """Elements a permuted read finds contiguous: the trailing axes that stay in place (1 when
    the innermost axis moves)."""
    run = 1
    for axis in range(len(shape) - 1, -1, -1):
        if perm[axis] != axis:
            break
        run *= shape[axis]
    return run


def plan(ctx: PlanContext, op: Transpose) -> TransposeLayer:
    return TransposeLayer(op.name, op.inputs, op.outputs, perm=op.perm)


def execute(sim: Simulator, layer: TransposeLayer, args: list) -> tuple[np.ndarray]:
    return (np.ascontiguousarray(np.transpose(args[0], layer.perm)),)


def check(ck: PlanChecker, t: TransposeLayer) -> None:
    """One input, one output; ``perm`` a permutation of the input's axes; the output's shape
    and dtype those of the permuted input."""
    ck.count(t, 1, 1)
    x, out = ck.shapes[t.inputs[0]], ck.shapes[t.outputs[0]]
    if not is_permutation(tuple(t.perm), len(x)):
        ck.fail(f"perm {list(t.perm)} must be a permutation of the {len(x)} input axes")
    if tuple(x[p] for p in t.perm) != out:
        ck.fail(f"transpose of {list(x)} by {list(t.perm)} must give the output shape {list(out)}")
    if ck.dtypes[t.inputs[0]] != ck.dtypes[t.outputs[0]]:
        ck.fail("a transpose keeps the dtype")


def _nbytes(plan: Plan, name: str) -> int:
    t = plan.value_spec(name)
    return TensorType(tuple(t.shape), t.dtype).nbytes


def cost(ctx: CostContext, stage: list[TransposeLayer]) -> Cost:
    """A PL stream stage: the input read in permuted order (runs rounded up to whole beats,
    modelled bytes), the output written row-major."""
    (layer,) = stage
    spec = ctx.plan.value_spec(layer.inputs[0])
    bytes_in = _nbytes(ctx.plan, layer.inputs[0])
    beat = STREAM_BITS // 8
    itemsize = max(1, bytes_in // max(1, math.prod(spec.shape)))
    run = run_elements(tuple(spec.shape), tuple(layer.perm)) * itemsize
    run = run if run > itemsize or len(spec.shape) < 2 else beat  # corner turn: one beat square
    moved = math.ceil(bytes_in * strided_factor(run, beat))
    est = estimate_stream_layer(
        ctx.board,
        layer.name,
        moved,
        _nbytes(ctx.plan, layer.outputs[0]),
        kind="transpose",
        width_bits=STREAM_BITS,
    )
    return Cost(est, {"perm": list(layer.perm), "read_run_bytes": run, "read_bytes": moved})


def memory(plan: Plan, layer: TransposeLayer) -> LayerMemory:
    """One contiguous copy of the output."""
    return LayerMemory(transient=_nbytes(plan, layer.outputs[0]) * 2)


def emit(plan: Plan, layers: list[TransposeLayer]) -> Emitted:
    """The PL tiler of each layer (``hls/l<i>_<name>.h``: ``<ident>_run(arena)`` reads the
    input in permuted order and writes the output row-major; :func:`codesign.hls.pl.copy_file`)."""
    from codesign.hls import pl
    from codesign.ir.data import itemsize

    files = []
    for i, layer in pl.indexed(plan, layers):
        x, y = layer.inputs[0], layer.outputs[0]
        xst = pl.row_major(pl.shape_of(plan, x))
        out = pl.shape_of(plan, y)
        loop = {
            "dims": out,
            "size": itemsize(plan.value_spec(y).dtype),
            "src": x,
            "dst": y,
            "src_base": 0,
            "src_strides": [xst[p] for p in layer.perm],
            "dst_base": 0,
            "dst_strides": pl.row_major(out),
        }
        files.append(pl.copy_file(plan, i, layer, f"transpose {list(layer.perm)}", [loop]))
    return Emitted(files=tuple(files))


KIND = register(
    OpKind(
        name="transpose",
        op=Transpose,
        layer=TransposeLayer,
        plan=plan,
        execute=execute,
        check=check,
        cost=cost,
        memory=memory,
        emit=emit,
        output_scale=no_output_scale,
    )
)
