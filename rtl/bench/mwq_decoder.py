"""cocotb bench of the MWQ plane decoder; golden values from ``numerics.mwq_reconstruct``."""

from __future__ import annotations

import random

import cocotb
import numpy as np

from codesign.rtl.bench.common import BenchConfig, Harness, check_beats, phase, steady_rate
from codesign.rtl.mwq_decoder import MWQDecoderParams
from codesign.rtl.packing import pack, pack_many, unpack
from codesign.sim import numerics


class Bench:
    def __init__(self, cfg: BenchConfig, h: Harness) -> None:
        self.cfg = cfg
        self.p: MWQDecoderParams = cfg.spec.config
        self.h = h
        self.group = h.source("s_group", last=False)
        self.codes = h.source("s_codes")
        self.out = h.sink("m_weights")
        self.expected: list[tuple[int, int]] = []
        self.beats_in = 0
        self.group_layout = self.p.group_layout()
        self.codes_layout = self.p.codes_layout()
        self.out_layout = self.p.out_layout()

    def queue_group(
        self, base: np.ndarray, planes: np.ndarray, zp: int, scales: list[int], k: int
    ) -> None:
        """Queue one group: ``base`` (beats, lanes), ``planes`` (P, beats, lanes) bits."""
        p = self.p
        beats = base.shape[0]
        self.group.put(pack(self.group_layout, {"planes": k, "zero_point": zp, "scales": scales}))
        want = numerics.mwq_reconstruct(
            base,
            planes,
            np.full((beats, 1), zp),
            np.array(scales, dtype=np.int64).reshape(-1, 1, 1).repeat(beats, axis=1),
            np.full((beats, 1), k),
            p.frac_bits,
            p.out_dtype,
            group_size=p.lanes,
            rounding=p.rounding,
        )
        words = np.array(
            [[bits_to_int(planes[j, b]) for j in range(p.max_planes)] for b in range(beats)],
            dtype=object,
        )
        lasts = [i == beats - 1 for i in range(beats)]
        codes = pack_many(self.codes_layout, {"base": base, "planes": words}, beats)
        for bits, last in zip(codes, lasts, strict=True):
            self.codes.put(bits, last=last)
        out = pack_many(self.out_layout, want, beats)
        self.expected += [(bits, int(last)) for bits, last in zip(out, lasts, strict=True)]
        self.beats_in += beats

    async def send(self, p_valid: float = 1.0, p_ready: float = 1.0) -> None:
        await self.h.run(
            [self.group, self.codes],
            p_valid=p_valid,
            p_ready=p_ready,
            until=lambda: self.codes.idle and self.group.idle,
        )

    async def finish(self, name: str) -> None:
        await self.h.drain([len(self.expected)])
        check_beats(name, self.out.beats, self.expected, lambda b: unpack(self.out_layout, b))


def bits_to_int(bits: np.ndarray) -> int:
    """Lane bits (lane 0 first) as one unsigned int."""
    return int.from_bytes(np.packbits(bits.astype(np.uint8), bitorder="little").tobytes(), "little")


def random_group(rng: np.random.Generator, p: MWQDecoderParams, beats: int) -> tuple:
    base = rng.integers(0, 2**p.base_bits, size=(beats, p.lanes))
    planes = rng.integers(0, 2, size=(p.max_planes, beats, p.lanes))
    zp = int(rng.integers(0, 2**p.base_bits))
    lim = 2 ** (p.scale_width - 1)
    if rng.random() < 0.3:  # anything the fields can hold
        scales = rng.integers(-lim, lim, size=p.max_planes + 1)
    else:  # D2MoE-like: a positive base scale, residual scales shrinking by about half a plane
        s0 = int(rng.integers(1, min(lim, 2 ** (p.frac_bits + 3))))
        scales = [s0] + [max(1, s0 >> (i + 1)) for i in range(p.max_planes)]
        scales = np.array(scales) * rng.choice([1, -1], size=p.max_planes + 1, p=[0.9, 0.1])
    k = int(rng.integers(0, p.max_planes + 1))
    return base, planes, zp, [int(s) for s in scales], k


