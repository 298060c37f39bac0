"""cocotb bench of the N:M sparse expander; golden values from ``numerics.nm_expand`` (and the
canonical packets from ``numerics.nm_compress`` / ``nm_prune``)."""

from __future__ import annotations

import random

import cocotb
import numpy as np

from codesign.rtl.bench.common import BenchConfig, Harness, check_beats, phase, steady_rate
from codesign.rtl.packing import pack_many, unpack
from codesign.rtl.sparse_expander import SparseExpanderParams
from codesign.sim import numerics


class Bench:
    def __init__(self, cfg: BenchConfig, h: Harness) -> None:
        self.cfg = cfg
        self.p: SparseExpanderParams = cfg.spec.config
        self.h = h
        self.packed = h.source("s_packed")
        self.out = h.sink("m_dense")
        self.expected: list[tuple[int, int]] = []
        self.beats_in = 0
        self.in_layout = self.p.packed_layout()
        self.out_layout = self.p.dense_layout()
        self.lo, self.hi = numerics.int_range(self.p.dtype)
        self.np_dtype = numerics.INT_DTYPES[self.p.dtype]

    def queue(self, values: np.ndarray, indices: np.ndarray, lasts: list[bool]) -> None:
        """Queue beats of ``values``/``indices`` (beats, groups * n)."""
        p = self.p
        dense = numerics.nm_expand(values, indices, p.n, p.m)
        beats = values.shape[0]
        packed = pack_many(self.in_layout, {"values": values, "index": indices}, beats)
        for bits, last in zip(packed, lasts, strict=True):
            self.packed.put(bits, last=last)
        out = pack_many(self.out_layout, dense, beats)
        self.expected += [(bits, int(last)) for bits, last in zip(out, lasts, strict=True)]
        self.beats_in += values.shape[0]

    def queue_dense(self, dense: np.ndarray, lasts: list[bool]) -> None:
        """Compress N:M-valid dense rows (beats, groups * m) with nm_compress and queue them."""
        values, indices = numerics.nm_compress(dense, self.p.n, self.p.m)
        self.queue(values, indices, lasts)

    def random_dense(self, rng: np.random.Generator, beats: int) -> np.ndarray:
        p = self.p
        w = rng.integers(self.lo, self.hi + 1, size=(beats, p.groups * p.m)).astype(self.np_dtype)
        w = numerics.nm_prune(w, p.n, p.m)
        drop = rng.random(w.shape) < rng.choice([0.0, 0.3, 0.9])  # sparser than N:M sometimes
        return np.where(drop, np.zeros((), self.np_dtype), w)

    async def send(self, p_valid: float = 1.0, p_ready: float = 1.0) -> None:
        await self.h.run(
            [self.packed], p_valid=p_valid, p_ready=p_ready, until=lambda: self.packed.idle
        )

    async def finish(self, name: str) -> None:
        await self.h.drain([len(self.expected)])
        check_beats(name, self.out.beats, self.expected, lambda b: unpack(self.out_layout, b))


def lasts_of(rng: random.Random, beats: int) -> list[bool]:
    return [rng.random() < 0.1 or i == beats - 1 for i in range(beats)]


@cocotb.test()
async def random_traffic(dut: object) -> None:
    """Canonical packets of random N:M weights, and arbitrary packets (any indices, repeats),
    under random backpressure."""
    cfg = BenchConfig.from_env()
    h = await Harness.start(dut, cfg.seed)
    b = Bench(cfg, h)
    p = b.p
    rng = np.random.default_rng(cfg.seed)
    prng = random.Random(cfg.seed + 1)
    slots = p.groups * p.n
    while b.beats_in < cfg.transactions:
        beats = prng.randint(1, 200)
        if prng.random() < 0.7:
            b.queue_dense(b.random_dense(rng, beats), lasts_of(prng, beats))
        else:
            values = rng.integers(b.lo, b.hi + 1, size=(beats, slots)).astype(b.np_dtype)
            indices = rng.integers(0, p.m, size=(beats, slots)).astype(np.uint8)
            b.queue(values, indices, lasts_of(prng, beats))
        await b.send(*phase(prng))
    await b.finish("random_traffic")
    cfg.record("random_traffic", transactions=b.beats_in, cycles=h.cycle)


@cocotb.test()
async def directed(dut: object) -> None:
    """All-zero weights, all slots kept (every group exactly n non-zeros, extreme values), every
    slot naming one position (the last slot wins), every single position."""
    cfg = BenchConfig.from_env()
    h = await Harness.start(dut, cfg.seed)
    b = Bench(cfg, h)
    p = b.p
    lanes = p.groups * p.m
    slots = p.groups * p.n
    zero = np.zeros((1, lanes), b.np_dtype)
    b.queue_dense(zero, [True])
    for fill in (b.lo, b.hi, -1 if b.lo < 0 else 1):
        full = np.zeros((p.groups, p.m), b.np_dtype)
        for g in range(p.groups):  # n kept per group, at rotating positions
            for j in range(p.n):
                full[g, (g + j * (p.m // p.n)) % p.m] = fill
        b.queue_dense(full.reshape(1, lanes), [False])
    for pos in range(p.m):
        values = np.arange(1, slots + 1).astype(b.np_dtype).reshape(1, slots)
        b.queue(values, np.full((1, slots), pos, np.uint8), [pos == p.m - 1])
    for pos in range(p.m):  # one non-zero per group at position pos
        one = np.zeros((p.groups, p.m), b.np_dtype)
        one[:, pos] = b.hi
        b.queue_dense(one.reshape(1, lanes), [True])
    await b.send()
    await b.send(0.5, 0.5)
    await b.finish("directed")
    cfg.record("directed", transactions=b.beats_in, cycles=h.cycle)


@cocotb.test()
async def throughput(dut: object) -> None:
    """No backpressure: one beat per cycle in and out."""
    cfg = BenchConfig.from_env()
    h = await Harness.start(dut, cfg.seed)
    b = Bench(cfg, h)
    rng = np.random.default_rng(cfg.seed + 9)
    beats = 2000
    b.queue_dense(b.random_dense(rng, beats), [i % 97 == 96 for i in range(beats)])
    await b.send()
    await b.finish("throughput")
    rate_in = steady_rate(b.packed.times)
    rate_out = steady_rate(b.out.times)
    assert rate_in == 1.0, f"packed beats accepted {rate_in:.4f}/cycle, expected 1"
    assert rate_out == 1.0, f"dense beats produced {rate_out:.4f}/cycle, expected 1"
    cfg.record("throughput", transactions=beats, cycles=h.cycle, beats_per_cycle=rate_out)
