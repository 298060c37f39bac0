"""Simulator-side helpers shared by the cocotb benches (imported inside the simulator only).

A bench drives a block's stream ports from one coroutine: every clock cycle, at the falling edge,
it drives ``valid``/``data``/``last`` of the sources and ``ready`` of the sinks (each randomly
withheld with the probabilities of the current phase), then, once the signals have settled
(``ReadOnly``), it records which beats move at the coming rising edge. One coroutine per cycle
instead of one per port keeps Icarus fast; sampling at ``ReadOnly`` after the falling edge
gives the same answers on Icarus and Verilator.

Sources obey the AXI4-Stream rule: once ``valid`` is up it stays up, with the same beat, until
the beat moves. Time must only advance inside :meth:`Harness.run`, so that every transfer is
recorded.

The bench's configuration comes from the environment (:data:`CONFIG_ENV`, set by
:func:`codesign.rtl.bench.runner.run_bench`); each test appends one JSON line of metrics to the
report file named there.
"""

from __future__ import annotations

import json
import os
import random
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly

from codesign.rtl.spec import BlockSpec

CONFIG_ENV = "CODESIGN_BENCH_CONFIG"
CLOCK_NS = 10


@dataclass(frozen=True)
class BenchConfig:
    """What the host asked the bench to do."""

    spec: BlockSpec
    transactions: int
    seed: int
    report: Path

    @classmethod
    def from_env(cls) -> BenchConfig:
        raw = json.loads(os.environ[CONFIG_ENV])
        return cls(
            spec=BlockSpec.from_json(raw["spec"]),
            transactions=int(raw["transactions"]),
            seed=int(raw["seed"]),
            report=Path(raw["report"]),
        )

    def record(self, test: str, **metrics: Any) -> None:
        """Append one metrics line for ``test`` to the report file."""
        with self.report.open("a") as f:
            f.write(json.dumps({"test": test, **metrics}) + "\n")


class Source:
    """Drives a sink port of the DUT (``<name>__data/valid/ready[/last]``) from a queue."""

    def __init__(self, dut: Any, name: str, *, last: bool = True) -> None:
        self.name = name
        self.data = getattr(dut, f"{name}__data")
        self.valid = getattr(dut, f"{name}__valid")
        self.ready = getattr(dut, f"{name}__ready")
        self.last = getattr(dut, f"{name}__last") if last else None
        self.queue: deque[tuple[int, int, dict[str, int] | None]] = deque()
        self.dut = dut
        self.pending = False
        self.accepted = 0
        self.times: list[int] = []
        self._valid_out = 0
        self.valid.value = 0

    def put(self, bits: int, last: bool = False, side: dict[str, int] | None = None) -> None:
        """Queue one beat (already packed). ``side`` maps other DUT inputs to values driven
        while this beat is offered (e.g. a sideband sampled with the beat)."""
        self.queue.append((bits, int(last), side))

    def extend(self, beats: Iterable[tuple[int, bool]]) -> None:
        """Queue packed beats ``(bits, last)``."""
        self.queue.extend((b, int(lst), None) for b, lst in beats)

    @property
    def idle(self) -> bool:
        """Nothing queued and nothing on the port."""
        return not self.queue and not self.pending

    def _drive(self, offer: bool) -> None:
        if not self.pending and self.queue and offer:
            bits, last, side = self.queue.popleft()
            self.data.value = bits
            if self.last is not None:
                self.last.value = last
            if side:
                for name, value in side.items():
                    getattr(self.dut, name).value = value
            self.pending = True
        v = int(self.pending)
        if v != self._valid_out:
            self.valid.value = v
            self._valid_out = v


class Sink:
    """Takes beats from a source port of the DUT, recording them and their cycle numbers."""

    def __init__(self, dut: Any, name: str, *, last: bool = True) -> None:
        self.name = name
        self.data = getattr(dut, f"{name}__data")
        self.valid = getattr(dut, f"{name}__valid")
        self.ready = getattr(dut, f"{name}__ready")
        self.last = getattr(dut, f"{name}__last") if last else None
        self.beats: list[tuple[int, int]] = []
        self.times: list[int] = []
        self._ready_out = 0
        self.ready.value = 0

    def _drive(self, take: bool) -> None:
        r = int(take)
        if r != self._ready_out:
            self.ready.value = r
            self._ready_out = r


