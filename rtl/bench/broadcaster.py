"""cocotb bench of the tile broadcaster/replicator.

The block moves data without arithmetic, so the expected streams are the input units repeated
(no numerics function is involved): every output must carry every unit R times in a row, with
``last`` at the end of each copy.
"""

from __future__ import annotations

import random

import cocotb

from codesign.rtl.bench.common import BenchConfig, Harness, check_beats, phase, steady_rate
from codesign.rtl.broadcaster import BroadcasterParams


class Bench:
    def __init__(self, cfg: BenchConfig, h: Harness) -> None:
        self.cfg = cfg
        self.p: BroadcasterParams = cfg.spec.config
        self.h = h
        self.tile = h.source("s_tile")
        self.outs = [h.sink(f"m_out__{i}") for i in range(self.p.outputs)]
        self.expected: list[tuple[int, int]] = []
        self.beats_in = 0
        h.dut.repeats.value = 1

    def queue_unit(self, beats: list[int], repeats: int) -> None:
        """Queue one replay unit, sent with ``repeats`` on the R input; record the expected copies."""
        n = len(beats)
        for i, b in enumerate(beats):
            self.tile.put(b, last=i == n - 1, side={"repeats": repeats})
        stored = beats[: self.p.depth]
        self.expected += [(b, int(i == n - 1)) for i, b in enumerate(beats)]
        for _ in range(max(repeats, 1) - 1):
            self.expected += [(b, int(i == len(stored) - 1)) for i, b in enumerate(stored)]
        self.beats_in += n

    async def send(self, p_valid: float = 1.0, p_ready: float = 1.0) -> None:
        await self.h.run(
            [self.tile], p_valid=p_valid, p_ready=p_ready, until=lambda: self.tile.idle
        )

    async def finish(self, name: str) -> None:
        await self.h.drain([len(self.expected)] * len(self.outs))
        for i, out in enumerate(self.outs):
            check_beats(f"{name} m_out[{i}]", out.beats, self.expected, hex)


def random_unit(rng: random.Random, p: BroadcasterParams) -> tuple[list[int], int]:
    r = rng.random()
    if r < 0.1:
        length = 1
    elif r < 0.15:
        length = p.depth
    else:
        length = rng.randint(1, min(p.depth, 64))
    repeats = rng.choice((0, 1, 1, 2, 2, 3))
    return [rng.getrandbits(p.width) for _ in range(length)], repeats


@cocotb.test()
async def random_traffic(dut: object) -> None:
    """Random units and repeat counts under random valid/ready backpressure on every port."""
    cfg = BenchConfig.from_env()
    h = await Harness.start(dut, cfg.seed)
    b = Bench(cfg, h)
    rng = random.Random(cfg.seed)
    while b.beats_in < cfg.transactions:
        for _ in range(rng.randint(1, 4)):
            b.queue_unit(*random_unit(rng, b.p))
        await b.send(*phase(rng))
    await b.finish("random_traffic")
    assert int(dut.overflow.value) == 0, "overflow set by units within the depth"
    cfg.record("random_traffic", transactions=b.beats_in, cycles=h.cycle)


@cocotb.test()
async def directed(dut: object) -> None:
    """One-beat units, full-depth units, R = 0, 1 and large, back-to-back units, then a unit
    longer than the depth (overflow: later copies hold the first ``depth`` beats)."""
    cfg = BenchConfig.from_env()
    h = await Harness.start(dut, cfg.seed)
    b = Bench(cfg, h)
    p = b.p
    rng = random.Random(cfg.seed + 3)
    top = (1 << p.width) - 1
    for repeats in (0, 1, 2, 7):
        b.queue_unit([top], repeats)
        b.queue_unit([0], repeats)
        b.queue_unit([rng.getrandbits(p.width) for _ in range(p.depth)], repeats)
        b.queue_unit([rng.getrandbits(p.width) for _ in range(3)], repeats)
    await b.send()
    r_max = min((1 << p.repeat_width) - 1, 40)
    b.queue_unit([rng.getrandbits(p.width) for _ in range(2)], r_max)
    await b.send(0.7, 0.7)
    await b.finish("directed")
    assert int(dut.overflow.value) == 0, "overflow set by units within the depth"
    b.queue_unit([rng.getrandbits(p.width) for _ in range(p.depth + 3)], 2)
    b.queue_unit([rng.getrandbits(p.width) for _ in range(2)], 2)
    await b.send(0.8, 0.8)
    await b.finish("directed (overflow)")
    assert int(dut.overflow.value) == 1, "overflow not set by a unit longer than the depth"
    cfg.record("directed", transactions=b.beats_in, cycles=h.cycle)


@cocotb.test()
async def throughput(dut: object) -> None:
    """No backpressure: every output moves one beat per cycle across copies and units."""
    cfg = BenchConfig.from_env()
    h = await Harness.start(dut, cfg.seed)
    b = Bench(cfg, h)
    rng = random.Random(cfg.seed + 5)
    repeats = 3
    for _ in range(10):
        b.queue_unit([rng.getrandbits(b.p.width) for _ in range(min(b.p.depth, 50))], repeats)
    await b.send()
    await b.finish("throughput")
    rates = [steady_rate(out.times) for out in b.outs]
    assert all(r == 1.0 for r in rates), f"output beats/cycle {rates}, expected 1 on every output"
    rate_in = b.beats_in / (b.tile.times[-1] - b.tile.times[0] + 1)
    cfg.record(
        "throughput",
        transactions=b.beats_in,
        cycles=h.cycle,
        beats_per_cycle=min(rates),
        input_beats_per_cycle=rate_in,
    )
