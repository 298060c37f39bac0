"""SRS rounding: the AIE-ML rounding modes and the rounding right shift."""

from __future__ import annotations

from typing import Literal

import numpy as np

RoundingMode = Literal[
    "floor", "ceil", "pos_inf", "neg_inf", "sym_inf", "sym_zero", "conv_even", "conv_odd"
]

#: The AIE-ML SRS rounding modes (AIE API ``aie::rounding_mode``), named without the ``rnd_``
#: prefix. ``pos_inf``/``neg_inf`` round halves towards +/- infinity, ``sym_inf``/``sym_zero``
#: round halves away from/towards zero, ``conv_even``/``conv_odd`` round halves to even/odd.
ROUNDING_MODES: tuple[str, ...] = (
    "floor",
    "ceil",
    "pos_inf",
    "neg_inf",
    "sym_inf",
    "sym_zero",
    "conv_even",
    "conv_odd",
)


def round_shift(
    x: np.ndarray, shift: np.ndarray | int, mode: RoundingMode = "conv_even"
) -> np.ndarray:
    """Divide the int64 array ``x`` by ``2**shift`` and round with the SRS rounding ``mode``.

    ``shift`` may be a scalar or broadcast against ``x`` (per-channel shifts); it must lie in
    [0, 62]. A zero shift returns ``x`` unchanged. The result is int64.
    """
    x = np.asarray(x, dtype=np.int64)
    s = np.asarray(shift, dtype=np.int64)
    if np.any(s < 0) or np.any(s > 62):
        raise ValueError(f"shift must lie in [0, 62], not {s.min()}..{s.max()}")
    if mode not in ROUNDING_MODES:
        raise ValueError(f"rounding mode must be one of {ROUNDING_MODES}, not {mode!r}")
    floor = x >> s
    if mode == "floor":
        return floor
    one = np.int64(1)
    rem = x - (floor << s)  # in [0, 2**s)
    exact = rem == 0
    if mode == "ceil":
        return floor + (~exact)
    half = np.where(s > 0, one << np.maximum(s - 1, 0), 0)
    above = rem > half
    tie = (rem == half) & (s > 0)
    if mode == "pos_inf":
        up = above | tie
    elif mode == "neg_inf":
        up = above
    elif mode == "sym_inf":
        up = above | (tie & (x >= 0))
    elif mode == "sym_zero":
        up = above | (tie & (x < 0))
    elif mode == "conv_even":
        up = above | (tie & ((floor & 1) == 1))
    else:  # conv_odd
        up = above | (tie & ((floor & 1) == 0))
    return floor + (up & ~exact)
