"""Shared pieces of the RTL blocks: the AXI4-Stream-style port signature and the SRS rounding bit.

Every block port is a :func:`stream_signature`: ``data`` (a packed vector, described by an
Amaranth layout), ``valid`` and ``ready``, and ``last`` where the block uses packet boundaries.
A beat moves on a rising clock edge where ``valid & ready``. As in AXI4-Stream, a source never
waits for ``ready`` before asserting ``valid`` and holds ``valid``/``data``/``last`` until the beat
moves; a sink's ``ready`` may depend on ``valid``.

In Verilog the members become ports named ``<port>__data``, ``<port>__valid``, ``<port>__ready``,
``<port>__last``; multi-lane data is packed lane 0 in the least significant bits (AXI4-Stream
byte order). All ports are unsigned in Verilog: signed lanes are two's complement bit fields.
Clock and reset are ``clk`` and ``rst`` (synchronous, active high).
"""

from __future__ import annotations

from amaranth.hdl import Const, Mux, Shape, ShapeLike, Value, ValueLike
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from codesign.sim.numerics import ROUNDING_MODES, int_range

__all__ = [
    "ROUNDING_MODES",
    "dtype_shape",
    "round_up",
    "saturate",
    "stream_signature",
]


def stream_signature(payload: ShapeLike, *, last: bool = False) -> wiring.Signature:
    """The signature of a source (``Out``) stream port carrying ``payload`` beats.

    Members: ``data`` (``payload``), ``valid``, ``ready`` (flipped), and ``last`` if asked for.
    Use ``In(stream_signature(...))`` for a sink.
    """
    members: dict[str, wiring.Member] = {
        "data": Out(payload),
        "valid": Out(1),
        "ready": In(1),
    }
    if last:
        members["last"] = Out(1)
    return wiring.Signature(members)


def dtype_shape(dtype: str) -> Shape:
    """The Amaranth shape of the integer dtype named ``dtype`` (``int8`` -> ``signed(8)``)."""
    lo, hi = int_range(dtype)
    if lo < 0:
        return Shape(hi.bit_length() + 1, signed=True)
    return Shape(hi.bit_length(), signed=False)


def saturate(value: ValueLike, dtype: str) -> Value:
    """Clamp ``value`` to the range of ``dtype`` (the hardware of ``numerics.saturate``)."""
    lo, hi = int_range(dtype)
    v = Value.cast(value)
    shape = dtype_shape(dtype)
    return Mux(v > hi, Const(hi, shape), Mux(v < lo, Const(lo, shape), v[: shape.width]))


def round_up(
    mode: str | Value, *, round_bit: Value, sticky: Value, negative: Value, odd: Value
) -> Value:
    """The increment (0 or 1) the SRS rounding ``mode`` adds to ``floor(x / 2**s)``.

    ``round_bit`` is bit ``s - 1`` of ``x``, ``sticky`` is whether any bit below it is set,
    ``negative`` the sign of ``x`` and ``odd`` the low bit of the floor; with ``s == 0`` both
    ``round_bit`` and ``sticky`` must be 0. This is ``numerics.round_shift`` bit for bit: a
    remainder above one half rounds up in every mode but ``floor``; ties follow the mode.

    ``mode`` is either a mode name (a constant; the logic folds) or a 3-bit value indexing
    :data:`ROUNDING_MODES` (selectable at run time).
    """
    above = round_bit & sticky
    inexact = round_bit | sticky
    table = {
        "floor": Const(0, 1),
        "ceil": inexact,
        "pos_inf": round_bit,
        "neg_inf": above,
        "sym_inf": round_bit & (sticky | ~negative),
        "sym_zero": round_bit & (sticky | negative),
        "conv_even": round_bit & (sticky | odd),
        "conv_odd": round_bit & (sticky | ~odd),
    }
    if isinstance(mode, str):
        if mode not in table:
            raise ValueError(f"rounding mode must be one of {ROUNDING_MODES}, not {mode!r}")
        return table[mode]
    out = Const(0, 1)
    for i, name in enumerate(ROUNDING_MODES):
        out = Mux(mode == i, table[name], out)
    return out
