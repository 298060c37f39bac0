"""The MatMulNBits kind: a block-quantised 4-bit weight GEMM on the temporal AIE-ML block.

KernelGraph op :class:`~codesign.ir.nbits.GemmNBits` (made by
:mod:`codesign.frontend.lower_nbits` for MatMulNBits nodes with accuracy_level 4), plan layer
:class:`~codesign.ir.nbits.NBitsGemmLayer`.

Planner: schedules the layer in both modes on the block and lets the cost model
(:mod:`codesign.cost.nbits`) choose:

- ``int8x4``: onnxruntime's accuracy_level-4 arithmetic (A quantised to int8 per row and K block,
  exact int8 x int4 block products, per-block float32 epilogue; :mod:`codesign.sim.numerics.nbits`)
  with the int4 weight stream in ``tempus.b4/1``;
- ``bf16``: the weight dequantised exactly to float32 and rounded to bf16, the bf16 GEMM of
  :mod:`codesign.kinds.gemm` (closer to the float weight than the int8 codes of A: its outputs
  differ from onnxruntime's accuracy_level-4 ones by that int8 quantisation of A, at most a few
  0.1 % of the output range).

The layer records the mode, the reason and both modelled times; the report shows them.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from codesign import progress
from codesign.cost import TemporalConfig
from codesign.cost.nbits import estimate_nbits_gemm
from codesign.errors import FitError
from codesign.ir.graph import numpy_dtype
from codesign.ir.layouts import B4_LAYOUT, B_LAYOUT, pack_b, pack_b4, unpack_b4
from codesign.ir.nbits import GemmNBits, NBitsGemmLayer
from codesign.ir.plan import GemmLayer, Plan
from codesign.kinds import gemm as gemm_kind
from codesign.kinds.registry import Cost, Emitted, LayerMemory, OpKind, no_output_scale, register
from codesign.schedulers import tempus
from codesign.sim import numerics

if TYPE_CHECKING:
    from codesign.report.plan_report import CostContext
    from codesign.schedulers.planner import PlanContext
    from codesign.sim.functional import Simulator
    from codesign.sim.plan_check import PlanChecker

#: the modes the planner chooses among, by modelled time (ties to the first)
MODES: tuple[str, ...] = ("int8x4", "bf16")

# --- planner ------------------------------------------------------------------------------------


def _config(s) -> TemporalConfig:
    return TemporalConfig(
        s.block.chains,
        s.block.cascade,
        s.tile.m,
        s.tile.k,
        s.tile.n,
        dataflow=s.dataflow,
        reuse_plan=s.reuse_plan,
    )


def _schedule(ctx: PlanContext, op: GemmNBits, M: int, K: int, N: int, dtype: str):
    progress.stage(f"solving the tiling of {op.name!r} (MatMulNBits {M}x{K}x{N} {dtype})")
    try:
        s = tempus.schedule_gemm(
            ctx.board, M, K, N, dtype, ctx.block, time_limit_s=ctx.solver_time_limit
        )
        return tempus.choose_dataflow(ctx.board, s)
    except FitError as e:
        raise FitError(f"node {op.name!r} (MatMulNBits {M}x{K}x{N} {dtype}): {e}") from None


def plan(ctx: PlanContext, op: GemmNBits) -> NBitsGemmLayer:
    """Schedule the layer in the int8 x int4 and the bf16 mode, keep the one the cost model
    finds faster, and pack its weight (int4 stream, or bf16 stream) and block parameters."""
    kg = ctx.kg
    w = kg.const(op.weight)  # int8 [K, N], values -8..7
    K, N = w.shape
    a_shape = kg.types[op.inputs[0]].shape
    M = int(np.prod(a_shape[:-1], dtype=np.int64)) if len(a_shape) > 1 else 1
    bs = op.block_size
    scales = kg.const(op.scales).astype(np.float32)  # [k_blocks, N]
    zero = kg.const(op.zero).astype(np.int8) if op.zero is not None else None
    times: dict[str, float] = {}
    scheds, ests = {}, {}
    for mode in MODES:
        s = _schedule(ctx, op, M, K, N, "int8x4" if mode == "int8x4" else "bf16")
        est = estimate_nbits_gemm(ctx.board, op.name, M, K, N, bs, _config(s), mode)
        scheds[mode], times[mode], ests[mode] = s, est.layer.time_s, est
    mode = min(MODES, key=lambda m: (times[m], MODES.index(m)))
    other = next((m for m in MODES if m != mode), None)
    why = f"{_summary(mode, ests[mode])}"
    if other is not None:
        why += f" against {_summary(other, ests[other])}"
    s = scheds[mode]
    if mode == "int8x4":
        weight = ctx.packer.pack(f"{op.name}.B4", pack_b4(w, s), "uint8", B4_LAYOUT, (K, N))
    else:
        wf = _dequantized(w, scales, zero, bs)
        weight = ctx.packer.pack(
            f"{op.name}.B", pack_b(numerics.to_bf16(wf), s), "bf16", B_LAYOUT, (K, N)
        )
    return NBitsGemmLayer(
        name=op.name,
        inputs=op.inputs,
        outputs=op.outputs,
        mode=mode,
        reason=why,
        alternative_s=times[other] if other is not None else 0.0,
        schedule=s,
        weight=weight,
        scales=ctx.packer.pack(f"{op.name}.scales", scales, "float32"),
        zero=None if zero is None else ctx.packer.pack(f"{op.name}.zero", zero, "int8"),
        block_size=bs,
    )


def _summary(mode: str, est) -> str:
    """One mode's modelled figures for the layer's ``reason``."""
    text = (
        f"{mode} {est.layer.time_s * 1e6:.3g} us ({est.layer.bound}-bound, "
        f"{est.weight_bytes:,} weight bytes"
    )
    if mode == "int8x4":
        text += f", block epilogue {est.epilogue_s * 1e6:.3g} us"
    return text + ")"


def _dequantized(w: np.ndarray, scales: np.ndarray, zero: np.ndarray | None, bs: int):
    """The float32 weight [K, N]: (w - zero) * scale per K block (w, zero already minus 8)."""
    K = w.shape[0]
    z = np.zeros_like(scales, dtype=np.int64) if zero is None else zero.astype(np.int64)
    zk = np.repeat(z, bs, axis=0)[:K]
    sk = np.repeat(scales, bs, axis=0)[:K]
    return ((w.astype(np.int64) - zk).astype(np.float32) * sk).astype(np.float32)


# --- executor -----------------------------------------------------------------------------------


def execute(
    sim: Simulator, layer: NBitsGemmLayer, args: list[np.ndarray | None]
) -> tuple[np.ndarray]:
    """int8x4: quantise A per row and K block (as the PL quantiser does), then walk the block as
    it runs: for each K pass and cascade core, the core's k rows of A codes times its int4 B tile
    from the ``tempus.b4/1`` stream, split at K-block boundaries into one exact integer
    accumulator per block (all M and N tiles at once: independent graph iterations); then the
    per-block epilogue (:func:`codesign.sim.numerics.block_epilogue`). bf16: the GEMM kind's
    bf16 executor on the bf16 weight stream."""
    s = layer.schedule
    a = args[0]
    out_shape = a.shape[:-1] + (s.N,)
    if layer.mode == "bf16":
        return gemm_kind.execute(sim, _as_gemm(layer), args)
    bs = layer.block_size
    M, K, N = s.M, s.K, s.N
    qa, sa = numerics.quantize_a_blocks(a.reshape(M, K), bs)
    kb = sa.shape[1]
    B = _tiles(sim, layer)  # [k_pass, core, k, padded_N] int4 values as float32
    L, k = s.block.cascade, s.tile.k
    A = np.zeros((M, s.padded_K), dtype=np.float32)
    A[:, :K] = qa
    acc = np.zeros((kb, M, s.padded_N), dtype=np.int64)
    for p in range(s.k_passes):
        for core in range(L):
            r0 = (p * L + core) * k
            for b in range(r0 // bs, min(kb, -(-(r0 + k) // bs))):
                lo, hi = max(r0, b * bs), min(r0 + k, (b + 1) * bs, K)
                if lo >= hi:
                    continue
                # |codes| <= 127, |w| <= 8, at most k rows: exact in float32 below 2**24
                part = A[:, lo:hi] @ B[p, core, lo - r0 : hi - r0]
                acc[b] += part.astype(np.int64)
    rowsum = numerics.block_rowsums(qa, bs)
    zero = sim.data(layer.zero).astype(np.int64) if layer.zero is not None else None
    y = numerics.block_epilogue(acc[:, :, :N], rowsum, zero, sa, sim.data(layer.scales))
    return (y.reshape(out_shape),)


def _tiles(sim: Simulator, layer: NBitsGemmLayer) -> np.ndarray:
    """The int4 stream regrouped per (K pass, core) as [k, padded_N] float32 tiles (cached)."""
    key = f"{layer.weight.sha256}#{layer.name}#nbits"
    if key not in sim.cache:
        s = layer.schedule
        B = unpack_b4(sim.data(layer.weight), s)  # [n_tile, k_pass, chain, core, k, n]
        Bc = B.transpose(1, 3, 4, 0, 2, 5).astype(np.float32)
        sim.cache[key] = np.ascontiguousarray(
            Bc.reshape(s.k_passes, s.block.cascade, s.tile.k, s.padded_N)
        )
    return sim.cache[key]


def _as_gemm(layer: NBitsGemmLayer) -> GemmLayer:
    """The bf16 mode's layer as the GEMM kind runs it (no bias, no ReLU)."""
    return GemmLayer(
        name=layer.name,
        inputs=layer.inputs,
        outputs=layer.outputs,
        dtype="bf16",
        schedule=layer.schedule,
        weight=layer.weight,
    )


