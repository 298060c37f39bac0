"""Tile broadcaster/replicator: take a tile stream once, replay it to N outputs R times.

The PL side of Tempus-style replication without re-reading DDR: Tempus streams A replicated
``(N/2)/DIM_B`` times and B ``M/DIM_A`` times from DDR (REFERENCES.md s3), so most of its DDR
traffic is copies; this block reads each replay unit once and produces the copies on chip.

Ports
-----
``s_tile`` (sink, ``last``): a stream of replay units; a unit is the beats up to and including
``last`` (one tile, or a row of tiles: whatever the schedule replays as a whole). A unit has at
most ``depth`` beats.

``repeats`` (input, ``repeat_width`` bits): R, the number of times each unit is sent (0 counts as
1). It is sampled with the first beat of each unit, so it may change between units (a host
register in a real build; the schedule sets it per GEMM).

``m_out[0..outputs-1]`` (sources, ``last``): every output carries each unit R times in a row,
``last`` on the final beat of every copy. The outputs move in lockstep beat by beat, but each
output takes a beat whenever it is ready (a beat is held until every output has taken it).

``overflow`` (output): sticky, set if a unit longer than ``depth`` beats arrived (its extra
beats were passed on in the first copy but not stored, so later copies hold only the first
``depth`` beats).

Timing: the first copy passes straight through (one register), later copies come from the
on-chip memory (a synchronous read into the output register). With every output ready the block
sends one beat per cycle on every output, with no bubble between copies or units; it accepts the
input during the first copy only, so a unit occupies the input ``T`` of every ``R * T`` cycles.
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from codesign.errors import OptionError
from codesign.rtl.stream import stream_signature

__all__ = ["Broadcaster", "BroadcasterParams"]


@dataclass(frozen=True)
class BroadcasterParams:
    """Build-time parameters of the :class:`Broadcaster`.

    ``width`` bits per beat (128 for a 128-bit PLIO), ``outputs`` output streams, ``depth`` beats
    of the largest replay unit, ``repeat_width`` bits of the R input.
    """

    width: int = 128
    outputs: int = 2
    depth: int = 512
    repeat_width: int = 16

    def __post_init__(self) -> None:
        if not 1 <= self.width <= 4096:
            raise OptionError(f"broadcaster width must lie in [1, 4096], not {self.width}")
        if not 1 <= self.outputs <= 64:
            raise OptionError(f"broadcaster outputs must lie in [1, 64], not {self.outputs}")
        if not 2 <= self.depth <= 1 << 20:
            raise OptionError(f"broadcaster depth must lie in [2, 2**20], not {self.depth}")
        if not 1 <= self.repeat_width <= 32:
            raise OptionError(
                f"broadcaster repeat_width must lie in [1, 32], not {self.repeat_width}"
            )


class Broadcaster(wiring.Component):
    """The tile broadcaster/replicator; see the module docstring for ports and timing."""

    #: Cycles from an input beat's acceptance to its first copy being valid on the outputs.
    LATENCY = 1

    def __init__(self, params: BroadcasterParams) -> None:
        self.params = params
        beat = stream_signature(unsigned(params.width), last=True)
        super().__init__(
            {
                "s_tile": In(beat),
                "repeats": In(params.repeat_width),
                "m_out": Out(beat).array(params.outputs),
                "overflow": Out(1),
            }
        )

    def elaborate(self, platform: object) -> Module:
        p = self.params
        m = Module()
        n = p.outputs
        aw = ceil_log2(p.depth)

        m.submodules.buffer = mem = Memory(shape=unsigned(p.width), depth=p.depth, init=[])
        wr = mem.write_port()
        rd = mem.read_port(domain="sync")

        # ---- output holding register and the fork to the outputs ---------------------------
        cur_valid = Signal()
        cur_last = Signal()
        from_mem = Signal()  # the held beat is rd.data (a replay) rather than in_data
        in_data = Signal(p.width)
        taken = Signal(n)  # outputs that already took the held beat
        advance = Signal()  # the held beat is gone (or there is none): load the next one
        done = [taken[i] | self.m_out[i].ready for i in range(n)]
        all_done = done[0]
        for d in done[1:]:
            all_done = all_done & d
        m.d.comb += advance.eq(~cur_valid | all_done)
        for i in range(n):
            m.d.comb += [
                self.m_out[i].valid.eq(cur_valid & ~taken[i]),
                self.m_out[i].data.eq(Mux(from_mem, rd.data, in_data)),
                self.m_out[i].last.eq(cur_last),
            ]
        with m.If(advance):
            m.d.sync += taken.eq(0)
        with m.Else():
            for i in range(n):
                with m.If(self.m_out[i].valid & self.m_out[i].ready):
                    m.d.sync += taken[i].eq(1)

        # ---- first copy: pass the input through and store it ---------------------------------
        replay = Signal()  # sending copies 2..R from the memory
        wptr = Signal(range(p.depth + 1))  # beats of the current unit stored so far
        length = Signal(range(p.depth + 1))  # beats stored of the unit being replayed
        left = Signal(p.repeat_width)  # copies still to send after the current one
        rptr = Signal(range(p.depth))
        overflow = Signal()
        m.d.comb += self.overflow.eq(overflow)

        take = Signal()
        r_now = Signal(p.repeat_width)  # R as sampled with the first beat (0 counts as 1)
        left_now = Signal(p.repeat_width)
        m.d.comb += [
            self.s_tile.ready.eq(~replay & advance),
            take.eq(self.s_tile.valid & self.s_tile.ready),
            r_now.eq(Mux(self.repeats == 0, 1, self.repeats)),
            left_now.eq(Mux(wptr == 0, r_now - 1, left)),
            wr.addr.eq(wptr[:aw]),
            wr.data.eq(self.s_tile.data),
            wr.en.eq(take & (wptr != p.depth)),
        ]
        with m.If(advance & ~replay):
            m.d.sync += cur_valid.eq(take)
        with m.If(take):
            m.d.sync += [
                in_data.eq(self.s_tile.data),
                cur_last.eq(self.s_tile.last),
                from_mem.eq(0),
                left.eq(left_now),
            ]
            with m.If(wptr == p.depth):
                m.d.sync += overflow.eq(1)
            with m.Else():
                m.d.sync += wptr.eq(wptr + 1)
            with m.If(self.s_tile.last):
                m.d.sync += [
                    wptr.eq(0),
                    length.eq(Mux(wptr == p.depth, p.depth, wptr + 1)),
                    rptr.eq(0),
                    replay.eq(left_now != 0),
                ]

        # ---- later copies: read the memory into the output register --------------------------
        m.d.comb += [rd.addr.eq(rptr), rd.en.eq(replay & advance)]
        with m.If(replay & advance):
            end_of_copy = rptr == length - 1
            m.d.sync += [
                cur_valid.eq(1),
                from_mem.eq(1),
                cur_last.eq(end_of_copy),
                rptr.eq(Mux(end_of_copy, 0, rptr + 1)),
            ]
            with m.If(end_of_copy):
                m.d.sync += left.eq(left - 1)
                with m.If(left == 1):
                    m.d.sync += replay.eq(0)
        return m
