"""Lowering of com.microsoft MatMulNBits (onnxruntime's MatMulNBitsQuantizer output).

Format (onnxruntime contrib op; REFERENCES.md s7, s10): inputs ``A`` float32 [..., K], ``B``
uint8 [N, k_blocks, blob] (per column, per K block, ``bits``-bit codes packed low nibble first),
``scales`` float32 [N * k_blocks] (or [N, k_blocks]), optional ``zero_points`` uint8
[N, ceil(k_blocks / 2)] (packed like B, per column) or float; attributes K, N, bits,
block_size, accuracy_level (default 0). The weight is ``(code - zp) * scale`` with zp default
``2**(bits - 1)``.

What onnxruntime's CPU kernel computes, and how codesign runs it (checked against onnxruntime
1.32 in tests/frontend/test_nbits.py):

- accuracy_level 4: A quantised to int8 per row and K block, exact integer block products,
  a float32 per-block epilogue. This is the AIE-ML int8 x int4 mode: the node becomes a
  :class:`~codesign.ir.nbits.GemmNBits` (the ``gemm_nbits`` kind; its planner may still pick
  bf16 when the cost model finds it faster, and says so).
- accuracy_level 0-3 (0 is what MatMulNBitsQuantizer writes by default): onnxruntime
  dequantises the weight to float32 and multiplies in float32. codesign dequantises the weight
  exactly as onnxruntime does and runs a float MatMul, i.e. a bf16 GEMM like every float layer;
  quantising A to int8 would be an arithmetic onnxruntime does not do here.

Refused, in one line: bits other than 4, an optional input codesign does not support (g_idx,
bias), non-constant weights, scales or zero points, float zero points.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from codesign.errors import ModelError, UnsupportedError
from codesign.frontend.lowerings import lowering
from codesign.ir.graph import MatMul
from codesign.ir.nbits import GemmNBits
from codesign.sim import numerics

#: accuracy_level of onnxruntime's int8 compute (MLAS CompInt8)
INT8_ACCURACY = 4


def _attr(node: ir.Node, name: str, default=None):
    a = node.attributes.get(name)
    return default if a is None else a.value


def unpack_weight(
    packed: np.ndarray,
    scales: np.ndarray,
    zero_points: np.ndarray | None,
    K: int,
    N: int,
    block_size: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MatMulNBits' 4-bit B, scales and zero points as (codes [N, K] 0..15, scales
    [N, k_blocks] float32, zero points [N, k_blocks] 0..15 (8 where none are given)).

    Raises ValueError naming the tensor whose size does not match K, N and block_size.
    """
    kb = -(-K // block_size)
    blob = block_size // 2
    if packed.size != N * kb * blob:
        raise ValueError(f"B must hold {N} x {kb} x {blob} bytes, not {packed.size}")
    codes = numerics.unpack_nibbles(packed.reshape(N, kb * blob), kb * block_size)[:, :K]
    if scales.size != N * kb:
        raise ValueError(f"scales must hold {N} x {kb} values, not {scales.size}")
    s = np.asarray(scales, dtype=np.float32).reshape(N, kb)
    if zero_points is None:
        zp = np.full((N, kb), 8, dtype=np.uint8)
    else:
        per_col = -(-kb // 2)
        if zero_points.size != N * per_col:
            raise ValueError(f"zero_points must hold {N} x {per_col} bytes, not {zero_points.size}")
        zp = numerics.unpack_nibbles(zero_points.reshape(N, per_col), kb)
    return codes.astype(np.uint8), s, zp.astype(np.uint8)


@lowering("MatMulNBits", domain="com.microsoft")
def _matmul_nbits(lw, node: ir.Node) -> None:
    ins = list(node.inputs) + [None] * (6 - len(node.inputs))
    a, b, scales, zps, g_idx, bias = ins[:6]
    if a is None or b is None or scales is None:
        raise ModelError(f"{lw.where()}: MatMulNBits needs inputs A, B and scales")
    K, N = int(_attr(node, "K", 0)), int(_attr(node, "N", 0))
    bits, bs = int(_attr(node, "bits", 4)), int(_attr(node, "block_size", 0))
    level = int(_attr(node, "accuracy_level", 0))
    if bits != 4:
        raise UnsupportedError(
            f"{lw.where()}: MatMulNBits with bits={bits} is not supported; quantize with "
            "MatMulNBitsQuantizer(bits=4)"
        )
    if g_idx is not None or bias is not None:
        raise UnsupportedError(
            f"{lw.where()}: MatMulNBits inputs g_idx and bias are not supported; "
            "quantize without act_order (g_idx) and keep the bias as a separate Add"
        )
    if bs < 16 or bs & (bs - 1) or K < 1 or N < 1:
        raise ModelError(
            f"{lw.where()}: block_size must be a power of two >= 16 and K, N positive, not "
            f"block_size={bs}, K={K}, N={N}"
        )
    ta = lw.kg.types[a.name]
    if ta.dtype != "float32" or not ta.shape or ta.shape[-1] != K:
        raise ModelError(
            f"{lw.where()}: A must be float32 with last dimension K={K}, not {ta.dtype} {ta.shape}"
        )
    packed = lw.need_const(b, "MatMulNBits B")
    sc = lw.need_const(scales, "MatMulNBits scales")
    zp = None
    if zps is not None:
        zp = lw.need_const(zps, "MatMulNBits zero_points")
        if zp.dtype != np.uint8:
            raise UnsupportedError(
                f"{lw.where()}: MatMulNBits zero_points must be packed uint8, not {zp.dtype}"
            )
    if sc.dtype != np.float32 or not np.all(np.isfinite(sc)):
        raise ModelError(f"{lw.where()}: MatMulNBits scales must be finite float32")
    try:
        codes, s, z = unpack_weight(packed, sc, zp, K, N, bs)
    except ValueError as e:
        raise ModelError(f"{lw.where()}: MatMulNBits {e}") from None
    out = node.outputs[0].name
    stem = node.name or out
    if level == INT8_ACCURACY:
        w = (codes.astype(np.int16).T - numerics.INT4_OFFSET).astype(np.int8)  # [K, N]
        zero = None
        if np.any(z != numerics.INT4_OFFSET):
            zero = lw.kg.add_const(
                f"{stem}/zero", (z.astype(np.int16).T - numerics.INT4_OFFSET).astype(np.int8)
            )
        lw.emit(
            GemmNBits(
                stem,
                (a.name,),
                (out,),
                weight=lw.kg.add_const(f"{stem}/weight_int4", np.ascontiguousarray(w)),
                scales=lw.kg.add_const(f"{stem}/scales", np.ascontiguousarray(s.T)),
                zero=zero,
                block_size=bs,
            )
        )
        return
    wf = numerics.dequantize_nbits(codes, s, z, bs)  # [K, N] float32, as onnxruntime's
    lw.emit(MatMul(stem, (a.name, lw.kg.add_const(f"{stem}/weight", wf)), (out,)))
