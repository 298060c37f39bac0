"""The batched-matmul kind: activation x activation products (QK^T, attention x V), batched over
heads, with both operands streamed into the temporal AIE-ML block the weight GEMMs use.

KernelGraph op :class:`BatchedMatMul`, plan layer :class:`BatchedMatMulLayer` (defined here).

Operands. ``A' = transpose(a, a_perm)`` has shape ``[*batch, M, K]`` and
``B' = transpose(b, b_perm)`` shape ``[*batch, K, N]`` (an empty perm is the identity); the
product ``Y' = A' @ B'`` ``[*batch, M, N]`` is written as ``out = transpose(Y', out_perm)``. The
perms are the read and write orders of the PL data movers: a head split (Reshape then Transpose
``(0,2,1,3)``), K^T and a head merge are folded into them (:mod:`codesign.passes.attention`),
so no tensor is rewritten in DDR for them.

Arithmetic (:mod:`codesign.sim.numerics`):

- ``bf16``: both operands rounded to bf16, per core fp32 partials, cascade sum in chain order,
  float32 output (as the float weight GEMMs).
- ``int8`` (operands int8 or uint8) / ``int16`` (int16 operands): exact integer product into
  acc32 / acc64 with both per-tensor zero points handled exactly
  (:func:`codesign.sim.numerics.zero_point_correction`); the output is the int32 accumulator and
  the graph dequantises it with the product of the two scales (as the integer weight GEMMs).

Schedule. One :class:`~codesign.ir.plan.TemporalSchedule` for the per-head ``M x K x N`` GEMM,
chosen by the same tile search and cost model as the weight GEMMs
(:func:`codesign.schedulers.tempus.schedule_gemm`); the heads are walked one after the other on
the block in one graph run (:func:`codesign.cost.batched.estimate_batched_gemm` adds the terms of
streaming both operands).

Decode with a KV cache. The layer keeps the per-head M, K, N and the batch shape as separate
parameters, and nothing in it depends on the sequence being the same for Q and K/V. A decode step
of a model with H heads, head dim D, past length P (an input of the decode graph) and batch B is

- QK^T: ``batch = (B, H)``, ``M = 1`` (the new token), ``K = D``, ``N = P + 1`` (the keys, B
  read transposed);
- attention x V: ``batch = (B, H)``, ``M = 1``, ``K = P + 1``, ``N = D``;

so the only change from a prefill call is the numbers (``M = 1``; N or K the cache length). The
frontend needs static shapes, so P + 1 is the cache capacity here; a run-time length only bounds
the N-tile / K-pass loop of the schedule (a count, not a new layer).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from codesign import progress
from codesign.cost import GemmWorkload, TemporalConfig
from codesign.cost.batched import estimate_batched_gemm
from codesign.errors import FitError, UnsupportedError
from codesign.ir.graph import Op
from codesign.ir.plan import Layer, Plan, TemporalSchedule
from codesign.kinds.registry import Cost, Emitted, LayerMemory, OpKind, no_output_scale, register
from codesign.kinds.transpose import is_permutation
from codesign.schedulers import tempus
from codesign.sim import numerics

if TYPE_CHECKING:
    from codesign.aie.emit import EpilogueLayout
    from codesign.report.plan_report import CostContext
    from codesign.schedulers.planner import PlanContext
    from codesign.sim.functional import Simulator
    from codesign.sim.plan_check import PlanChecker

#: compute modes of the kind; "float32" marks an op the passes have not mapped yet
MODES = ("bf16", "int8", "int16")


@dataclass(frozen=True)
class BatchedMatMul(Op):
    """``out = transpose(transpose(a, a_perm) @ transpose(b, b_perm), out_perm)``, batched over
    the leading axes; inputs ``(a, b)``, both activations (or one a constant).

    ``dtype``: ``"float32"`` as lowered from ONNX (the passes map it), ``"bf16"``, ``"int8"`` or
    ``"int16"``. Integer modes read integer operands with static per-tensor zero points
    ``a_zero_point`` / ``b_zero_point`` and produce the int32 accumulator."""

    a_perm: tuple[int, ...] = ()
    b_perm: tuple[int, ...] = ()
    out_perm: tuple[int, ...] = ()
    dtype: str = "float32"
    a_zero_point: int = 0
    b_zero_point: int = 0
    kind: ClassVar[str] = "batched_matmul"


@dataclass(frozen=True)
class BatchedMatMulLayer(Layer):
    """A batched product on the temporal block (see the module docstring)."""

    dtype: str = "bf16"
    batch_shape: tuple[int, ...] = ()
    M: int = 1
    K: int = 1
    N: int = 1
    a_perm: tuple[int, ...] = ()
    b_perm: tuple[int, ...] = ()
    out_perm: tuple[int, ...] = ()
    a_zero_point: int = 0
    b_zero_point: int = 0
    schedule: TemporalSchedule | None = None
    kind: ClassVar[str] = "batched_matmul"
    unit: ClassVar[str] = "aie"

    @property
    def batch(self) -> int:
        return math.prod(self.batch_shape)


def identity(rank: int) -> tuple[int, ...]:
    return tuple(range(rank))


def perm_or_identity(perm: tuple[int, ...], rank: int) -> tuple[int, ...]:
    return tuple(perm) if perm else identity(rank)


def operand_shapes(
    a_shape: tuple[int, ...],
    b_shape: tuple[int, ...],
    a_perm: tuple[int, ...] = (),
    b_perm: tuple[int, ...] = (),
) -> tuple[tuple[int, ...], int, int, int]:
    """``(batch_shape, M, K, N)`` of the product; ValueError saying what does not agree."""
    for what, shape, perm in (("A", a_shape, a_perm), ("B", b_shape, b_perm)):
        if len(shape) < 2:
            raise ValueError(f"{what} must have at least 2 dimensions, not shape {list(shape)}")
        if perm and not is_permutation(tuple(perm), len(shape)):
            raise ValueError(f"{what} perm {list(perm)} must permute {len(shape)} axes")
    a = tuple(a_shape[p] for p in perm_or_identity(a_perm, len(a_shape)))
    b = tuple(b_shape[p] for p in perm_or_identity(b_perm, len(b_shape)))
    if a[:-2] != b[:-2]:
        raise ValueError(
            f"the batch dimensions of A {list(a[:-2])} and B {list(b[:-2])} must be equal "
            "(broadcast batches are not supported)"
        )
    if a[-1] != b[-2]:
        raise ValueError(f"inner dimensions must agree, not {list(a)} x {list(b)}")
    return a[:-2], a[-2], a[-1], b[-1]


def output_shape(
    batch_shape: tuple[int, ...], M: int, N: int, out_perm: tuple[int, ...]
) -> tuple[int, ...]:
    y = (*batch_shape, M, N)
    return tuple(y[p] for p in perm_or_identity(out_perm, len(y)))


# --- planner ------------------------------------------------------------------------------------


def plan(ctx: PlanContext, op: BatchedMatMul) -> BatchedMatMulLayer:
    """Schedule the per-head GEMM on the block (FitError naming the node if no tile fits)."""
    if op.dtype not in MODES:
        raise UnsupportedError(
            f"node {op.name!r}: a {op.dtype} activation x activation product was not mapped to "
            f"one of {', '.join(MODES)}"
        )
    kg = ctx.kg
    a, b = (kg.types[n].shape for n in op.inputs)
    batch_shape, M, K, N = operand_shapes(a, b, op.a_perm, op.b_perm)
    progress.stage(
        f"solving the tiling of {op.name!r} (batched {math.prod(batch_shape)} x "
        f"{M}x{K}x{N} {op.dtype})"
    )
    from codesign.kinds.gemm import variant_ports

    # the tile is searched in the graph the weight GEMMs' kernels make: its tiles are padded to
    # that graph's buffer ports, as the plan's estimate streams them
    ports = variant_ports(ctx)
    try:
        sched = tempus.schedule_gemm(
            ctx.board,
            M,
            K,
            N,
            op.dtype,
            ctx.block,
            time_limit_s=ctx.solver_time_limit,
            ports=ports,
        )
        sched = tempus.choose_dataflow(ctx.board, sched, ports=ports)
    except FitError as e:
        raise FitError(f"node {op.name!r} (batched GEMM {M}x{K}x{N} {op.dtype}): {e}") from None
    return BatchedMatMulLayer(
        name=op.name,
        inputs=op.inputs,
        outputs=op.outputs,
        dtype=op.dtype,
        batch_shape=batch_shape,
        M=M,
        K=K,
        N=N,
        a_perm=op.a_perm,
        b_perm=op.b_perm,
        out_perm=op.out_perm,
        a_zero_point=op.a_zero_point,
        b_zero_point=op.b_zero_point,
        schedule=sched,
    )


# --- executor -----------------------------------------------------------------------------------


def _operands(layer: BatchedMatMulLayer, a: np.ndarray, b: np.ndarray):
    """A' [batch, M, K] and B' [batch, K, N] in the order the data movers read them."""
    A = np.transpose(a, perm_or_identity(layer.a_perm, a.ndim)).reshape(layer.batch, layer.M, -1)
    B = np.transpose(b, perm_or_identity(layer.b_perm, b.ndim)).reshape(layer.batch, layer.K, -1)
    return A, B


def execute(
    sim: Simulator, layer: BatchedMatMulLayer, args: list[np.ndarray | None]
) -> tuple[np.ndarray]:
    """Run every head tile by tile as the block does: for each K pass, every cascade core
    multiplies its k-slice of the A tile by its k x n B tile, and the cascade adds the partials
    in chain order (bf16: fp32 adds in that order; integers: acc32/acc64 wrap-around, which is
    associative, so one pass's L core products are one exact product over its L*k slice). The
    M tiles, N tiles and heads are independent graph iterations and are computed together
    (vectorisation, not a shortcut)."""
    s = layer.schedule
    A, B = _operands(layer, args[0], args[1])
    L, k = s.block.cascade, s.tile.k
    bf16 = layer.dtype == "bf16"
    batch = layer.batch
    if bf16:
        Ap = np.zeros((batch, s.padded_M, s.padded_K), dtype=np.float32)
        Bp = np.zeros((batch, s.padded_K, s.padded_N), dtype=np.float32)
        Ap[:, : s.M, : s.K] = numerics.to_bf16(A.astype(np.float32))
        Bp[:, : s.K, : s.N] = numerics.to_bf16(B.astype(np.float32))
        acc = np.zeros((batch, s.padded_M, s.padded_N), dtype=np.float32)
        for p in range(s.k_passes):
            for core in range(L):
                lo = (p * L + core) * k
                partial = numerics.mac_partial_bf16(Ap[:, :, lo : lo + k], Bp[:, lo : lo + k, :])
                acc = numerics.cascade_add_f32(acc, partial)
        y = numerics.gemm_epilogue_bf16(acc[:, : s.M, : s.N])
    else:
        a_dtype = sim.plan.value_spec(layer.inputs[0]).dtype
        b_dtype = sim.plan.value_spec(layer.inputs[1]).dtype
        a_int, za = numerics.recentre(A, layer.a_zero_point, a_dtype)
        b_int, zb = numerics.recentre(B, layer.b_zero_point, b_dtype)
        Ap = np.zeros((batch, s.padded_M, s.padded_K), dtype=np.int64)
        Bp = np.zeros((batch, s.padded_K, s.padded_N), dtype=np.int64)
        Ap[:, : s.M, : s.K] = a_int
        Bp[:, : s.K, : s.N] = b_int
        amax = int(np.abs(a_int).max(initial=0))
        bmax = int(np.abs(b_int).max(initial=0))
        bound = amax * bmax * L * k
        acc = np.zeros((batch, s.padded_M, s.padded_N), dtype=np.int64)
        for p in range(s.k_passes):
            lo, hi = p * L * k, (p + 1) * L * k
            partial = numerics.mac_partial_int(Ap[:, :, lo:hi], Bp[:, lo:hi, :], bound=bound)
            acc = numerics.accumulate(acc, partial, layer.dtype)
        # the tiler's row sums of A and column sums of B (re-centred operands, real K only)
        y = numerics.zero_point_correction(
            acc[:, : s.M, : s.N],
            a_int.sum(axis=-1),
            b_int.sum(axis=-2),
            za,
            zb,
            s.K,
            layer.dtype,
        ).astype(np.int32)
    y = y.reshape(*layer.batch_shape, s.M, s.N)
    out_perm = perm_or_identity(layer.out_perm, y.ndim)
    return (np.ascontiguousarray(np.transpose(y, out_perm)),)


# --- plan checker -------------------------------------------------------------------------------

_OPERAND_DTYPES = {
    "bf16": ("float32",),
    "int8": ("int8", "uint8"),
    "int16": ("int8", "uint8", "int16"),
}


def check(ck: PlanChecker, g: BatchedMatMulLayer) -> None:
    """Perms, shapes, dtypes and zero points must agree with the tensors, and the per-head
    schedule with M, K, N, the block and the tile."""
    ck.count(g, 2, 1)
    if g.dtype not in MODES:
        ck.fail(f"dtype must be one of {', '.join(MODES)}, not {g.dtype!r}")
    a, b = ck.shapes[g.inputs[0]], ck.shapes[g.inputs[1]]
    try:
        batch_shape, M, K, N = operand_shapes(a, b, tuple(g.a_perm), tuple(g.b_perm))
    except ValueError as e:
        ck.fail(str(e))
    if (tuple(g.batch_shape), g.M, g.K, g.N) != (batch_shape, M, K, N):
        ck.fail(
            f"batch {list(g.batch_shape)} and {g.M}x{g.K}x{g.N} must match the operands "
            f"(batch {list(batch_shape)}, {M}x{K}x{N})"
        )
    rank = len(batch_shape) + 2
    if g.out_perm and not is_permutation(tuple(g.out_perm), rank):
        ck.fail(f"out_perm {list(g.out_perm)} must permute {rank} axes")
    out = ck.shapes[g.outputs[0]]
    want = output_shape(batch_shape, M, N, tuple(g.out_perm))
    if out != want:
        ck.fail(f"output shape must be {list(want)}, not {list(out)}")
    allowed = _OPERAND_DTYPES[g.dtype]
    for name, zp in ((g.inputs[0], g.a_zero_point), (g.inputs[1], g.b_zero_point)):
        dt = ck.dtypes[name]
        if dt not in allowed:
            ck.fail(f"a {g.dtype} product reads {' or '.join(allowed)} operands, not {dt}")
        if g.dtype == "bf16":
            if zp:
                ck.fail("a bf16 product has no zero points")
        else:
            lo, hi = numerics.int_range(dt)
            if not lo <= zp <= hi:
                ck.fail(f"zero point {zp} of {name!r} must lie in {lo}..{hi} ({dt})")
    want_out = "float32" if g.dtype == "bf16" else "int32"
    if ck.dtypes[g.outputs[0]] != want_out:
        ck.fail(f"a {g.dtype} product writes {want_out}, not {ck.dtypes[g.outputs[0]]}")
    s = g.schedule
    if s is None:
        ck.fail("a batched product needs a schedule")
    if (s.M, s.K, s.N, s.dtype) != (M, K, N, g.dtype):
        ck.fail(f"schedule {s.M}x{s.K}x{s.N} {s.dtype} must be {M}x{K}x{N} {g.dtype}")
    b_, t, nat = s.block, s.tile, s.native
    if min(b_.chains, b_.cascade, *nat, t.m, t.k, t.n) < 1:
        ck.fail("block, native shape and tile must be positive")
    if t.m % nat[0] or t.k % nat[1] or t.n % nat[2]:
        ck.fail(f"tile {t} must be a multiple of the native shape {list(nat)}")
    counts = (
        math.ceil(M / t.m),
        math.ceil(N / (b_.chains * t.n)),
        math.ceil(K / (b_.cascade * t.k)),
    )
    padded = (counts[0] * t.m, counts[2] * b_.cascade * t.k, counts[1] * b_.chains * t.n)
    if (s.m_tiles, s.n_tiles, s.k_passes) != counts or (
        s.padded_M,
        s.padded_K,
        s.padded_N,
    ) != padded:
        ck.fail("tile counts and padding must follow from M, K, N, the block and the tile")


# --- cost ---------------------------------------------------------------------------------------


def _config(s: TemporalSchedule, plio_bits: int) -> TemporalConfig:
    return TemporalConfig(
        s.block.chains,
        s.block.cascade,
        s.tile.m,
        s.tile.k,
        s.tile.n,
        dataflow=s.dataflow,
        reuse_plan=s.reuse_plan,
        plio_bits=plio_bits,
    )


def run_bytes(
    shape: tuple[int, ...], perm: tuple[int, ...], extents: tuple[int, int], itemsize: int
) -> int:
    """The contiguous bytes a panel read finds in the source tensor: the source's innermost axis,
    as long as the panel walks it (``extents``: the panel's extent along the operand's last two
    axes); one element when the innermost axis is a batch axis."""
    perm = perm_or_identity(perm, len(shape))
    logical = perm.index(len(shape) - 1)
    if logical == len(shape) - 1:
        extent = extents[1]
    elif logical == len(shape) - 2:
        extent = extents[0]
    else:
        extent = 1
    return max(1, min(shape[-1], extent)) * itemsize


def cost(ctx: CostContext, stage: list[BatchedMatMulLayer]) -> Cost:
    """The per-head GEMM on the scheduler's block, tile and dataflow, batched, with the terms of
    streaming both operands (:func:`codesign.cost.batched.estimate_batched_gemm`)."""
    from codesign.kinds.gemm import graph_ports, plio_padding_bytes

    (layer,) = stage
    s = layer.schedule
    plio_bits = max(ctx.board.plio.widths_bits)
    cfg = _config(s, plio_bits)
    work = GemmWorkload(s.M, s.K, s.N, layer.dtype)
    ba, bb = tempus.OPERAND_BYTES[layer.dtype]
    a = tuple(ctx.plan.value_spec(layer.inputs[0]).shape)
    b = tuple(ctx.plan.value_spec(layer.inputs[1]).shape)
    a_run = run_bytes(a, layer.a_perm, (s.tile.m, s.K), ba)
    b_run = run_bytes(b, layer.b_perm, (s.K, s.block.chains * s.tile.n), bb)
    est = estimate_batched_gemm(
        ctx.board,
        layer.name,
        work,
        cfg,
        layer.batch,
        a_run_bytes=a_run,
        b_run_bytes=b_run,
        pl=ctx.pl,
        ports=graph_ports(ctx.plan),
    )
    extra = {
        "batch": layer.batch,
        "k_passes": s.k_passes,
        "padded": [s.padded_M, s.padded_K, s.padded_N],
        "padding_waste": 1 - (s.M * s.K * s.N) / (s.padded_M * s.padded_K * s.padded_N),
        "cycles": est.layer.detail["cycles"],
        "head_cycles": s.block_cycles,
        "a_run_bytes": a_run,
        "b_run_bytes": b_run,
        "strided_extra_bytes": est.strided_extra_bytes,
        "plio_padding_bytes": layer.batch * plio_padding_bytes(ctx.plan, layer),
        "b_tiler_bram": est.tiler_bram,
        "solver": s.solver.status,
        "solver_fallback": s.solver.fallback,
    }
    return Cost(est.layer, extra, work)


# --- memory -------------------------------------------------------------------------------------


def memory(plan: Plan, layer: BatchedMatMulLayer) -> LayerMemory:
    """The padded operands and accumulator of every head at once, 8 bytes an element, and a
    few temporaries of the accumulator's size (partials, zero-point terms, the output)."""
    s = layer.schedule
    a = s.padded_M * s.padded_K
    b = s.padded_K * s.padded_N
    acc = s.padded_M * s.padded_N
    return LayerMemory(transient=layer.batch * 8 * (2 * a + 2 * b + 4 * acc))


# --- generated code: what the block and the PL movers compute -----------------------------------

#: the element type the cores read in each mode (operands re-centred / rounded by the PL tilers)
CORE_DTYPE = {"bf16": "bf16", "int8": "int8", "int16": "int16"}


def epilogue_layout(g: BatchedMatMulLayer) -> EpilogueLayout:
    """The epilogue words of one tile of ``g`` (offsets in int32 words), after the control
    record's header (which carries ``za``, the re-centred A zero point): integer modes hold the
    tile's n column sums of the re-centred B over the real K (``colsum``), its m row sums of
    ``a - za`` over the real K (``rowsum``) and the re-centred B zero point (``zb``), all int32
    two's complement (only their value modulo 2**32 matters: the output is the low 32 bits of
    the accumulator); bf16 has none (one zero word)."""
    from codesign.aie.emit import EpilogueLayout

    if g.dtype == "bf16":
        return EpilogueLayout(None, None, None, None, None, False, 1)
    m, n = g.schedule.tile.m, g.schedule.tile.n
    return EpilogueLayout(None, None, 0, None, None, False, n + m + 1, rowsum=n, zb=n + m)


def aie_context(plan: Plan, g: BatchedMatMulLayer, index: int, plan_index: int) -> dict:
    """The AIE template values of ``g`` (the ``index``-th layer of the block, plan layer
    ``plan_index``), in the form of :func:`codesign.aie.emit.layer_context`: the per-head
    M x K x N GEMM with the cores reading the re-centred (or bf16-rounded) operands; the integer
    epilogue subtracts ``za * colsum + zb * rowsum`` and keeps the int32 accumulator's low 32
    bits (no shift, no saturation: the simulator's int32 cast)."""
    from codesign.aie.emit import CTYPE, comment_safe, positions
    from codesign.ir.dtypes import ACC_TAG

    s = g.schedule
    nm, nk, nn = s.native
    ep = epilogue_layout(g)
    integer = g.dtype != "bf16"
    core = "bfloat16" if not integer else CTYPE[CORE_DTYPE[g.dtype]]
    return {
        "layer": comment_safe(g.name),
        "model": comment_safe(plan.model or "the model"),
        "index": index,
        "id": plan_index,
        "fn": f"gemm{index}",
        "header": f"gemm{index}.h",
        "dtype": g.dtype,
        "g": {"M": s.M, "K": s.K, "N": s.N},
        "chains": s.block.chains,
        "cascade": s.block.cascade,
        "m": s.tile.m,
        "k": s.tile.k,
        "n": s.tile.n,
        "nm": nm,
        "nk": nk,
        "nn": nn,
        "k_passes": s.k_passes,
        "ta": core,
        "tb": core,
        "tag": ACC_TAG[g.dtype],
        "tout": "int32" if integer else "float",
        "bias": False,
        "colsum": integer,
        "relu": False,
        "acc_shift": 0,
        "requant": False,
        "per_channel": False,
        "zero_point": 0,
        "rounding_api": "conv_even",
        "off": {
            "bias": None,
            "bias_hi": None,
            "colsum": ep.colsum,
            "mult": None,
            "shift": None,
            "rowsum": ep.rowsum,
            "zb": ep.zb,
        },
        "rowsum": integer,
        "wrap": integer,
        "epi_words": ep.words,
        "epilogue_doc": (
            "- za * colsum - zb * rowsum (both operands' zero points), the int32 accumulator"
            if integer
            else "none (the fp32 sums)"
        ),
        "positions": positions(s.block.cascade),
    }


def core_operands(
    plan: Plan, g: BatchedMatMulLayer, a: np.ndarray, b: np.ndarray
) -> tuple[np.ndarray, np.ndarray, int, int]:
    """``(A', B', za, zb)``: the per-head operands ``[batch, M, K]`` and ``[batch, K, N]`` as the
    cores read them (the PL tilers' output: bf16-rounded float32, or the re-centred integers as
    int64) and the re-centred zero points (0 for bf16), as :func:`execute` computes."""
    A, B = _operands(g, np.asarray(a), np.asarray(b))
    if g.dtype == "bf16":
        f32 = np.float32
        return numerics.to_bf16(A.astype(f32)), numerics.to_bf16(B.astype(f32)), 0, 0
    a_int, za = numerics.recentre(A, g.a_zero_point, plan.value_spec(g.inputs[0]).dtype)
    b_int, zb = numerics.recentre(B, g.b_zero_point, plan.value_spec(g.inputs[1]).dtype)
    return a_int, b_int, za, zb


def epilogue_table(
    g: BatchedMatMulLayer, a_head: np.ndarray, b_head: np.ndarray, za: int, zb: int
) -> np.ndarray:
    """One head's epilogue table (int32): column sums of B over padded N, row sums of
    ``a - za`` over padded M (padding 0), then zb; per tile the control record takes the
    tile's columns and rows (:func:`epilogue_layout`). bf16: one zero word."""
    s = g.schedule
    if g.dtype == "bf16":
        return np.zeros(1, dtype=np.int32)
    col = np.zeros(s.padded_N, dtype=np.int64)
    col[: s.N] = np.asarray(b_head, dtype=np.int64).sum(axis=0)
    row = np.zeros(s.padded_M, dtype=np.int64)
    row[: s.M] = (np.asarray(a_head, dtype=np.int64) - za).sum(axis=1)
    words = np.concatenate([col, row, [zb]])
    return numerics.wrap_int32(words).astype(np.int32)


def _strides(shape: tuple[int, ...]) -> list[int]:
    """Row-major element strides of ``shape``."""
    out, acc = [0] * len(shape), 1
    for d in reversed(range(len(shape))):
        out[d] = acc
        acc *= shape[d]
    return out


def _read_order(shape: tuple[int, ...], perm: tuple[int, ...]) -> dict:
    """How a mover walks ``transpose(x, perm)`` of a row-major tensor of ``shape`` in place: the
    batch axes (size, element stride) and the element strides of the last two logical axes."""
    perm = perm_or_identity(perm, len(shape))
    st = _strides(shape)
    logical = [(shape[p], st[p]) for p in perm]
    return {
        # a size-1 batch axis adds nothing to the address
        "batch": [{"size": n, "stride": s} for n, s in logical[:-2] if n > 1],
        "row_stride": logical[-2][1],
        "col_stride": logical[-1][1],
        "perm": list(perm),
    }


def _write_order(shape: tuple[int, ...], out_perm: tuple[int, ...]) -> dict:
    """How the C untiler places element (batch..., row, col) of ``Y'`` in
    ``out = transpose(Y', out_perm)`` (``shape``: the output's shape)."""
    perm = perm_or_identity(out_perm, len(shape))
    st = _strides(shape)
    y_shape = [0] * len(shape)
    y_stride = [0] * len(shape)
    for e, d in enumerate(perm):  # output axis e is Y' axis d
        y_shape[d], y_stride[d] = shape[e], st[e]
    return {
        "batch": [
            {"size": n, "stride": s}
            for n, s in zip(y_shape[:-2], y_stride[:-2], strict=True)
            if n > 1  # a size-1 batch axis adds nothing to the address
        ],
        "row_stride": y_stride[-2],
        "col_stride": y_stride[-1],
        "perm": list(perm),
    }


def pl_context(plan: Plan, index: int, g: BatchedMatMulLayer) -> dict:
    """What ``hls/templates/batched_matmul_layer.h.j2`` needs for ``g`` (plan layer ``index``):
    the operands' read orders and the output's write order in the arena, the stream names, the
    beat counts and the static (re-centred) zero points of the control records."""
    from codesign.hls import pl
    from codesign.ir.data import itemsize

    regions, _ = pl.arena(plan)
    s = g.schedule
    bits = pl.beat_bits(plan)
    integer = g.dtype != "bf16"
    ebits = 8 * itemsize(CORE_DTYPE[g.dtype])
    za = zb = 0
    operands = []
    for what, name, perm, zp in (
        ("A", g.inputs[0], g.a_perm, g.a_zero_point),
        ("B", g.inputs[1], g.b_perm, g.b_zero_point),
    ):
        spec = plan.value_spec(name)
        order = _read_order(tuple(spec.shape), tuple(perm))
        operands.append(
            {
                "what": what,
                "region": regions[name],
                "dtype": spec.dtype,
                "size": itemsize(spec.dtype),
                "rows": s.M if what == "A" else s.K,
                "cols": s.K if what == "A" else s.N,
                **order,
            }
        )
        if integer:
            rz = numerics.recentre(np.zeros(1), zp, spec.dtype)[1]
            za, zb = (rz, zb) if what == "A" else (za, rz)
    out = plan.tensor(g.outputs[0])
    y = {
        "region": regions[out.name],
        "dtype": out.dtype,
        "size": itemsize(out.dtype),
        **_write_order(tuple(out.shape), tuple(g.out_perm)),
    }
    if bits % ebits or bits % (8 * y["size"]):
        raise pl.PLCodegenError(f"layer {g.name!r}: elements do not divide a stream beat")
    streams_a, streams_b, streams_c = pl.stream_names(plan)
    _, mk, mn = s.native
    return {
        "p": pl.ident(index, g.name),
        "name": g.name,
        "index": index,
        "s": s,
        "L": s.block.cascade,
        "C": s.block.chains,
        "batch": g.batch,
        "integer": integer,
        "ebits": ebits,
        "mask": f" & 0x{(1 << ebits) - 1:X}u" if integer else "",
        "a": operands[0],
        "b": operands[1],
        "y": y,
        "za": za,
        "zb": zb,
        "mk": mk,
        "mn": mn,
        "a_streams": streams_a,
        "b_streams": streams_b,
        "c_streams": pl.c_names(plan, g),  # its kernel group's
        "c_all": streams_c,
        "rtp_streams": pl.rtp_names(plan),
        "epi_words": pl.epilogue_words(plan),
        # whole buffer ports (port_beats): the tile, then zeros; C: the tile, then dropped bytes
        **dict(zip(("a_beats", "b_beats", "c_beats"), pl.port_beats(plan), strict=True)),
    }


def pl_files(plan: Plan, layers: list[BatchedMatMulLayer]) -> list[tuple[str, bytes]]:
    """``hls/<ident>.h`` of every batched product: its A tiler, B tiler, C untiler and control
    records, which the PL sequencer runs as the layer's step."""
    from codesign.hls import pl

    where = {id(layer): i for i, layer in enumerate(plan.layers)}
    files = []
    for g in layers:
        ctx = pl_context(plan, where[id(g)], g)
        files.append((f"hls/{ctx['p']}.h", pl.render("batched_matmul_layer.h.j2", **ctx)))
    return files


# --- emitters -----------------------------------------------------------------------------------


def emit(plan: Plan, layers: list[BatchedMatMulLayer]) -> Emitted:
    """The run-time program of the PL data movers for every batched product: per layer the read
    orders of A and B (perms of the source tensors), the write order of the output, the per-head
    shape, batch, mode, zero points and the block's tile (``kinds/batched_matmul.json``), and
    per layer its PL movers (``hls/<ident>.h``, :func:`pl_files`). The AIE side is the block's
    one graph (:mod:`codesign.aie.emit`, written with the GEMM kind's files): each batched
    product runs a kernel of its tile variant (shared with the GEMMs when tile and epilogue
    agree), dispatched by its plan layer number."""
    doc = {
        "schema": "codesign.batched_matmul/1",
        "layers": [
            {
                "name": g.name,
                "inputs": list(g.inputs),
                "output": g.outputs[0],
                "dtype": g.dtype,
                "batch_shape": list(g.batch_shape),
                "M": g.M,
                "K": g.K,
                "N": g.N,
                "a_perm": list(g.a_perm),
                "b_perm": list(g.b_perm),
                "out_perm": list(g.out_perm),
                "a_zero_point": g.a_zero_point,
                "b_zero_point": g.b_zero_point,
                "tile": [g.schedule.tile.m, g.schedule.tile.k, g.schedule.tile.n],
                "block": [g.schedule.block.chains, g.schedule.block.cascade],
            }
            for g in layers
        ],
    }
    text = json.dumps(doc, indent=2, sort_keys=True) + "\n"
    files = [("kinds/batched_matmul.json", text.encode()), *pl_files(plan, layers)]
    if not plan.gemms():  # the block's AIE files come with the GEMM kind's when it has any
        from codesign.aie.emit import emit_files

        files += emit_files(plan)
    return Emitted(files=tuple(files))


KIND = register(
    OpKind(
        name="batched_matmul",
        op=BatchedMatMul,
        layer=BatchedMatMulLayer,
        plan=plan,
        execute=execute,
        check=check,
        cost=cost,
        memory=memory,
        emit=emit,
        output_scale=no_output_scale,
    )
)