class Harness:
    """Clock, reset and the per-cycle driving loop."""

    def __init__(self, dut: Any, seed: int) -> None:
        self.dut = dut
        self.rng = random.Random(seed)
        self.cycle = 0
        self.sources: list[Source] = []
        self.sinks: list[Sink] = []

    def source(self, name: str, *, last: bool = True) -> Source:
        """A :class:`Source` on the DUT's sink port ``name``, driven by every :meth:`run`."""
        s = Source(self.dut, name, last=last)
        self.sources.append(s)
        return s

    def sink(self, name: str, *, last: bool = True) -> Sink:
        """A :class:`Sink` on the DUT's source port ``name``, taking beats in every :meth:`run`."""
        k = Sink(self.dut, name, last=last)
        self.sinks.append(k)
        return k

    @classmethod
    async def start(cls, dut: Any, seed: int) -> Harness:
        """Start the clock and hold reset for 3 cycles (every port idle)."""
        h = cls(dut, seed)
        Clock(dut.clk, CLOCK_NS, unit="ns").start()
        dut.rst.value = 1
        for _ in range(3):
            await FallingEdge(dut.clk)
        dut.rst.value = 0
        return h

    async def run(
        self,
        active: Sequence[Source] = (),
        *,
        p_valid: float = 1.0,
        p_ready: float = 1.0,
        until: Callable[[], bool],
        max_cycles: int = 200_000,
    ) -> None:
        """Drive cycles until ``until()`` holds after a cycle (checked after each ReadOnly).

        Each cycle a source in ``active`` offers its next beat with probability ``p_valid`` (the
        other sources offer nothing new, but keep a beat they already offered), and every sink is
        ready with probability ``p_ready``.
        """
        rnd = self.rng.random
        clk = self.dut.clk
        sources = self.sources
        sinks = self.sinks
        for _ in range(max_cycles):
            await FallingEdge(clk)
            for s in sources:
                s._drive(s in active and (p_valid >= 1.0 or rnd() < p_valid))
            for k in sinks:
                k._drive(p_ready >= 1.0 or rnd() < p_ready)
            await ReadOnly()
            for s in sources:
                if s.pending and int(s.ready.value):
                    s.pending = False
                    s.accepted += 1
                    s.times.append(self.cycle)
            for k in sinks:
                if k._ready_out and int(k.valid.value):
                    last = int(k.last.value) if k.last is not None else 0
                    k.beats.append((int(k.data.value), last))
                    k.times.append(self.cycle)
            self.cycle += 1
            if until():
                return
        raise AssertionError(f"the bench did not finish within {max_cycles} cycles")

    async def drain(self, counts: Sequence[int], *, p_ready: float = 1.0) -> None:
        """Run with no new beat until every sink (in creation order) has received its expected
        number of beats, then a few more cycles to catch any extra beat."""
        sinks = self.sinks
        await self.run(
            p_ready=p_ready,
            until=lambda: all(len(k.beats) >= n for k, n in zip(sinks, counts, strict=True)),
            max_cycles=100 * max(counts, default=1) + 1000,
        )
        await self.run(until=_after(8))


def _after(n: int) -> Callable[[], bool]:
    left = [n]

    def done() -> bool:
        left[0] -= 1
        return left[0] <= 0

    return done


def steady_rate(times: Sequence[int]) -> float:
    """Beats per cycle over a run of transfers: ``n / (t_last - t_first + 1)``."""
    if len(times) < 2:
        return float("nan")
    return len(times) / (times[-1] - times[0] + 1)


def check_beats(
    name: str,
    got: Sequence[tuple[int, int]],
    want: Sequence[tuple[int, int]],
    decode: Callable[[int], Any],
) -> None:
    """Assert that the beats (bits, last) match, naming the first difference decoded."""
    for i, (g, w) in enumerate(zip(got, want, strict=False)):
        if g != w:
            raise AssertionError(
                f"{name}: beat {i} differs: got {decode(g[0])} last={g[1]}, "
                f"expected {decode(w[0])} last={w[1]}"
            )
    if len(got) != len(want):
        raise AssertionError(f"{name}: got {len(got)} beats, expected {len(want)}")


PHASES: tuple[tuple[float, float], ...] = (
    (1.0, 1.0),
    (0.8, 0.8),
    (0.5, 0.9),
    (0.9, 0.5),
    (0.3, 0.3),
)
"""(p_valid, p_ready) pairs the random benches cycle through."""


def phase(rng: random.Random) -> tuple[float, float]:
    """A random backpressure phase from :data:`PHASES`."""
    return rng.choice(PHASES)


__all__ = [
    "CONFIG_ENV",
    "BenchConfig",
    "Harness",
    "Sink",
    "Source",
    "check_beats",
    "phase",
    "steady_rate",
]
