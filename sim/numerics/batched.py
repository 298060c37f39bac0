"""Activation x activation products (QK^T, attention x V): operand re-centring and the exact
zero-point correction of an integer product whose two operands both carry a zero point.

The AIE-ML int8 mmul mode multiplies signed int8 by signed int8 into acc32 lanes. Both operands
of an attention product are run-time activations, so neither can be shifted by its zero point
offline (a weight GEMM folds its zero point into the constant). The PL tiler that streams them
into the block therefore

- re-centres a uint8 operand to int8 by flipping its top bit (``x ^ 0x80 == x - 128`` read as
  int8), which moves its zero point by -128 as well: ``(x - z) == (x - 128) - (z - 128)``;
- sums each A row and each B column of the re-centred operands while it streams them;

and the epilogue subtracts the zero-point terms from the raw product, all in the accumulator's
width (acc32 wraps, so the order of the additions does not matter):

    sum_k (a - za)(b - zb) = sum_k a*b - zb * rowsum(a) - za * colsum(b) + K * za * zb

This is exact: every term is an integer and acc32 arithmetic is arithmetic modulo 2**32, in which
the left side (|value| <= 255 * 255 * K) is held exactly for K < 33 000.
"""

from __future__ import annotations

import numpy as np

from codesign.sim.numerics.gemm import ACCUMULATOR_BITS
from codesign.sim.numerics.integer import wrap_int32

#: The operand dtypes an integer activation x activation mode takes, and the mode they go to.
BATCHED_INT_MODES = {"int8": "int8", "uint8": "int8", "int16": "int16"}


def recentre(x: np.ndarray, zero_point: int, dtype: str) -> tuple[np.ndarray, int]:
    """The operand as the mmul mode reads it and its zero point there.

    uint8 becomes int8 by flipping bit 7 (``x - 128``), its zero point ``z - 128``; int8 and
    int16 pass unchanged. Values are returned as int64 arrays (exact)."""
    x = np.asarray(x, dtype=np.int64)
    if dtype == "uint8":
        return x - 128, int(zero_point) - 128
    if dtype in ("int8", "int16"):
        return x, int(zero_point)
    raise ValueError(f"batched integer operand dtype must be int8, uint8 or int16, not {dtype!r}")


def zero_point_correction(
    acc: np.ndarray,
    rowsum_a: np.ndarray,
    colsum_b: np.ndarray,
    a_zero_point: int,
    b_zero_point: int,
    K: int,
    mode: str,
) -> np.ndarray:
    """``acc - zb*rowsum_a - za*colsum_b + K*za*zb`` in the accumulator width of ``mode``.

    ``acc``: [..., M, N] raw products of the re-centred operands; ``rowsum_a``: [..., M];
    ``colsum_b``: [..., N]. Returns int64 values (wrapped to int32 for acc32)."""
    y = np.asarray(acc, dtype=np.int64)
    y = y - int(b_zero_point) * np.asarray(rowsum_a, dtype=np.int64)[..., :, None]
    y = y - int(a_zero_point) * np.asarray(colsum_b, dtype=np.int64)[..., None, :]
    y = y + int(K) * int(a_zero_point) * int(b_zero_point)
    return wrap_int32(y).astype(np.int64) if ACCUMULATOR_BITS[mode] == 32 else y
