"""cocotb bench of the requantiser; golden values from ``numerics.requantize``."""

from __future__ import annotations

import random
from dataclasses import dataclass

import cocotb
import numpy as np

from codesign.rtl.bench.common import (
    BenchConfig,
    Harness,
    check_beats,
    phase,
    steady_rate,
)
from codesign.rtl.packing import pack, pack_many, unpack
from codesign.rtl.requantizer import RequantizerParams
from codesign.sim import numerics

I32_MIN, I32_MAX = -(2**31), 2**31 - 1


@dataclass
class Layer:
    """One parameter packet: per-word lanes of (multiplier, shift) and per-word tensor fields."""

    mult: np.ndarray  # (W, lanes)
    shift: np.ndarray  # (W, lanes)
    zero_point: list[int]  # per word; the last word's value is used
    relu: list[int]
    rounding: list[int]


class Bench:
    def __init__(self, cfg: BenchConfig, h: Harness) -> None:
        self.cfg = cfg
        self.p: RequantizerParams = cfg.spec.config
        self.h = h
        self.params = h.source("s_params")
        self.acc = h.source("s_acc")
        self.out = h.sink("m_out")
        self.expected: list[tuple[int, int]] = []
        self.word_layout = self.p.word_layout()
        self.acc_layout = self.p.acc_layout()
        self.out_layout = self.p.out_layout()
        self.acc_beats = 0

    def zp_range(self) -> tuple[int, int]:
        b = self.p.out_bits
        return -(2**b), 2**b - 1

    async def load(self, layer: Layer, p_valid: float = 1.0, p_ready: float = 1.0) -> None:
        w = layer.mult.shape[0]
        for i in range(w):
            word = {
                "multiplier": [int(v) for v in layer.mult[i]],
                "shift": [int(v) for v in layer.shift[i]],
                "zero_point": layer.zero_point[i],
                "relu": layer.relu[i],
                "rounding": layer.rounding[i],
            }
            self.params.put(pack(self.word_layout, word), last=i == w - 1)
        await self.h.run(
            [self.params], p_valid=p_valid, p_ready=p_ready, until=lambda: self.params.idle
        )
        self.layer = layer

    def golden(self, tensor: np.ndarray) -> np.ndarray:
        """Expected output lanes for one tensor (beats, lanes) under the loaded layer."""
        layer = self.layer
        words = min(layer.mult.shape[0], self.p.depth)
        mult = layer.mult[:words].reshape(-1)
        shift = layer.shift[:words].reshape(-1)
        flat = tensor.reshape(-1)
        ch = np.arange(flat.size) % mult.size
        return numerics.requantize(
            flat,
            mult[ch],
            shift[ch],
            layer.zero_point[-1],
            self.p.out_dtype,
            rounding=numerics.ROUNDING_MODES[layer.rounding[-1]],
            relu=bool(layer.relu[-1]),
        ).reshape(tensor.shape)

    async def send(
        self, tensors: list[np.ndarray], p_valid: float = 1.0, p_ready: float = 1.0
    ) -> None:
        for t in tensors:
            exp = self.golden(t)
            n = t.shape[0]
            lasts = [i == n - 1 for i in range(n)]
            for bits, last in zip(pack_many(self.acc_layout, t, n), lasts, strict=True):
                self.acc.put(bits, last=last)
            out = pack_many(self.out_layout, exp, n)
            self.expected += [(bits, int(last)) for bits, last in zip(out, lasts, strict=True)]
            self.acc_beats += n
        await self.h.run([self.acc], p_valid=p_valid, p_ready=p_ready, until=lambda: self.acc.idle)

    async def finish(self, name: str) -> None:
        await self.h.drain([len(self.expected)])
        check_beats(name, self.out.beats, self.expected, lambda b: unpack(self.out_layout, b))


# ---- random stimulus ----------------------------------------------------------------------