@cocotb.test()
async def random_traffic(dut: object) -> None:
    """Random groups (random k, zero points, scales, beats per group) under backpressure."""
    cfg = BenchConfig.from_env()
    h = await Harness.start(dut, cfg.seed)
    b = Bench(cfg, h)
    rng = np.random.default_rng(cfg.seed)
    prng = random.Random(cfg.seed + 1)
    while b.beats_in < cfg.transactions:
        for _ in range(prng.randint(1, 20)):
            b.queue_group(*random_group(rng, b.p, prng.randint(1, 8)))
        await b.send(*phase(prng))
    await b.finish("random_traffic")
    cfg.record("random_traffic", transactions=b.beats_in, cycles=h.cycle)


@cocotb.test()
async def directed(dut: object) -> None:
    """k = 0 .. max_planes, zero-point extremes, saturation at both ends, rounding ties of the
    build's rounding mode (and their neighbours), one-beat groups."""
    cfg = BenchConfig.from_env()
    h = await Harness.start(dut, cfg.seed)
    b = Bench(cfg, h)
    p = b.p
    rng = np.random.default_rng(cfg.seed + 2)
    qmax = 2**p.base_bits - 1
    lim = 2 ** (p.scale_width - 1)
    lanes = p.lanes
    # Every k, with every base code and every zero-point extreme.
    for k in range(p.max_planes + 1):
        for zp in (0, qmax, qmax // 2):
            base = (np.arange(2 * lanes) % (qmax + 1)).reshape(2, lanes)
            planes = rng.integers(0, 2, size=(p.max_planes, 2, lanes))
            scales = [2**p.frac_bits] + [
                2 ** max(p.frac_bits - 1 - i, 0) for i in range(p.max_planes)
            ]
            b.queue_group(base, planes, zp, scales, k)
    # Saturation at both ends: largest scales, all planes +1 / all -1.
    for sign in (1, -1):
        for k in (0, p.max_planes):
            base = np.full((1, lanes), qmax if sign > 0 else 0)
            planes = np.full((p.max_planes, 1, lanes), 1 if sign > 0 else 0)
            b.queue_group(base, planes, 0 if sign > 0 else qmax, [lim - 1] * (p.max_planes + 1), k)
            b.queue_group(base, planes, 0 if sign > 0 else qmax, [-lim] * (p.max_planes + 1), k)
    # Rounding ties: acc = odd * 2**(F-1) (and +-1 around it), from the base term alone (k = 0).
    if p.frac_bits > 0:
        half = 2 ** (p.frac_bits - 1)
        for off in (-1, 0, 1):
            base = np.resize(np.arange(qmax + 1), (2, lanes))
            for zp in (0, qmax):
                b.queue_group(
                    base,
                    np.zeros((p.max_planes, 2, lanes), int),
                    zp,
                    [half + off] + [0] * p.max_planes,
                    0,
                )
        # ... and from plane terms: scale_0 = 0, one plane of +-half.
        planes = rng.integers(0, 2, size=(p.max_planes, 1, lanes))
        b.queue_group(
            np.zeros((1, lanes), int),
            planes,
            0,
            [0, half] + [2 * half] * (p.max_planes - 1),
            p.max_planes,
        )
    await b.send()
    await b.send(0.6, 0.6)
    await b.finish("directed")
    cfg.record("directed", transactions=b.beats_in, cycles=h.cycle)


@cocotb.test()
async def throughput(dut: object) -> None:
    """No backpressure: one beat per cycle, group words consumed without bubbles."""
    cfg = BenchConfig.from_env()
    h = await Harness.start(dut, cfg.seed)
    b = Bench(cfg, h)
    rng = np.random.default_rng(cfg.seed + 4)
    for i in range(300):
        b.queue_group(*random_group(rng, b.p, 1 + i % 4))
    await b.send()
    await b.finish("throughput")
    rate_in = steady_rate(b.codes.times)
    rate_out = steady_rate(b.out.times)
    assert rate_in == 1.0, f"codes accepted {rate_in:.4f} beats/cycle, expected 1"
    assert rate_out == 1.0, f"weights produced {rate_out:.4f} beats/cycle, expected 1"
    cfg.record("throughput", transactions=b.beats_in, cycles=h.cycle, beats_per_cycle=rate_out)
