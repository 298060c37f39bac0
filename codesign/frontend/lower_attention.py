"""Lowerings of the attention data path: activation x activation MatMul (QK^T, attention x V,
batched over heads) and Transpose (head split and merge, K^T).

- ``MatMul(a, b)`` with ``b`` not a constant weight -> :class:`BatchedMatMul` (float32 as
  lowered; :mod:`codesign.passes.attention` maps it to int8 when both operands are dequantised
  int8/uint8 tensors, to bf16 otherwise). :func:`activation_matmul` is called by
  :func:`codesign.frontend.lower._matmul`, which keeps the weight GEMMs.
- ``Transpose`` -> :class:`Transpose` (the passes fold it into the read or write order of a
  batched product where they can; the rest run as a PL tiler).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from codesign.errors import ModelError, UnsupportedError
from codesign.frontend.lowerings import lowering
from codesign.kinds.batched_matmul import BatchedMatMul, operand_shapes
from codesign.kinds.transpose import Transpose, is_permutation

if TYPE_CHECKING:
    import onnx_ir as ir

#: element types an activation x activation MatMul may have as lowered (float graphs, and the
#: float tensors between QDQ pairs)
_FLOAT = ("float32",)


@lowering("Transpose")
def lower_transpose(lw: Any, node: ir.Node) -> None:
    """ONNX Transpose (perm defaults to reversing the axes)."""
    x, out = node.inputs[0], node.outputs[0]
    shape = lw.kg.types[x.name].shape
    attr = node.attributes.get("perm")
    perm = (
        tuple(int(p) for p in attr.value)
        if attr is not None
        else tuple(reversed(range(len(shape))))
    )
    if not is_permutation(perm, len(shape)):
        raise ModelError(
            f"{lw.where()}: perm {list(perm)} must be a permutation of the {len(shape)} axes of "
            f"{x.name!r}"
        )
    want = tuple(shape[p] for p in perm)
    if lw.kg.types[out.name].shape != want:
        raise ModelError(
            f"{lw.where()}: output {out.name!r} must have shape {list(want)}, not "
            f"{list(lw.kg.types[out.name].shape)}"
        )
    value = lw.const_value(x)
    if value is not None:
        # a transposed weight (torch's x @ W.T): folded here, so that the MatMul it feeds sees a
        # constant weight and becomes a weight GEMM
        lw.kg.constants[out.name] = np.ascontiguousarray(np.transpose(value, perm))
        return
    lw.emit(Transpose(node.name, (x.name,), (out.name,), perm=perm))


def activation_matmul(lw: Any, node: ir.Node) -> None:
    """``MatMul(a, b)`` where ``b`` is an activation: a batched product over the leading axes.

    Both operands must have rank >= 2 and equal batch dimensions (numpy broadcasting of batches
    is refused), float32 elements, and agreeing inner dimensions."""
    a, b = node.inputs
    out = node.outputs[0]
    ta, tb = lw.kg.types[a.name], lw.kg.types[b.name]
    for v, t in ((a, ta), (b, tb)):
        if t.dtype not in _FLOAT:
            raise UnsupportedError(
                f"{lw.where()}: MatMul operand {v.name!r} is {t.dtype}; an activation x "
                f"activation product takes float32 operands (quantized ones through "
                "DequantizeLinear)"
            )
    if len(ta.shape) < 2 or len(tb.shape) < 2:
        raise UnsupportedError(
            f"{lw.where()}: an activation x activation MatMul needs operands of rank 2 or more, "
            f"not {list(ta.shape)} x {list(tb.shape)}"
        )
    try:
        batch, M, _, N = operand_shapes(ta.shape, tb.shape)
    except ValueError as e:
        raise UnsupportedError(f"{lw.where()}: activation x activation MatMul: {e}") from None
    if lw.kg.types[out.name].shape != (*batch, M, N):
        raise ModelError(
            f"{lw.where()}: output {out.name!r} must have shape {[*batch, M, N]}, not "
            f"{list(lw.kg.types[out.name].shape)}"
        )
    lw.emit(BatchedMatMul(node.name, (a.name, b.name), (out.name,), dtype="float32"))
