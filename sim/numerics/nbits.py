"""Block-quantised (MatMulNBits) weights and the int8 x int4 block GEMM.

onnxruntime's com.microsoft MatMulNBits stores a [K, N] weight as N columns of ``k_blocks``
blocks of ``block_size`` unsigned ``bits``-bit codes, packed low nibble first, one float32 scale
per (column, block) and an optional packed zero point per (column, block), default
``2**(bits - 1)``. The weight value is ``(code - zero_point) * scale``.

With ``accuracy_level`` 4 (int8 compute), onnxruntime's CPU kernel (MLAS ``CompInt8``)
quantises A per row and per K block, symmetric: ``scale_a = max|a| / 127`` (float32), codes
``round_half_even(a * (1 / scale_a))`` (0 when the block is all zeros), multiplies the int8 codes
by the integer weight codes exactly and sums the blocks in float32:
``y = sum_b scale_a[m, b] * scale_w[b, n] * acc_b[m, n]``. :func:`quantize_a_blocks` and
:func:`block_epilogue` define that arithmetic here; the summation order of the float32 epilogue
is codesign's (block by block), so results differ from onnxruntime's by float32 rounding only
(relative error below ``k_blocks * 2**-23`` of ``sum_b |term_b|``).

On the AIE-ML the weight codes enter the int8 x int4 mmul as signed int4 ``code - 8``; the zero
point becomes ``zero_point - 8`` and is applied in the epilogue through the row sums of the A
codes (``acc_b - (zp - 8) * rowsum_b``), so asymmetric weights stay int4 in the stream.
"""

from __future__ import annotations

import numpy as np

#: the int4 offset: unsigned codes 0..15 enter the signed int4 mmul as code - 8
INT4_OFFSET = 8


def unpack_nibbles(packed: np.ndarray, count: int) -> np.ndarray:
    """The first ``count`` 4-bit codes along the last axis of ``packed`` (uint8 bytes), each
    byte holding two codes, the low nibble first (MatMulNBits' and the stream layouts' order)."""
    p = np.asarray(packed, dtype=np.uint8)
    codes = np.stack([p & 0x0F, p >> 4], axis=-1).reshape(*p.shape[:-1], p.shape[-1] * 2)
    if count > codes.shape[-1]:
        raise ValueError(f"{p.shape[-1]} bytes hold {codes.shape[-1]} codes, not {count}")
    return codes[..., :count]


def pack_nibbles(codes: np.ndarray) -> np.ndarray:
    """Inverse of :func:`unpack_nibbles` along the last axis: codes 0..15 (or -8..7, stored as
    their two's-complement nibble), two per byte, low nibble first; odd counts pad with 0."""
    c = np.asarray(codes).astype(np.int64) & 0x0F
    if c.shape[-1] % 2:
        c = np.concatenate([c, np.zeros((*c.shape[:-1], 1), dtype=np.int64)], axis=-1)
    return (c[..., 0::2] | (c[..., 1::2] << 4)).astype(np.uint8)


def int4_from_nibbles(nibbles: np.ndarray) -> np.ndarray:
    """Signed int4 values (-8..7, as int8) from two's-complement nibbles 0..15."""
    n = np.asarray(nibbles, dtype=np.int16)
    return np.where(n >= 8, n - 16, n).astype(np.int8)


def dequantize_nbits(
    codes: np.ndarray, scales: np.ndarray, zero_points: np.ndarray, block_size: int
) -> np.ndarray:
    """The float32 weight [K, N] of codes [N, K], scales [N, k_blocks], zero points
    [N, k_blocks]: ``(code - zp) * scale`` in float32, as onnxruntime dequantises it."""
    n, k = codes.shape
    zp = np.repeat(np.asarray(zero_points, dtype=np.int64), block_size, axis=1)[:, :k]
    s = np.repeat(np.asarray(scales, dtype=np.float32), block_size, axis=1)[:, :k]
    return np.ascontiguousarray(((codes.astype(np.int64) - zp).astype(np.float32) * s).T)


