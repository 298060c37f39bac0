"""MWQ plane decoder (D2MoE matryoshka weights): base code + k residual planes -> integer weights.

Computes, per lane, exactly ``numerics.mwq_reconstruct`` (one group per ``s_group`` word)::

    acc = scale[0] * (base - zero_point) + sum_{i < k} scale[1 + i] * (+1 if plane_i else -1)
    w   = saturate(round_shift(acc, frac_bits, rounding), out_dtype)

Ports
-----
``s_group`` (sink): one word per weight group (D2MoE: 128 weights along K): ``planes`` = k, the
residual planes used (0..max_planes; the expert's bit width is ``base_bits + k``),
``zero_point`` (unsigned ``base_bits``) and ``scales`` (``max_planes + 1`` signed
``scale_width``-bit fixed-point scales, in units of ``2**-frac_bits`` output quanta; see
``numerics.mwq_integer_scales``).

``s_codes`` (sink, ``last``): ``lanes`` weights per beat: ``base`` (``lanes`` unsigned
``base_bits``-bit codes) and ``planes`` (``max_planes`` words of ``lanes`` bits; bit ``l`` of
word ``i`` is plane ``i`` of lane ``l``, 1 for +1). ``last`` ends the group: the ``s_group`` word
is consumed with the group's last beat, so a group may have any number of beats (128 / lanes for
D2MoE). Plane words ``i >= k`` are ignored (a loader that fetched only k planes may send
anything there).

``m_weights`` (source, ``last``): ``lanes`` reconstructed weights (``out_dtype``), ``last`` passed
through.

Pipeline: 3 stages (base product and plane terms, sum, round/saturate), one beat per cycle.
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import bits_for

from codesign.errors import OptionError
from codesign.rtl.stream import dtype_shape, round_up, saturate, stream_signature
from codesign.sim.numerics import ROUNDING_MODES

__all__ = ["MWQDecoder", "MWQDecoderParams"]

_OUT_DTYPES = ("int4", "uint4", "int8", "uint8", "int16", "uint16")


@dataclass(frozen=True)
class MWQDecoderParams:
    """Build-time parameters of the :class:`MWQDecoder`.

    ``lanes`` weights per beat; ``base_bits`` = b1; ``max_planes`` = K - b1, the most residual
    planes (D2MoE uses b1 = 2 with 2 planes and b1 = 5 with 3); ``scale_width`` bits of each
    fixed-point scale with ``frac_bits`` fractional bits; ``out_dtype`` and ``rounding`` of the
    final round-shift.
    """

    lanes: int = 16
    base_bits: int = 4
    max_planes: int = 4
    scale_width: int = 16
    frac_bits: int = 8
    out_dtype: str = "int8"
    rounding: str = "conv_even"

    def __post_init__(self) -> None:
        if not 1 <= self.lanes <= 128:
            raise OptionError(f"mwq_decoder lanes must lie in [1, 128], not {self.lanes}")
        if not 1 <= self.base_bits <= 8:
            raise OptionError(f"mwq_decoder base_bits must lie in [1, 8], not {self.base_bits}")
        if not 1 <= self.max_planes <= 8:
            raise OptionError(f"mwq_decoder max_planes must lie in [1, 8], not {self.max_planes}")
        if not 2 <= self.scale_width <= 24:
            raise OptionError(
                f"mwq_decoder scale_width must lie in [2, 24], not {self.scale_width}"
            )
        if not 0 <= self.frac_bits <= 30:
            raise OptionError(f"mwq_decoder frac_bits must lie in [0, 30], not {self.frac_bits}")
        if self.out_dtype not in _OUT_DTYPES:
            raise OptionError(
                f"mwq_decoder out_dtype must be one of {', '.join(_OUT_DTYPES)}, "
                f"not {self.out_dtype!r}"
            )
        if self.rounding not in ROUNDING_MODES:
            raise OptionError(
                f"mwq_decoder rounding must be one of {', '.join(ROUNDING_MODES)}, "
                f"not {self.rounding!r}"
            )

    def group_layout(self) -> data.StructLayout:
        """Layout of one ``s_group`` word."""
        return data.StructLayout(
            {
                "planes": unsigned(bits_for(self.max_planes)),
                "zero_point": unsigned(self.base_bits),
                "scales": data.ArrayLayout(signed(self.scale_width), self.max_planes + 1),
            }
        )

    def codes_layout(self) -> data.StructLayout:
        """Layout of one ``s_codes`` beat."""
        return data.StructLayout(
            {
                "base": data.ArrayLayout(unsigned(self.base_bits), self.lanes),
                "planes": data.ArrayLayout(unsigned(self.lanes), self.max_planes),
            }
        )

    def out_layout(self) -> data.ArrayLayout:
        """Layout of one ``m_weights`` beat."""
        return data.ArrayLayout(dtype_shape(self.out_dtype), self.lanes)


class MWQDecoder(wiring.Component):
    """The MWQ plane decoder; see the module docstring for ports."""

    #: Cycles from an input beat's acceptance to its output beat being valid.
    LATENCY = 3

    def __init__(self, params: MWQDecoderParams) -> None:
        self.params = params
        super().__init__(
            {
                "s_group": In(stream_signature(params.group_layout())),
                "s_codes": In(stream_signature(params.codes_layout(), last=True)),
                "m_weights": Out(stream_signature(params.out_layout(), last=True)),
            }
        )

    def elaborate(self, platform: object) -> Module:
        p = self.params
        m = Module()
        planes = p.max_planes
        sw = p.scale_width
        prod_w = sw + p.base_bits + 1
        sum_w = prod_w + bits_for(planes + 1) + 1

        enable = Signal()
        valid = [Signal(name=f"v{i}") for i in range(3)]
        last = [Signal(name=f"last{i}") for i in range(3)]
        take = Signal()
        m.d.comb += [
            enable.eq(~valid[2] | self.m_weights.ready),
            self.s_codes.ready.eq(enable & self.s_group.valid),
            self.s_group.ready.eq(enable & self.s_codes.valid & self.s_codes.last),
            take.eq(self.s_codes.valid & self.s_codes.ready),
            self.m_weights.valid.eq(valid[2]),
            self.m_weights.last.eq(last[2]),
        ]
        group = self.s_group.data
        codes = self.s_codes.data

        base0 = [Signal(signed(prod_w), name=f"base0_{i}") for i in range(p.lanes)]
        terms0 = [
            [Signal(signed(sw + 1), name=f"term0_{i}_{j}") for j in range(planes)]
            for i in range(p.lanes)
        ]
        sum1 = [Signal(signed(sum_w), name=f"sum1_{i}") for i in range(p.lanes)]
        out2 = Signal(p.out_layout())

        stages: list = []
        f = p.frac_bits
        for i in range(p.lanes):
            # base - zero_point lies in (-2**b1, 2**b1): exact in b1 + 1 signed bits.
            diff = Signal(signed(p.base_bits + 1), name=f"diff_{i}")
            m.d.comb += diff.eq(codes.base[i] - group.zero_point)
            stages.append(base0[i].eq(diff * group.scales[0]))
            for j in range(planes):
                s_j = group.scales[1 + j]
                bit = codes.planes[j][i]
                stages.append(terms0[i][j].eq(Mux(group.planes > j, Mux(bit, s_j, -s_j), 0)))
            total = base0[i]
            for j in range(planes):
                total = total + terms0[i][j]
            stages.append(sum1[i].eq(total))

            x = sum1[i]
            floor = Signal(signed(sum_w - f), name=f"floor_{i}")
            m.d.comb += floor.eq(x >> f)
            if f == 0 or p.rounding == "floor":
                # (no constant-only combinational signal: Icarus never evaluates its always @*)
                rounded = floor
            else:
                up = Signal(name=f"up_{i}")
                m.d.comb += up.eq(
                    round_up(
                        p.rounding,
                        round_bit=x[f - 1],
                        sticky=(x[: f - 1] != 0) if f > 1 else Const(0, 1),
                        negative=x[-1],
                        odd=floor[0],
                    )
                )
                rounded = floor + up
            stages.append(out2[i].eq(saturate(rounded, p.out_dtype)))

        with m.If(enable):
            m.d.sync += [valid[0].eq(take), last[0].eq(self.s_codes.last)]
            for i in range(1, 3):
                m.d.sync += [valid[i].eq(valid[i - 1]), last[i].eq(last[i - 1])]
            m.d.sync += stages

        m.d.comb += self.m_weights.data.eq(out2)
        return m
