"""Requantiser: int32 accumulators to int8/int16 with the AIE-ML SRS arithmetic, at line rate.

Computes, per lane, exactly ``numerics.requantize(acc, multiplier[c], shift[c], zero_point,
out_dtype, rounding=..., relu=...)`` for the lane's output channel ``c``.

Ports
-----
``s_params`` (sink, ``last``): the parameters of one layer, as a packet of ``W`` words. Word
``w`` holds, for lanes ``l = 0 .. lanes-1``, the 32-bit signed ``multiplier`` and the 6-bit
``shift`` (0..62) of channel ``w * lanes + l``, plus the per-tensor ``zero_point``
(``out_bits + 1``-bit signed), ``relu`` and ``rounding`` (3 bits, the index of the mode in
``numerics.ROUNDING_MODES``). The per-tensor fields are taken from the packet's ``last`` word.
The layer then has ``N = W * lanes`` channels; ``W`` must not exceed ``depth``
(``max_channels / lanes``): further words are dropped. A per-tensor layer is a one-word packet
with the same multiplier and shift in every lane.

``s_acc`` (sink, ``last``): accumulators, ``lanes`` signed ``acc_width``-bit lanes per beat, in
row-major order over ``[rows, N]``: beat ``b`` lane ``l`` is channel ``(b * lanes + l) mod N``.
``last`` ends a tensor and restarts the channel count at 0 (so does a parameter load).

``m_out`` (source, ``last``): the requantised lanes (``out_dtype``), with ``last`` passed through.

How parameters are loaded, and why
----------------------------------
A real build walks many layers through one PL requantiser (Tempus-style temporal execution reuses
the same hardware for every layer), so parameters are data, not constants: the DMA that streams
a layer's accumulators sends the layer's parameter packet (from the packed weights file) on
``s_params`` first. The block stores it in a ``depth``-word memory (registers when ``depth`` is
1, BRAM/LUTRAM otherwise) and applies it to the accumulators that follow. A parameter word waits
until the accumulators already accepted have left the pipeline, and while a parameter packet is
pending or in progress no accumulator is accepted, so a layer's parameters never mix with
another's.

Pipeline: 4 stages (channel-parameter read, 32x32 multiply, round-shift, zero point / ReLU /
saturate), one beat per cycle, a global stall on ``m_out.ready``.
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from codesign.errors import OptionError
from codesign.rtl.stream import dtype_shape, round_up, saturate, stream_signature
from codesign.sim.numerics import ROUNDING_MODES

__all__ = ["Requantizer", "RequantizerParams"]

#: Width of the fixed-point multiplier (numerics: an int32) and of the shift field (0..62).
MULT_WIDTH = 32
SHIFT_WIDTH = 6

_OUT_DTYPES = ("int4", "uint4", "int8", "uint8", "int16", "uint16")


@dataclass(frozen=True)
class RequantizerParams:
    """Build-time parameters of the :class:`Requantizer`.

    ``lanes`` accumulators per beat (a 128-bit AIE-ML PLIO carries 4 int32), ``acc_width`` bits
    per accumulator (at most 32, the acc32 lane), ``out_dtype`` the output integer type,
    ``max_channels`` the largest per-channel layer it can hold (a multiple of ``lanes``;
    ``lanes`` itself gives a per-tensor-only build with no memory).
    """

    lanes: int = 4
    acc_width: int = 32
    out_dtype: str = "int8"
    max_channels: int = 1024

    def __post_init__(self) -> None:
        if not 1 <= self.lanes <= 64:
            raise OptionError(f"requantizer lanes must lie in [1, 64], not {self.lanes}")
        if not 2 <= self.acc_width <= 32:
            raise OptionError(f"requantizer acc_width must lie in [2, 32], not {self.acc_width}")
        if self.out_dtype not in _OUT_DTYPES:
            raise OptionError(
                f"requantizer out_dtype must be one of {', '.join(_OUT_DTYPES)}, "
                f"not {self.out_dtype!r}"
            )
        if self.max_channels < self.lanes or self.max_channels % self.lanes:
            raise OptionError(
                f"requantizer max_channels must be a positive multiple of lanes={self.lanes}, "
                f"not {self.max_channels}"
            )

    @property
    def depth(self) -> int:
        """Parameter words held (``max_channels / lanes``)."""
        return self.max_channels // self.lanes

    @property
    def out_bits(self) -> int:
        """Bits of one output lane."""
        return dtype_shape(self.out_dtype).width

    @property
    def zp_shape(self) -> object:
        """Shape of the zero point: signed, one bit wider than an output lane."""
        return signed(self.out_bits + 1)

    def word_layout(self) -> data.StructLayout:
        """Layout of one ``s_params`` word."""
        return data.StructLayout(
            {
                "multiplier": data.ArrayLayout(signed(MULT_WIDTH), self.lanes),
                "shift": data.ArrayLayout(unsigned(SHIFT_WIDTH), self.lanes),
                "zero_point": self.zp_shape,
                "relu": unsigned(1),
                "rounding": unsigned(3),
            }
        )

    def acc_layout(self) -> data.ArrayLayout:
        """Layout of one ``s_acc`` beat."""
        return data.ArrayLayout(signed(self.acc_width), self.lanes)

    def out_layout(self) -> data.ArrayLayout:
        """Layout of one ``m_out`` beat."""
        return data.ArrayLayout(dtype_shape(self.out_dtype), self.lanes)


class Requantizer(wiring.Component):
    """The requantiser block; see the module docstring for ports and the parameter protocol."""

    #: Clock cycles from an accumulator beat's acceptance to its output beat being valid.
    LATENCY = 4

    def __init__(self, params: RequantizerParams) -> None:
        self.params = params
        super().__init__(
            {
                "s_params": In(stream_signature(params.word_layout(), last=True)),
                "s_acc": In(stream_signature(params.acc_layout(), last=True)),
                "m_out": Out(stream_signature(params.out_layout(), last=True)),
            }
        )

    def elaborate(self, platform: object) -> Module:
        p = self.params
        m = Module()
        lanes = p.lanes
        ob = p.out_bits
        chan_layout = data.StructLayout(
            {
                "multiplier": data.ArrayLayout(signed(MULT_WIDTH), lanes),
                "shift": data.ArrayLayout(unsigned(SHIFT_WIDTH), lanes),
            }
        )

        # ---- pipeline control (global stall) ------------------------------------------------
        enable = Signal()
        valid = [Signal(name=f"v{i}") for i in range(4)]
        last = [Signal(name=f"last{i}") for i in range(4)]
        busy = Signal()
        m.d.comb += [
            enable.eq(~valid[3] | self.m_out.ready),
            busy.eq(valid[0] | valid[1] | valid[2] | valid[3]),
            self.m_out.valid.eq(valid[3]),
            self.m_out.last.eq(last[3]),
        ]

        # ---- parameter load -------------------------------------------------------------------
        loading = Signal()  # inside a parameter packet
        count = Signal(range(p.depth + 1), init=1)  # words of the current layer
        wptr = Signal(range(p.depth + 1))
        zero_point = Signal(p.zp_shape)
        relu = Signal()
        rounding = Signal(3, init=ROUNDING_MODES.index("conv_even"))
        take_p = Signal()
        m.d.comb += [
            self.s_params.ready.eq(~busy),
            take_p.eq(self.s_params.valid & self.s_params.ready),
        ]
        word = self.s_params.data
        with m.If(take_p):
            with m.If(wptr != p.depth):
                m.d.sync += wptr.eq(wptr + 1)
            with m.If(self.s_params.last):
                m.d.sync += [
                    loading.eq(0),
                    wptr.eq(0),
                    count.eq(Mux(wptr == p.depth, p.depth, wptr + 1)),
                    zero_point.eq(word.zero_point),
                    relu.eq(word.relu),
                    rounding.eq(word.rounding),
                ]
            with m.Else():
                m.d.sync += loading.eq(1)

        # ---- accumulator intake and channel counter ------------------------------------------
        take_a = Signal()
        m.d.comb += [
            self.s_acc.ready.eq(enable & ~loading & ~self.s_params.valid),
            take_a.eq(self.s_acc.valid & self.s_acc.ready),
        ]
        ch = Signal(range(max(p.depth, 2)))
        with m.If(take_a):
            m.d.sync += ch.eq(Mux(self.s_acc.last | (ch + 1 == count), 0, ch + 1))
        with m.If(take_p & self.s_params.last):
            m.d.sync += ch.eq(0)

        # Channel parameters for the beat in stage 0: a synchronous memory read in the cycle the
        # beat is accepted (or, with one word, a register written by the load).
        chan = Signal(chan_layout)
        if p.depth == 1:
            with m.If(take_p & (wptr == 0)):
                m.d.sync += chan.eq(Cat(word.multiplier, word.shift))
        else:
            m.submodules.params = mem = Memory(shape=chan_layout, depth=p.depth, init=[])
            wr = mem.write_port()
            rd = mem.read_port(domain="sync")
            m.d.comb += [
                wr.addr.eq(wptr[: ceil_log2(p.depth)]),
                wr.data.eq(Cat(word.multiplier, word.shift)),
                wr.en.eq(take_p & (wptr != p.depth)),
                rd.addr.eq(ch),
                rd.en.eq(enable),
                chan.eq(rd.data),
            ]

        # ---- stage 0: register the accumulators -----------------------------------------------
        acc0 = Signal(p.acc_layout())
        # ---- stage 1: product ----------------------------------------------------------------
        # The product, sign-extended to at least 64 bits so that every shift up to 62 finds its
        # round bit inside the value (numerics computes in int64).
        prod_w = max(p.acc_width + MULT_WIDTH, 64)
        prod1 = [Signal(signed(prod_w), name=f"prod1_{i}") for i in range(lanes)]
        shift1 = [Signal(unsigned(SHIFT_WIDTH), name=f"shift1_{i}") for i in range(lanes)]
        # ---- stage 2: rounded shift, clamped to a range that cannot change the saturated result
        clamp_hi = 2 ** (ob + 2) - 1
        clamp_lo = -(2 ** (ob + 2))
        rs2 = [Signal(signed(ob + 3), name=f"rs2_{i}") for i in range(lanes)]
        # ---- stage 3: zero point, ReLU, saturation -------------------------------------------
        out3 = Signal(p.out_layout())

        stage1: list = []
        stage2: list = []
        stage3: list = []
        for i in range(lanes):
            x = prod1[i]
            s = shift1[i]
            floor = Signal(signed(prod_w), name=f"floor_{i}")
            round_bit = Signal(name=f"round_bit_{i}")
            sticky = Signal(name=f"sticky_{i}")
            up = Signal(name=f"up_{i}")
            rounded = Signal(signed(prod_w + 1), name=f"rounded_{i}")
            y = Signal(signed(ob + 4), name=f"y_{i}")
            # The s - 1 bits under the round bit: ((1 << s) - 1) >> 1.
            below = (((Const(1, prod_w + 1) << s)[: prod_w + 1] - 1) >> 1)[:prod_w]
            m.d.comb += [
                floor.eq(x >> s),
                round_bit.eq((s != 0) & x.as_unsigned().bit_select((s - 1)[:SHIFT_WIDTH], 1)),
                sticky.eq((x.as_unsigned() & below) != 0),
                up.eq(
                    round_up(
                        rounding, round_bit=round_bit, sticky=sticky, negative=x[-1], odd=floor[0]
                    )
                ),
                rounded.eq(floor + up),
                y.eq(rs2[i] + zero_point),
            ]
            stage1 += [prod1[i].eq(acc0[i] * chan.multiplier[i]), shift1[i].eq(chan.shift[i])]
            stage2.append(
                rs2[i].eq(
                    Mux(rounded > clamp_hi, clamp_hi, Mux(rounded < clamp_lo, clamp_lo, rounded))
                )
            )
            stage3.append(
                out3[i].eq(saturate(Mux(relu & (y < zero_point), zero_point, y), p.out_dtype))
            )

        with m.If(enable):
            m.d.sync += [
                valid[0].eq(take_a),
                last[0].eq(self.s_acc.last),
                acc0.eq(self.s_acc.data),
            ]
            for i in range(1, 4):
                m.d.sync += [valid[i].eq(valid[i - 1]), last[i].eq(last[i - 1])]
            m.d.sync += stage1 + stage2 + stage3

        m.d.comb += self.m_out.data.eq(out3)
        return m