# --- plan checker -------------------------------------------------------------------------------


def check(ck: PlanChecker, g: NBitsGemmLayer) -> None:
    """Mode, schedule, weight stream, scales and zero points must agree with the tensors."""
    ck.count(g, 1, 1)
    s = g.schedule
    if s is None or g.weight is None or g.scales is None:
        ck.fail("a MatMulNBits layer needs a schedule, a weight and scales")
    if g.mode not in ("int8x4", "bf16"):
        ck.fail(f"mode must be int8x4 or bf16, not {g.mode!r}")
    want_dtype = "int8x4" if g.mode == "int8x4" else "bf16"
    if s.dtype != want_dtype:
        ck.fail(f"a {g.mode} layer's schedule must be {want_dtype}, not {s.dtype}")
    if ck.dtypes[g.inputs[0]] != "float32" or ck.dtypes[g.outputs[0]] != "float32":
        ck.fail("MatMulNBits takes and gives float32")
    a, out = ck.shapes[g.inputs[0]], ck.shapes[g.outputs[0]]
    M, K, N = math.prod(a[:-1]), a[-1] if a else 0, out[-1] if out else 0
    if (s.M, s.K, s.N) != (M, K, N) or math.prod(out) != M * N:
        ck.fail(f"schedule {s.M}x{s.K}x{s.N} must match its tensors ({M}x{K}x{N})")
    if not 16 <= g.block_size <= 1 << 16 or g.block_size & (g.block_size - 1):
        ck.fail(f"block_size must be a power of two from 16, not {g.block_size}")
    kb = math.ceil(K / g.block_size)
    ck.datafile(g.weight, "weight")
    if tuple(g.weight.shape) != (K, N):
        ck.fail(f"weight must be [{K}, {N}], not {list(g.weight.shape)}")
    if g.mode == "int8x4":
        if g.weight.layout != B4_LAYOUT or g.weight.dtype != "uint8":
            ck.fail(f"an int8x4 weight must be uint8 bytes in layout {B4_LAYOUT}")
        ck.file_elements(g.weight, (s.padded_K * s.padded_N + 1) // 2, "weight")
    else:
        if g.weight.layout != B_LAYOUT or g.weight.dtype != "bf16":
            ck.fail(f"a bf16 weight must be bf16 in layout {B_LAYOUT}")
        ck.file_elements(g.weight, s.padded_K * s.padded_N, "weight")
    ck.datafile(g.scales, "scales")
    if tuple(g.scales.shape) != (kb, N) or g.scales.dtype != "float32":
        ck.fail(f"scales must be float32 [{kb}, {N}]")
    if g.zero is not None:
        ck.datafile(g.zero, "zero points")
        if tuple(g.zero.shape) != (kb, N) or g.zero.dtype != "int8":
            ck.fail(f"zero points must be int8 [{kb}, {N}]")


# --- cost ---------------------------------------------------------------------------------------


def cost(ctx: CostContext, stage: list[NBitsGemmLayer]) -> Cost:
    """The layer in its mode (int8x4: MACs, int4 weight stream, per-block epilogue, activation
    quantiser; bf16: the bf16 GEMM), with the mode, the reason and the other mode's time."""
    (layer,) = stage
    s = layer.schedule
    est = estimate_nbits_gemm(
        ctx.board,
        layer.name,
        s.M,
        s.K,
        s.N,
        layer.block_size,
        _config(s),
        layer.mode,
        pl=ctx.pl,
    )
    extra = {
        "mode": layer.mode,
        "mode_reason": layer.reason,
        "alternative_time_s": layer.alternative_s,
        "block_size": layer.block_size,
        "weight_bytes": est.weight_bytes,
        "block_epilogue_s": est.epilogue_s,
        "a_quantizer_s": est.quantizer_s,
        "k_passes": s.k_passes,
        "cycles": est.gemm.cycles,
        "core_memory_bytes": s.core_memory_bytes,
        "solver": s.solver.status,
    }
    return Cost(est.layer, extra, est.gemm.workload)


# --- memory -------------------------------------------------------------------------------------


def memory(plan: Plan, layer: NBitsGemmLayer) -> LayerMemory:
    """Files as decoded, the per-core tiles cached as float32, and the transient set: codes and
    scales of A, the padded A, one int64 accumulator per K block, the epilogue's temporaries."""
    s = layer.schedule
    files = [f for f in (layer.weight, layer.scales, layer.zero) if f is not None]
    decoded = tuple(
        math.prod(f.shape) * (4 if f.dtype == "bf16" else numpy_dtype(f.dtype).itemsize)
        for f in files
    )
    kb = math.ceil(s.K / layer.block_size)
    transient = s.M * s.padded_K * 4 * 3 + kb * s.M * s.padded_N * 8 + 6 * s.M * s.padded_N * 8
    return LayerMemory(files=decoded, cached=s.padded_K * s.padded_N * 4, transient=transient)


# --- emitters -----------------------------------------------------------------------------------


def emit(plan: Plan, layers: list[NBitsGemmLayer]) -> Emitted:
    """No generated files yet: the AIE int8 x int4 kernel with its block epilogue and the PL
    activation quantiser are modelled and simulated, not emitted (stated in the report)."""
    return Emitted()


KIND = register(
    OpKind(
        name="gemm_nbits",
        op=GemmNBits,
        layer=NBitsGemmLayer,
        plan=plan,
        execute=execute,
        check=check,
        cost=cost,
        memory=memory,
        emit=emit,
        output_scale=no_output_scale,
    )
)