def quantize_a_blocks(a: np.ndarray, block_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Quantise float32 rows ``a`` [M, K] per K block as onnxruntime's CompInt8 does.

    Returns (codes int8 [M, K], scales float32 [M, k_blocks]). K is zero-padded to whole blocks
    internally; an all-zero block gets scale 0 and codes 0.
    """
    a = np.asarray(a, dtype=np.float32)
    m, k = a.shape
    kb = -(-k // block_size)
    ap = np.zeros((m, kb * block_size), dtype=np.float32)
    ap[:, :k] = a
    blocks = ap.reshape(m, kb, block_size)
    amax = np.abs(blocks).max(axis=-1)
    scale = (amax / np.float32(127.0)).astype(np.float32)
    with np.errstate(divide="ignore"):
        inv = np.where(scale > 0, np.float32(1.0) / scale, np.float32(0.0)).astype(np.float32)
    q = np.rint((blocks * inv[..., None]).astype(np.float32))
    codes = np.clip(q, -127, 127).astype(np.int8).reshape(m, kb * block_size)[:, :k]
    return codes, scale


def block_rowsums(codes: np.ndarray, block_size: int) -> np.ndarray:
    """Exact sums of the A codes [M, K] per K block: [M, k_blocks] int64."""
    m, k = codes.shape
    kb = -(-k // block_size)
    cp = np.zeros((m, kb * block_size), dtype=np.int64)
    cp[:, :k] = codes
    return cp.reshape(m, kb, block_size).sum(axis=-1)


def block_epilogue(
    acc: np.ndarray,
    rowsum: np.ndarray,
    zero: np.ndarray | None,
    a_scale: np.ndarray,
    w_scale: np.ndarray,
) -> np.ndarray:
    """The per-block epilogue: ``y = sum_b float32(acc_b - zero_b * rowsum_b) * a_scale_b *
    w_scale_b``, summed block by block in float32.

    ``acc`` [k_blocks, M, N] exact integer block products (A codes times int4 weights);
    ``rowsum`` [M, k_blocks]; ``zero`` [k_blocks, N] (zero point - 8; None: all 0);
    ``a_scale`` [M, k_blocks]; ``w_scale`` [k_blocks, N]. Returns float32 [M, N].
    """
    kb, m, n = acc.shape
    y = np.zeros((m, n), dtype=np.float32)
    for b in range(kb):
        ib = acc[b].astype(np.int64)
        if zero is not None:
            ib = ib - rowsum[:, b : b + 1].astype(np.int64) * zero[b][None, :].astype(np.int64)
        s = (a_scale[:, b : b + 1].astype(np.float32) * w_scale[b][None, :]).astype(np.float32)
        y = (y + (ib.astype(np.float32) * s).astype(np.float32)).astype(np.float32)
    return y


def reference_nbits_int8(
    a: np.ndarray,
    codes: np.ndarray,
    scales: np.ndarray,
    zero_points: np.ndarray,
    block_size: int,
) -> np.ndarray:
    """Whole-matrix reference of MatMulNBits at accuracy_level 4: a [M, K] float32, codes
    [N, K] 0..15, scales/zero points [N, k_blocks]. The simulator is compared with this."""
    n, k = codes.shape
    qa, sa = quantize_a_blocks(a, block_size)
    kb = sa.shape[1]
    w = codes.astype(np.int64).T - INT4_OFFSET  # [K, N] int4
    acc = np.zeros((kb, a.shape[0], n), dtype=np.int64)
    for b in range(kb):
        lo, hi = b * block_size, min(k, (b + 1) * block_size)
        acc[b] = qa[:, lo:hi].astype(np.int64) @ w[lo:hi]
    zero = (np.asarray(zero_points, dtype=np.int64) - INT4_OFFSET).T
    return block_epilogue(
        acc, block_rowsums(qa, block_size), zero, sa, np.asarray(scales, np.float32).T
    )
