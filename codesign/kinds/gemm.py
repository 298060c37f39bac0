"""The GEMM kind: a matrix product on the temporal AIE-ML block, with its epilogue.

KernelGraph op :class:`~codesign.ir.graph.Gemm`, plan layer :class:`~codesign.ir.plan.GemmLayer`.
Planner: :mod:`codesign.schedulers.tempus` chooses the tile (CP-SAT) and the dataflow
(:mod:`codesign.cost`); the weight is packed in the ``tempus.b/1`` stream order. Executor: tile by
tile as the block runs it (see :func:`execute`). Emitters: the PL requantiser (one per output
dtype) and the A-tile broadcaster (:mod:`codesign.rtl`).
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from codesign import progress
from codesign.aie.emit import emit_files as emit_aie_files
from codesign.boards import load as load_board
from codesign.cost import GemmWorkload, TemporalConfig, estimate_temporal_gemm, gemm_layer
from codesign.cost.variants import VariantChoice, choose_variants
from codesign.errors import BuildError, FitError
from codesign.ir.graph import Gemm, numpy_dtype
from codesign.ir.layouts import B_LAYOUT, pack_b, unpack_b
from codesign.ir.plan import DataFile, GemmLayer, Plan, RequantSpec
from codesign.kinds.registry import Cost, Emitted, LayerMemory, OpKind, no_output_scale, register
from codesign.rtl.spec import BlockSpec
from codesign.schedulers import tempus
from codesign.sim import numerics

if TYPE_CHECKING:
    from codesign.report.plan_report import CostContext
    from codesign.schedulers.planner import PlanContext
    from codesign.sim.functional import Simulator
    from codesign.sim.plan_check import PlanChecker

# --- planner ------------------------------------------------------------------------------------


def plan(ctx: PlanContext, op: Gemm) -> GemmLayer:
    """Schedule the GEMM on the block (FitError naming the node if no tile fits) and pack its
    weight, bias, column sums and requantisation parameters."""
    kg = ctx.kg
    w = kg.const(op.weight)
    K, N = w.shape
    a_shape = kg.types[op.inputs[0]].shape
    M = int(np.prod(a_shape[:-1], dtype=np.int64)) if len(a_shape) > 1 else 1
    progress.stage(f"solving the tiling of {op.name!r} (GEMM {M}x{K}x{N} {op.dtype})")
    try:
        own = tempus.schedule_gemm(
            ctx.board, M, K, N, op.dtype, ctx.block, time_limit_s=ctx.solver_time_limit
        )
        tile = _variants(ctx).tile_for(GemmWorkload(M, K, N, op.dtype))
        sched = own
        if tile != own.tile:  # the shared kernel variant, with the layer's own search report
            sched = replace(
                tempus.schedule_gemm(ctx.board, M, K, N, op.dtype, ctx.block, tile=tile),
                solver=own.solver,
            )
        sched = tempus.choose_dataflow(ctx.board, sched)
    except FitError as e:
        raise FitError(f"node {op.name!r} (GEMM {M}x{K}x{N} {op.dtype}): {e}") from None
    wdtype = "bf16" if op.dtype == "bf16" else kg.types[op.weight].dtype
    weight = ctx.packer.pack(
        f"{op.name}.B", pack_b(w, sched), wdtype, layout=B_LAYOUT, shape=(K, N)
    )

    def vec(name: str | None) -> DataFile | None:
        if name is None:
            return None
        return ctx.packer.pack(
            f"{op.name}.{name.rsplit('/', 1)[-1]}", kg.const(name), kg.types[name].dtype
        )

    requant = None
    if op.requant is not None:
        r = op.requant
        requant = RequantSpec(
            multiplier=vec(r.multiplier),
            shift=vec(r.shift),
            zero_point=r.zero_point,
            dtype=r.dtype,
            rounding=r.rounding,
        )
    return GemmLayer(
        name=op.name,
        inputs=op.inputs,
        outputs=op.outputs,
        dtype=op.dtype,
        schedule=sched,
        weight=weight,
        bias=vec(op.bias),
        colsum=vec(op.colsum),
        acc_shift=op.acc_shift,
        relu=op.relu,
        requant=requant,
    )


def _gemm_shape(ctx: PlanContext, op: Gemm) -> GemmWorkload:
    K, N = ctx.kg.types[op.weight].shape
    a_shape = ctx.kg.types[op.inputs[0]].shape
    M = int(np.prod(a_shape[:-1], dtype=np.int64)) if len(a_shape) > 1 else 1
    return GemmWorkload(M, K, N, op.dtype)


def _variants(ctx: PlanContext) -> VariantChoice:
    """The kernel tile variants of the whole graph's GEMMs, chosen once per plan by the cost
    model (:mod:`codesign.cost.variants`): one compiled graph serves every layer."""
    key = "gemm.variants"
    if key not in ctx.state:
        shapes = [_gemm_shape(ctx, op) for op in ctx.kg.ops if isinstance(op, Gemm)]
        ctx.state[key] = choose_variants(
            ctx.board,
            shapes,
            ctx.block.chains,
            ctx.block.cascade,
            max_variants=ctx.max_variants,
            time_limit_s=ctx.solver_time_limit,
        )
    return ctx.state[key]


# --- executor -----------------------------------------------------------------------------------


def execute(sim: Simulator, layer: GemmLayer, args: list[np.ndarray | None]) -> tuple[np.ndarray]:
    """Run the GEMM tile by tile as the temporal block does: for each M tile and each K pass,
    every core (chain c, cascade position l) multiplies its A tile by the B tile it reads from the
    packed ``tempus.b/1`` stream, the cascade adds the partials in order, and the epilogue runs on
    the finished accumulator. The N tiles of one M tile are independent graph iterations and are
    computed together as one batched product (vectorisation, not a shortcut)."""
    s = layer.schedule
    a = args[0]
    out_shape = a.shape[:-1] + (s.N,)
    L, C = s.block.cascade, s.block.chains
    m, k, n = s.tile.m, s.tile.k, s.tile.n
    bf16 = layer.dtype == "bf16"
    Bc, bound = _core_weights(sim, layer)  # [k_pass, core, k, n_tile*chain*n]
    A = np.zeros((s.padded_M, s.padded_K), dtype=Bc.dtype)
    A[: s.M, : s.K] = numerics.to_bf16(a.reshape(s.M, s.K)) if bf16 else a.reshape(s.M, s.K)
    # A tiles [m_tile, k_pass, core, m, k]: the same A tile goes to every chain
    At = A.reshape(s.m_tiles, m, s.k_passes, L, k).transpose(0, 2, 3, 1, 4)
    cols = s.n_tiles * C * n
    acc = np.zeros((s.m_tiles, m, cols), dtype=np.float32 if bf16 else np.int64)
    for i in range(s.m_tiles):  # graph iterations of M tile i (all its N tiles at once)
        for p in range(s.k_passes):
            if bf16:
                for core in range(L):  # the cascade adds the fp32 partials in chain order
                    partial = numerics.mac_partial_bf16(At[i, p, core], Bc[p, core])
                    acc[i] = numerics.cascade_add_f32(acc[i], partial)
            else:
                # Integer partials are exact and acc32 wrap-around is associative, so the L core
                # products of this pass and their cascade sum are one product over the pass's
                # L*k slice: the same number, formed in one BLAS call.
                a_pass = np.ascontiguousarray(At[i, p].transpose(1, 0, 2).reshape(m, L * k))
                partial = numerics.mac_partial_int(a_pass, Bc[p].reshape(L * k, -1), bound=bound)
                acc[i] = numerics.accumulate(acc[i], partial, layer.dtype)
    # columns are ordered (n_tile, chain, n): exactly the output's N order
    full = acc.reshape(s.padded_M, s.padded_N)[: s.M, : s.N]
    y = _epilogue(sim, layer, full, args)
    return (y.reshape(out_shape),)


def _core_weights(sim: Simulator, layer: GemmLayer) -> tuple[np.ndarray, int | None]:
    """The streamed B tiles regrouped per (K pass, core) as [k, n_tile*chain*n] matrices, and
    the bound of one pass's integer products (cached per layer). Integer weights are held as
    float32 when every pass sum stays below 2**24 (exact there, and twice as fast as float64)."""
    key = f"{layer.weight.sha256}#{layer.name}#core"
    if key not in sim.cache:
        s = layer.schedule
        B = unpack_b(sim.data(layer.weight), s)  # [n_tile, k_pass, chain, core, k, n]
        bound = 0
        if layer.dtype != "bf16":
            a_lo, a_hi = numerics.int_range(sim.plan.tensor(layer.inputs[0]).dtype)
            bmax = int(np.abs(B.astype(np.int64)).max(initial=0))
            bound = max(abs(a_lo), abs(a_hi)) * bmax * s.tile.k * s.block.cascade
        exact_f32 = layer.dtype == "bf16" or bound < numerics.EXACT_F32
        Bc = np.ascontiguousarray(
            B.transpose(1, 3, 4, 0, 2, 5), dtype=np.float32 if exact_f32 else np.float64
        )
        sim.cache[key] = (Bc.reshape(s.k_passes, s.block.cascade, s.tile.k, -1), bound)
    return sim.cache[key]


def _epilogue(sim: Simulator, layer: GemmLayer, acc: np.ndarray, args: list) -> np.ndarray:
    bias = sim.data(layer.bias) if layer.bias else None
    if layer.dtype == "bf16":
        return numerics.gemm_epilogue_bf16(acc, bias=bias, relu=layer.relu)
    r = layer.requant
    requant = None
    if r is not None:
        shift = sim.data(r.shift)
        if shift.size and (shift.min() < 0 or shift.max() > 62):  # data from a build: refuse
            where = sim.root / r.shift.path if sim.root is not None else r.shift.path
            raise BuildError(
                f"{where}: requantisation shifts must lie in 0..62, "
                f"not {shift.min()}..{shift.max()}"
            )
        requant = (sim.data(r.multiplier), shift, r.zero_point, r.dtype, r.rounding)
    return numerics.gemm_epilogue_int(
        acc,
        dtype=layer.dtype,
        acc_shift=layer.acc_shift,
        bias=bias,
        a_zero_point=args[1] if len(args) > 1 else None,
        colsum=sim.data(layer.colsum) if layer.colsum else None,
        relu=layer.relu,
        requant=requant,
    )


# --- plan checker -------------------------------------------------------------------------------


def check(ck: PlanChecker, g: GemmLayer) -> None:
    """The schedule must match the tensors (M, K, N, native multiples, tile counts, padding, the
    packed weight's size) and the epilogue parameters must lie in range."""
    ck.count(g, (1, 2), 1)
    s = g.schedule
    if s is None or g.weight is None:
        ck.fail("a GEMM needs a schedule and a weight")
    if g.dtype not in numerics.ACCUMULATOR_BITS and g.dtype != "bf16":
        ck.fail(f"dtype must be int8, int16 or bf16, not {g.dtype!r}")
    a, out = ck.shapes[g.inputs[0]], ck.shapes[g.outputs[0]]
    M, K, N = math.prod(a[:-1]), a[-1] if a else 0, out[-1] if out else 0
    if (s.M, s.K, s.N) != (M, K, N) or math.prod(out) != M * N or s.dtype != g.dtype:
        ck.fail(
            f"schedule {s.M}x{s.K}x{s.N} {s.dtype} must match its tensors ({M}x{K}x{N} {g.dtype})"
        )
    b, t, nat = s.block, s.tile, s.native
    if min(b.chains, b.cascade, *nat, t.m, t.k, t.n) < 1:
        ck.fail("block, native shape and tile must be positive")
    if t.m % nat[0] or t.k % nat[1] or t.n % nat[2]:
        ck.fail(f"tile {t} must be a multiple of the native shape {list(nat)}")
    counts = (
        math.ceil(M / t.m),
        math.ceil(N / (b.chains * t.n)),
        math.ceil(K / (b.cascade * t.k)),
    )
    padded = (counts[0] * t.m, counts[2] * b.cascade * t.k, counts[1] * b.chains * t.n)
    if (s.m_tiles, s.n_tiles, s.k_passes) != counts or (
        s.padded_M,
        s.padded_K,
        s.padded_N,
    ) != padded:
        ck.fail("tile counts and padding must follow from M, K, N, the block and the tile")
    ck.datafile(g.weight, "weight")
    if tuple(g.weight.shape) != (K, N) or g.weight.layout != B_LAYOUT:
        ck.fail(f"weight must be [{K}, {N}] in layout {B_LAYOUT}")
    ck.file_elements(g.weight, padded[1] * padded[2], "weight")
    for name in ("bias", "colsum"):
        f = getattr(g, name)
        if f is not None:
            ck.datafile(f, name)
            if tuple(f.shape) != (N,):
                ck.fail(f"{name} must have shape [{N}], not {list(f.shape)}")
    if len(g.inputs) == 2 and g.colsum is None:
        ck.fail("a run-time activation zero point needs colsum")
    if not 0 <= g.acc_shift <= 62:
        ck.fail(f"acc_shift must lie in 0..62, not {g.acc_shift}")
    r = g.requant
    if r is not None:
        for f, name in ((r.multiplier, "multiplier"), (r.shift, "shift")):
            ck.datafile(f, f"requant {name}")
            if tuple(f.shape) not in ((N,), (1,)):
                ck.fail(f"requant {name} must have shape [{N}] or [1], not {f.shape}")
        if r.dtype not in ("int8", "uint8", "int16"):
            ck.fail(f"requant dtype must be int8, uint8 or int16, not {r.dtype!r}")
        lo, hi = numerics.int_range(r.dtype)
        if not lo <= r.zero_point <= hi:
            ck.fail(f"requant zero point must lie in {lo}..{hi}, not {r.zero_point}")
        if r.rounding not in numerics.ROUNDING_MODES:
            ck.fail(f"requant rounding must be one of {numerics.ROUNDING_MODES}")


# --- cost ---------------------------------------------------------------------------------------


def _config(layer: GemmLayer) -> TemporalConfig:
    s = layer.schedule
    return TemporalConfig(
        s.block.chains,
        s.block.cascade,
        s.tile.m,
        s.tile.k,
        s.tile.n,
        dataflow=s.dataflow,
        reuse_plan=s.reuse_plan,
    )


def cost(ctx: CostContext, stage: list[GemmLayer]) -> Cost:
    """The GEMM modelled with the block, tile and dataflow the scheduler chose, with the plan's
    own figures and the modelled gain of the dataflow over Tempus's policy (same block, tile)."""
    (layer,) = stage
    s = layer.schedule
    work = GemmWorkload(s.M, s.K, s.N, layer.dtype)
    cfg = _config(layer)
    est = estimate_temporal_gemm(ctx.board, work, cfg, pl=ctx.pl)
    tempus_est = (
        est
        if cfg.dataflow == "tempus"
        else estimate_temporal_gemm(
            ctx.board, work, replace(cfg, dataflow="tempus", reuse_plan=None), pl=ctx.pl
        )
    )
    extra = {
        "k_passes": s.k_passes,
        "padded": [s.padded_M, s.padded_K, s.padded_N],
        "padding_waste": 1 - (s.M * s.K * s.N) / (s.padded_M * s.padded_K * s.padded_N),
        "cycles": est.cycles,
        "block_cycles": s.block_cycles,
        "core_memory_bytes": s.core_memory_bytes,
        "plio_in": s.plio_in,
        "plio_out": s.plio_out,
        "solver": s.solver.status,
        "solver_fallback": s.solver.fallback,
        "gain_over_tempus": tempus_est.time_s / est.time_s,
    }
    return Cost(gemm_layer(layer.name, est), extra, work)


# --- memory -------------------------------------------------------------------------------------

#: 8-byte temporaries of the integer GEMM epilogue per output element (bias, SRS, requant).
_EPILOGUE_TEMPS = 10
#: 8-byte temporaries per element of one M tile's accumulator row block (partial, wrap, add).
_ITERATION_TEMPS = 6


def _decoded_bytes(f: DataFile) -> int:
    """Bytes of a data file once read (bf16 is widened to float32)."""
    return math.prod(f.shape) * (4 if f.dtype == "bf16" else numpy_dtype(f.dtype).itemsize)


def memory(plan: Plan, layer: GemmLayer) -> LayerMemory:
    """The data files as decoded, the weight regrouped per core as float64 (cached for the run),
    and the transient set: padded float64 A, the accumulator, one pass's A slice, one M tile's
    row-block temporaries and the epilogue's int64 temporaries."""
    files = [layer.weight, layer.bias, layer.colsum]
    if layer.requant is not None:
        files += [layer.requant.multiplier, layer.requant.shift]
    s = layer.schedule
    weight = s.padded_K * s.padded_N * 8
    a = s.padded_M * s.padded_K * 8
    acc = s.padded_M * s.padded_N * 8
    a_pass = s.tile.m * s.block.cascade * s.tile.k * 8
    iteration = _ITERATION_TEMPS * s.tile.m * s.padded_N * 8
    epilogue = _EPILOGUE_TEMPS * s.M * s.N * 8
    return LayerMemory(
        files=tuple(_decoded_bytes(f) for f in files if f is not None),
        cached=weight,
        transient=a + acc + a_pass + iteration + epilogue,
    )


# --- emitters -----------------------------------------------------------------------------------

#: smallest sizes generated (rounded up in powers of two from here, to share cached Verilog)
MIN_CHANNELS = 1024
MIN_DEPTH = 512


def _pow2_at_least(x: int, floor: int) -> int:
    v = floor
    while v < x:
        v *= 2
    return v


def emit(plan: Plan, layers: list[GemmLayer]) -> Emitted:
    """The PL blocks the GEMMs need: a requantiser per output dtype (int32 accumulators leave the
    cascade into the PL) and a broadcaster that replays A tiles to every chain (Tempus's PL
    replication without DDR re-reads). Parameters are rounded up to powers of two so that many
    models share the same Verilog and synthesis cache entries."""
    if not layers:
        return Emitted()
    beat_bits = max(load_board(plan.board).plio.widths_bits)  # the blocks stream whole beats
    specs: list[BlockSpec] = []
    by_dtype: dict[str, int] = {}
    for g in layers:
        if g.requant is not None:
            by_dtype[g.requant.dtype] = max(by_dtype.get(g.requant.dtype, 0), g.schedule.N)
    for dtype, channels in sorted(by_dtype.items()):
        specs.append(
            BlockSpec.of(
                "requantizer",
                lanes=beat_bits // 32,
                out_dtype=dtype,
                max_channels=_pow2_at_least(channels, MIN_CHANNELS),
            )
        )
    beats = max(
        g.schedule.tile.m * g.schedule.tile.k * tempus.OPERAND_BYTES[g.dtype][0] * 8 // beat_bits
        for g in layers
    )
    specs.append(
        BlockSpec.of(
            "broadcaster",
            width=beat_bits,
            outputs=plan.block.chains,
            depth=_pow2_at_least(beats, MIN_DEPTH),
        )
    )
    # the AIE-ML kernels, dispatch kernels, ADF graph and aie.cfg (codesign.aie.emit)
    return Emitted(blocks=tuple(specs), files=emit_aie_files(plan))


KIND = register(
    OpKind(
        name="gemm",
        op=Gemm,
        layer=GemmLayer,
        plan=plan,
        execute=execute,
        check=check,
        cost=cost,
        memory=memory,
        emit=emit,
        output_scale=no_output_scale,
    )
)