def random_layer(rng: np.random.Generator, p: RequantizerParams, bench: Bench) -> Layer:
    lanes = p.lanes
    choice = rng.random()
    if choice < 0.15:
        w = 1
    elif choice < 0.25:
        w = p.depth
    else:
        w = int(rng.integers(1, min(p.depth, 16) + 1))
    shape = (w, lanes)
    regime = rng.integers(0, 4, size=shape)
    # 0: realistic multiplier from a float scale; 1: anything; 2: small shift; 3: tie-friendly
    real = np.exp(rng.uniform(np.log(1e-6), np.log(4.0), size=shape))
    qm, qs = numerics.quantize_multiplier(real.reshape(-1))
    mult = np.where(
        regime == 0,
        qm.reshape(shape),
        np.where(
            regime == 3,
            np.int64(1) << rng.integers(0, 31, size=shape),
            rng.integers(I32_MIN, I32_MAX + 1, size=shape, dtype=np.int64),
        ),
    )
    shift = np.where(
        regime == 0,
        qs.reshape(shape),
        np.where(regime == 2, rng.integers(0, 9, size=shape), rng.integers(0, 63, size=shape)),
    )
    zlo, zhi = bench.zp_range()
    olo, ohi = numerics.int_range(p.out_dtype)

    def zp() -> int:
        r = rng.random()
        if r < 0.1:
            return int(rng.choice([zlo, zhi, olo, ohi, 0]))
        return int(rng.integers(max(zlo, olo), min(zhi, ohi) + 1))

    return Layer(
        mult=mult.astype(np.int64),
        shift=shift.astype(np.int64),
        zero_point=[zp() for _ in range(w)],
        relu=[int(rng.integers(0, 2)) for _ in range(w)],
        rounding=[int(rng.integers(0, 8)) for _ in range(w)],
    )


def random_acc(rng: np.random.Generator, beats: int, lanes: int, width: int) -> np.ndarray:
    lo, hi = -(2 ** (width - 1)), 2 ** (width - 1) - 1
    kind = rng.integers(0, 5, size=(beats, lanes))
    mags = rng.integers(0, width, size=(beats, lanes))
    scaled = rng.integers(-(2**62), 2**62, size=(beats, lanes)) >> (63 - mags - 1).clip(0, 62)
    full = rng.integers(lo, hi + 1, size=(beats, lanes), dtype=np.int64)
    edge = rng.choice(np.array([lo, hi, 0, 1, -1, lo + 1, hi - 1]), size=(beats, lanes))
    out = np.where(kind == 0, full, np.where(kind == 1, edge, scaled))
    return np.clip(out, lo, hi).astype(np.int64)


@cocotb.test()
async def random_traffic(dut: object) -> None:
    """Random layers and tensors under random valid/ready backpressure."""
    cfg = BenchConfig.from_env()
    h = await Harness.start(dut, cfg.seed)
    b = Bench(cfg, h)
    p = b.p
    rng = np.random.default_rng(cfg.seed)
    prng = random.Random(cfg.seed + 1)
    while b.acc_beats < cfg.transactions:
        await b.load(random_layer(rng, p, b), *phase(prng))
        tensors = []
        for _ in range(int(rng.integers(1, 4))):
            beats = int(rng.integers(1, 400))
            tensors.append(random_acc(rng, beats, p.lanes, p.acc_width))
        await b.send(tensors, *phase(prng))
    await b.finish("random_traffic")
    cfg.record("random_traffic", transactions=b.acc_beats, cycles=h.cycle)


# ---- directed cases -----------------------------------------------------------------------


