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
from typing import TYPE_CHECKING, Any

import numpy as np

from codesign import progress
from codesign.aie.emit import emit_files as emit_aie_files
from codesign.boards import load as load_board
from codesign.cost import GemmWorkload, TemporalConfig, estimate_temporal_gemm, gemm_layer
from codesign.cost.temporal import PortStreams
from codesign.cost.variants import VariantChoice, choose_variants
from codesign.errors import BuildError, FitError
from codesign.ir.graph import Gemm, numpy_dtype
from codesign.ir.layouts import (
    B_LAYOUT,
    NM_INDEX_LAYOUT,
    NM_LAYOUT,
    from_nm_order,
    nm_order,
    pack_b,
    pack_index,
    unpack_b,
    unpack_index,
)
from codesign.ir.plan import (
    DataFile,
    GemmLayer,
    Layer,
    Plan,
    RequantSpec,
    SparseB,
    Tile,
    WeightSparsity,
)
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
        sched = tempus.choose_dataflow(ctx.board, sched, ports=_variants(ctx).ports)
    except FitError as e:
        raise FitError(f"node {op.name!r} (GEMM {M}x{K}x{N} {op.dtype}): {e}") from None
    wdtype = "bf16" if op.dtype == "bf16" else kg.types[op.weight].dtype
    sparsity = weight_sparsity(w)
    sparse = None
    if streams_nm(w, sched):
        values, index = compress_b(w, sched, *SPARSE_NM)
        weight = ctx.packer.pack(f"{op.name}.B", values, wdtype, layout=NM_LAYOUT, shape=(K, N))
        sparse = SparseB(
            *SPARSE_NM,
            index=ctx.packer.pack(
                f"{op.name}.B_index",
                pack_index(index, numerics.nm_index_bits(SPARSE_NM[1])),
                "uint8",
                layout=NM_INDEX_LAYOUT,
                shape=(index.size,),
            ),
        )
    else:
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
        sparsity=sparsity,
        sparse=sparse,
    )


#: The N:M pattern in K whose weights stream compressed (AIE-ML's sparse B operand: at least two
#: zeros in every four, UG1603; REFERENCES.md s1).
SPARSE_NM = (2, 4)


def weight_sparsity(w: np.ndarray) -> WeightSparsity:
    """Zero count and the sparsest N:M pattern in K of a [K, N] weight."""
    nm = numerics.best_nm(w, axis=0)
    return WeightSparsity(
        zeros=int(np.count_nonzero(w == 0)),
        elements=int(w.size),
        nm=f"{nm[0]}:{nm[1]}" if nm else "",
    )


def streams_nm(w: np.ndarray, s: object) -> bool:
    """Whether the weight streams in ``tempus.b-nm/1``: 2:4 in K over its own rows (K a
    multiple of 4, so the padding adds no group; a dense weight never qualifies: 2:4 means at
    least half zeros) and native blocks whose K side holds whole groups."""
    n, m = SPARSE_NM
    K = w.shape[0]
    return (
        K % m == 0
        and s.native[1] % m == 0  # type: ignore[attr-defined]
        and numerics.nm_satisfied(w, n, m, axis=0)
    )


