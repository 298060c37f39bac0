"""N:M sparse weight expander: fixed-rate compressed values + position indices -> dense lanes.

Computes exactly ``numerics.nm_expand`` on every beat. The format is codesign's fixed-rate N:M
format (``numerics.nm_compress``): the dense lanes are cut into groups of ``m``; each group is sent
as ``n`` slots of (value, ``log2(m)``-bit position). For AIE-ML's sparse mode (int8, at least two
zeros in every four bytes of B, UG1603) that is 2:4: 2 bytes and 4 index bits per 4 dense bytes,
62.5% of the dense size at a fixed rate (AIE-ML's own memory format, a mask bit per byte followed
by the non-zero bytes, has the same ratio but a variable length per chunk, so it cannot be
streamed at a fixed beat rate). Keeping weights compressed in DDR and expanding them in the PL
cuts the weight traffic of a DDR-bound design (Tempus, REFERENCES.md s3) to 62.5%.

Ports
-----
``s_packed`` (sink, ``last``): ``values`` (``groups * n`` lanes of ``dtype``; slot ``j`` of group
``g`` is lane ``g * n + j``) and ``index`` (the same number of ``log2(m)``-bit positions).
A position no slot names is zero; if two slots of a group name one position the later slot wins.

``m_dense`` (source, ``last``): ``groups * m`` lanes of ``dtype``, ``last`` passed through.

One register stage, one beat per cycle.
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from codesign.errors import OptionError
from codesign.rtl.stream import dtype_shape, stream_signature
from codesign.sim.numerics import nm_index_bits

__all__ = ["SparseExpander", "SparseExpanderParams"]

_DTYPES = ("int4", "uint4", "int8", "uint8", "int16", "uint16")


@dataclass(frozen=True)
class SparseExpanderParams:
    """Build-time parameters of the :class:`SparseExpander`.

    ``n`` kept of every ``m`` (``m`` a power of two), ``groups`` per beat, ``dtype`` of a value.
    The default, 2:4 int8 with 16 groups, turns a 160-bit beat into a 512-bit one (64 int8
    lanes, one AIE-ML 512-bit B vector).
    """

    n: int = 2
    m: int = 4
    groups: int = 16
    dtype: str = "int8"

    def __post_init__(self) -> None:
        if self.m < 2 or self.m > 64 or self.m & (self.m - 1):
            raise OptionError(f"sparse_expander m must be a power of two in [2, 64], not {self.m}")
        if not 1 <= self.n <= self.m:
            raise OptionError(f"sparse_expander n must lie in [1, m={self.m}], not {self.n}")
        if not 1 <= self.groups <= 256:
            raise OptionError(f"sparse_expander groups must lie in [1, 256], not {self.groups}")
        if self.dtype not in _DTYPES:
            raise OptionError(
                f"sparse_expander dtype must be one of {', '.join(_DTYPES)}, not {self.dtype!r}"
            )

    @property
    def index_bits(self) -> int:
        """Bits of one position index (``log2(m)``)."""
        return nm_index_bits(self.m)

    def packed_layout(self) -> data.StructLayout:
        """Layout of one ``s_packed`` beat."""
        slots = self.groups * self.n
        return data.StructLayout(
            {
                "values": data.ArrayLayout(dtype_shape(self.dtype), slots),
                "index": data.ArrayLayout(unsigned(self.index_bits), slots),
            }
        )

    def dense_layout(self) -> data.ArrayLayout:
        """Layout of one ``m_dense`` beat."""
        return data.ArrayLayout(dtype_shape(self.dtype), self.groups * self.m)


class SparseExpander(wiring.Component):
    """The N:M sparse expander; see the module docstring for the format and ports."""

    #: Cycles from an input beat's acceptance to its output beat being valid.
    LATENCY = 1

    def __init__(self, params: SparseExpanderParams) -> None:
        self.params = params
        super().__init__(
            {
                "s_packed": In(stream_signature(params.packed_layout(), last=True)),
                "m_dense": Out(stream_signature(params.dense_layout(), last=True)),
            }
        )

    def elaborate(self, platform: object) -> Module:
        p = self.params
        m = Module()
        enable = Signal()
        valid = Signal()
        last = Signal()
        dense = Signal(p.dense_layout())
        m.d.comb += [
            enable.eq(~valid | self.m_dense.ready),
            self.s_packed.ready.eq(enable),
            self.m_dense.valid.eq(valid),
            self.m_dense.last.eq(last),
            self.m_dense.data.eq(dense),
        ]
        packed = self.s_packed.data
        width = dtype_shape(p.dtype).width
        with m.If(enable):
            m.d.sync += [valid.eq(self.s_packed.valid), last.eq(self.s_packed.last)]
            for g in range(p.groups):
                for pos in range(p.m):
                    lane = Const(0, width)
                    for j in range(p.n):  # ascending slots: a later slot overrides
                        slot = g * p.n + j
                        lane = Mux(packed.index[slot] == pos, packed.values[slot], lane)
                    m.d.sync += dense[g * p.m + pos].eq(lane)
        return m