def layer_of(
    p: RequantizerParams, mult: list[int], shift: list[int], zp: int, relu: int, rnd: int
) -> Layer:
    """A layer whose channels cycle through the given (multiplier, shift) lists."""
    n = max(len(mult), len(shift))
    words = min(-(-n // p.lanes), p.depth)
    size = words * p.lanes
    m = np.resize(np.array(mult, dtype=np.int64), size).reshape(words, p.lanes)
    s = np.resize(np.array(shift, dtype=np.int64), size).reshape(words, p.lanes)
    return Layer(m, s, [zp] * words, [relu] * words, [rnd] * words)


def one_channel(p: RequantizerParams, mult: int, shift: int, zp: int, relu: int, rnd: int) -> Layer:
    return Layer(
        np.full((1, p.lanes), mult, dtype=np.int64),
        np.full((1, p.lanes), shift, dtype=np.int64),
        [zp],
        [relu],
        [rnd],
    )


def as_beats(values: list[int], lanes: int) -> np.ndarray:
    v = np.array(values, dtype=np.int64)
    v = np.resize(v, -(-v.size // lanes) * lanes) if v.size % lanes else v
    return v.reshape(-1, lanes)


@cocotb.test()
async def directed(dut: object) -> None:
    """Rounding ties in every mode, saturation at both ends, zero-point extremes, shift 0 and 62,
    per-tensor and full-depth layers, parameter words beyond the depth, channel restart on last."""
    cfg = BenchConfig.from_env()
    h = await Harness.start(dut, cfg.seed)
    b = Bench(cfg, h)
    p = b.p
    lanes = p.lanes
    aw = p.acc_width
    amin, amax = -(2 ** (aw - 1)), 2 ** (aw - 1) - 1
    olo, ohi = numerics.int_range(p.out_dtype)
    zlo, zhi = b.zp_range()

    # Ties (and their neighbours) for every mode, small shifts with multiplier 1 and large shifts
    # with a power-of-two multiplier, both signs.
    for rnd in range(len(numerics.ROUNDING_MODES)):
        for s in (1, 2, 3, 7, min(aw - 1, 16)):
            vals = []
            for q in range(-3, 3):
                for off in (-1, 0, 1):
                    v = q * 2**s + 2 ** (s - 1) + off
                    if amin <= v <= amax:
                        vals.append(v)
            await b.load(one_channel(p, 1, s, 0, 0, rnd))
            await b.send([as_beats(vals, lanes)])
        for s in (31, 40, 62):
            mult = 2 ** min(30, s - 1)
            k = s - 1 - min(30, s - 1)  # acc = odd * 2**k puts the product exactly on a tie
            vals = [v * 2**k for v in (-5, -3, -1, 1, 3, 5) if amin <= v * 2**k <= amax]
            vals += [amin, amax, 0]
            await b.load(one_channel(p, mult, s, 0, 0, rnd))
            await b.send([as_beats(vals, lanes)])

    # Saturation at both ends, with the zero point at its extremes, ReLU off and on.
    extremes = [amin, amax, amin + 1, amax - 1, 0, 1, -1]
    for zp in (0, olo, ohi, zlo, zhi):
        for relu in (0, 1):
            for mult, s in ((I32_MAX, 0), (I32_MIN, 0), (1, 0), (2**30, 31), (-(2**30), 62)):
                await b.load(one_channel(p, mult, s, zp, relu, 6))
                await b.send([as_beats(extremes, lanes)])

    # A full-depth per-channel layer, then a packet longer than the depth (extra words dropped,
    # the tensor fields of its last word used).
    rng = np.random.default_rng(cfg.seed)
    words = p.depth
    full = Layer(
        rng.integers(I32_MIN, I32_MAX + 1, size=(words, lanes), dtype=np.int64),
        rng.integers(0, 63, size=(words, lanes)),
        [3] * words,
        [0] * words,
        [6] * words,
    )
    await b.load(full)
    await b.send([random_acc(rng, 2 * words + 3, lanes, aw)])
    over = Layer(
        np.concatenate([full.mult, full.mult[:1] + 1]),
        np.concatenate([full.shift, full.shift[:1]]),
        [0] * words + [-5],
        [0] * words + [1],
        [6] * words + [2],
    )
    await b.load(over)
    await b.send([random_acc(rng, words + 2, lanes, aw)])

    # last restarts the channel count mid-row.
    if p.depth >= 3:
        three = layer_of(p, list(range(1, 3 * lanes + 1)), [4] * (3 * lanes), 1, 0, 6)
        await b.load(three)
        await b.send([random_acc(rng, n, lanes, 20) for n in (1, 2, 4, 5)])
    await b.finish("directed")
    cfg.record("directed", transactions=b.acc_beats, cycles=h.cycle)


@cocotb.test()
async def throughput(dut: object) -> None:
    """No backpressure: after the parameter load, one beat per cycle in and out."""
    cfg = BenchConfig.from_env()
    h = await Harness.start(dut, cfg.seed)
    b = Bench(cfg, h)
    rng = np.random.default_rng(cfg.seed + 7)
    await b.load(random_layer(rng, b.p, b))
    beats = 2000
    await b.send([random_acc(rng, beats, b.p.lanes, b.p.acc_width)])
    await b.finish("throughput")
    rate_in = steady_rate(b.acc.times)
    rate_out = steady_rate(b.out.times[-beats:])
    assert rate_in == 1.0, f"input accepted {rate_in:.4f} beats/cycle, expected 1"
    assert rate_out == 1.0, f"output produced {rate_out:.4f} beats/cycle, expected 1"
    cfg.record("throughput", transactions=beats, cycles=h.cycle, beats_per_cycle=rate_out)