def compress_b(w: np.ndarray, s: object, n: int, m: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``tempus.b-nm/1`` value stream (flat) and positions (uint8, flat) of weight ``w``."""
    values, index = numerics.nm_compress(nm_order(pack_b(w, s), s), n, m)  # type: ignore[arg-type]
    return values.reshape(-1), index.reshape(-1)


def dense_b(data: np.ndarray, index: np.ndarray | None, layer: GemmLayer) -> np.ndarray:
    """The flat ``tempus.b/1`` stream of ``layer``'s weight from its stored file(s): a
    compressed weight is expanded exactly as the N:M expander block does
    (:func:`codesign.sim.numerics.nm_expand`)."""
    sp = layer.sparse
    if sp is None:
        return data
    s = layer.schedule
    bits = numerics.nm_index_bits(sp.m)
    slots = s.native[1] // sp.m * sp.n
    positions = unpack_index(index, bits, data.size)
    rows = numerics.nm_expand(data.reshape(-1, slots), positions.reshape(-1, slots), sp.n, sp.m)
    return from_nm_order(rows, s)


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


def variant_tiles(ctx: PlanContext) -> list[tuple[GemmWorkload, Tile]]:
    """(workload, chosen variant tile) of every weight GEMM of the graph, repeats counted."""
    key = "gemm.variant_tiles"
    if key not in ctx.state:  # asked once per nonlinear op: computed once per plan
        choice = _variants(ctx)
        shapes = [_gemm_shape(ctx, op) for op in ctx.kg.ops if isinstance(op, Gemm)]
        ctx.state[key] = [(w, choice.tile_for(w)) for w in shapes]
    return ctx.state[key]


def variant_ports(ctx: PlanContext) -> PortStreams | None:
    """The buffer ports of the graph the weight GEMMs' kernel variants make, as the cost model
    streams them (None without a GEMM): the other block layers' tiles are searched in it."""
    return _variants(ctx).ports


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
    # [k_pass, core, k, n_tile*chain*n]; bf16: numerics.cascade_columns of [k_pass*core, k, ...]
    Bc, bound = _core_weights(sim, layer)
    A = np.zeros((s.padded_M, s.padded_K), dtype=np.float64 if bf16 else Bc.dtype)
    A[: s.M, : s.K] = numerics.to_bf16(a.reshape(s.M, s.K)) if bf16 else a.reshape(s.M, s.K)
    # A tiles [m_tile, k_pass, core, m, k]: the same A tile goes to every chain
    At = A.reshape(s.m_tiles, m, s.k_passes, L, k).transpose(0, 2, 3, 1, 4)
    cols = s.n_tiles * C * n
    acc = np.zeros((s.m_tiles, m, cols), dtype=np.float32 if bf16 else np.int64)
    if bf16:
        # The M tiles share each (pass, core) B tile and their rows never mix, so every M tile's
        # partial of one core is one product over all rows (float64 sums of the exact bf16
        # products, rounded once to fp32); the cascade adds them in chain order, pass by pass:
        # cores in (pass, position) order, A as [pass * core, row, k]
        A64 = np.ascontiguousarray(A.reshape(s.padded_M, s.k_passes * L, k).transpose(1, 0, 2))
        acc = numerics.cascade_gemm_bf16(A64, Bc).reshape(acc.shape)
    else:
        for i in range(s.m_tiles):  # graph iterations of M tile i (all its N tiles at once)
            for p in range(s.k_passes):
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


def _core_weights(sim: Simulator, layer: GemmLayer) -> tuple[Any, int | None]:
    """The streamed B tiles regrouped per (K pass, core) as [k, n_tile*chain*n] matrices, and
    the bound of one pass's integer products (cached per layer). bf16 weights are held as
    float64 (exact; the core partials are float64 sums), cores in (pass, position) order, cut
    into :func:`~codesign.sim.numerics.cascade_columns` pieces; integer weights as one
    [k_pass, core, k, cols] array of float32 when every pass sum stays below 2**24 (exact
    there, and twice as fast as float64)."""
    key = f"{layer.weight.sha256}#{layer.name}#core"
    if key not in sim.cache:
        s = layer.schedule
        index = sim.data(layer.sparse.index) if layer.sparse is not None else None
        flat = dense_b(sim.data(layer.weight), index, layer)  # expanded from N:M if compressed
        B = unpack_b(flat, s)  # [n_tile, k_pass, chain, core, k, n]
        bound = 0
        if layer.dtype != "bf16":
            a_lo, a_hi = numerics.int_range(sim.plan.tensor(layer.inputs[0]).dtype)
            bmax = int(np.abs(B.astype(np.int64)).max(initial=0))
            bound = max(abs(a_lo), abs(a_hi)) * bmax * s.tile.k * s.block.cascade
        exact_f32 = layer.dtype != "bf16" and bound < numerics.EXACT_F32
        Bc = np.ascontiguousarray(
            B.transpose(1, 3, 4, 0, 2, 5), dtype=np.float32 if exact_f32 else np.float64
        )
        Bc = Bc.reshape(s.k_passes, s.block.cascade, s.tile.k, -1)
        if layer.dtype == "bf16":
            Bc = numerics.cascade_columns(Bc.reshape(-1, *Bc.shape[2:]))
        sim.cache[key] = (Bc, bound)
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
    sp = g.sparse
    layout = B_LAYOUT if sp is None else NM_LAYOUT
    if tuple(g.weight.shape) != (K, N) or g.weight.layout != layout:
        ck.fail(f"weight must be [{K}, {N}] in layout {layout}")
    if sp is None:
        ck.file_elements(g.weight, padded[1] * padded[2], "weight")
    else:
        if (sp.n, sp.m) != SPARSE_NM or sp.expand != "pl" or nat[1] % sp.m:
            ck.fail(
                f"sparse weights must be {SPARSE_NM[0]}:{SPARSE_NM[1]} expanded in the pl, on "
                f"native blocks whose K side ({nat[1]}) holds whole groups"
            )
        slots = padded[1] * padded[2] // sp.m * sp.n
        ck.file_elements(g.weight, slots, "weight values")
        ck.datafile(sp.index, "weight index")
        if sp.index.layout != NM_INDEX_LAYOUT or sp.index.dtype != "uint8":
            ck.fail(f"weight index must be uint8 in layout {NM_INDEX_LAYOUT}")
        if tuple(sp.index.shape) != (slots,):
            ck.fail(f"weight index must have shape [{slots}], not {list(sp.index.shape)}")
        bits = numerics.nm_index_bits(sp.m)
        ck.file_elements(sp.index, -(-slots * bits // 8), "weight index")
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
    size = 2 if layer.weight.dtype == "bf16" else numpy_dtype(layer.weight.dtype).itemsize
    dense_bytes = s.padded_K * s.padded_N * size
    stored = _weight_bytes(layer)
    work = GemmWorkload(s.M, s.K, s.N, layer.dtype, b_ddr_ratio=stored / dense_bytes)
    cfg = _config(layer)
    ports = graph_ports(ctx.plan)
    est = estimate_temporal_gemm(ctx.board, work, cfg, pl=ctx.pl, ports=ports)
    dense_est = (
        est
        if layer.sparse is None
        else estimate_temporal_gemm(
            ctx.board, replace(work, b_ddr_ratio=1.0), cfg, pl=ctx.pl, ports=ports
        )
    )
    tempus_est = (
        est
        if cfg.dataflow == "tempus"
        else estimate_temporal_gemm(
            ctx.board,
            work,
            replace(cfg, dataflow="tempus", reuse_plan=None),
            pl=ctx.pl,
            ports=ports,
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
        "plio_padding_bytes": plio_padding_bytes(ctx.plan, layer),
        **_sparsity_extra(layer, stored, dense_bytes, dense_est.time_s / est.time_s),
    }
    return Cost(gemm_layer(layer.name, est), extra, work)


def graph_ports(plan: Plan) -> PortStreams | None:
    """The compiled graph's buffer ports of ``plan`` as the cost model streams them (every
    layer planned: :func:`codesign.aie.emit.port_bytes`), None without a block layer."""
    from codesign.aie.emit import port_bytes

    p = port_bytes(plan)
    return PortStreams(p.a, p.b, p.c) if p.a else None


def plio_padding_bytes(plan: Plan, layer: Layer) -> int:
    """Bytes block layer ``layer`` streams over the PLIOs beyond its own tiles, per graph run
    (per head for a batched product): each A, B and C tile padded to its whole buffer port (the
    graph's ports serve every layer: :func:`codesign.aie.emit.port_bytes`). The cost model's PLIO
    stage counts them."""
    from codesign.aie.emit import CSIZE, _block_context, port_bytes

    p = port_bytes(plan)
    if not p.a:
        return 0
    ctx = _block_context(plan, 0, layer, 0)  # the layer's tile and element types
    s = layer.schedule
    L, C, k_passes = s.block.cascade, s.block.chains, s.k_passes
    a = ctx["m"] * ctx["k"] * CSIZE[ctx["ta"]]
    b = ctx["k"] * ctx["n"] * CSIZE[ctx["tb"]]
    c = ctx["m"] * ctx["n"] * CSIZE[ctx["tout"]]
    per_step = L * (p.a - a) + C * L * (p.b - b)
    per_tile = k_passes * per_step + C * (p.c - c)
    return s.m_tiles * s.n_tiles * per_tile


def _weight_bytes(layer: GemmLayer) -> int:
    """Bytes of the weight as stored and streamed (values and positions when compressed)."""
    s = layer.schedule
    size = 2 if layer.weight.dtype == "bf16" else numpy_dtype(layer.weight.dtype).itemsize
    sp = layer.sparse
    if sp is None:
        return s.padded_K * s.padded_N * size
    slots = s.padded_K * s.padded_N // sp.m * sp.n
    return slots * size + -(-slots * numerics.nm_index_bits(sp.m) // 8)


def _sparsity_extra(layer: GemmLayer, stored: int, dense: int, gain: float) -> dict:
    """The report's per-layer sparsity figures: measured zeros and N:M pattern, the weight
    bytes streamed (compressed or dense) and the modelled gain of the compressed stream."""
    sp, ws = layer.sparse, layer.sparsity
    why = (
        f"{sp.n}:{sp.m} in K: streamed compressed, expanded by the N:M expander in the PL"
        if sp is not None
        else "dense"
    )
    return {
        "weight_zero_fraction": ws.zeros / ws.elements if ws and ws.elements else 0.0,
        "weight_nm": ws.nm if ws else "",
        "sparse_b": f"{sp.n}:{sp.m}" if sp is not None else "",
        "sparse_b_why": why,
        "weight_bytes": stored,
        "weight_bytes_dense": dense,
        "sparse_gain": gain,
    }


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
    if layer.sparse is not None:
        files.append(layer.sparse.index)
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
    # an N:M expander per weight type of the compressed layers: PL DMA -> expander -> PLIO
    widths = {"int8": 8, "uint8": 8, "int16": 16, "uint16": 16}
    for dtype in sorted({_expander_dtype(g) for g in layers if g.sparse is not None}):
        m = SPARSE_NM[1]
        specs.append(
            BlockSpec.of(
                "sparse_expander",
                n=SPARSE_NM[0],
                m=m,
                groups=max(1, beat_bits // (m * widths[dtype])),
                dtype=dtype,
            )
        )
    # the AIE-ML kernels, dispatch kernels, ADF graph and aie.cfg (codesign.aie.emit)
    return Emitted(blocks=tuple(specs), files=emit_aie_files(plan))


def _expander_dtype(g: GemmLayer) -> str:
    """The expander's lane type for a weight: bf16 moves as its 16 raw bits."""
    return "uint16" if g.weight.dtype == "bf16" else g.weight.dtype


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
