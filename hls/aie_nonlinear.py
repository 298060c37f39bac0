"""The PL sequencer step of a nonlinear layer placed on the AIE-ML block (``placement`` "aie").

``hls/l<i>_<name>.h`` defines ``<ident>_run(arena, a..., b..., c..., rtp...)``, which the
sequencer calls in plan order like a GEMM's: it streams the layer's input rows over ``a_*``, its
parameters (gamma/beta) over ``b_*``, the control records over ``rtp_*``, and writes the rows
coming back on ``c_*`` into the arena. Stream order and records: :mod:`codesign.aie.nonlinear`
(the one statement of the contract). :func:`expected_streams` is what the sequencer check wants
on each stream.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from codesign.aie import nonlinear as aie_nl
from codesign.aie.emit import (
    CONTROL_HEADER_WORDS,
    gemm_layers,
    port_bytes,
    shared_graph_context,
)
from codesign.hls import pl
from codesign.ir.plan import Plan


def contexts(plan: Plan) -> dict[int, dict[str, Any]]:
    """The AIE contexts of the plan's AIE-placed nonlinear layers with a kernel, by plan layer
    index (empty without a GEMM block to run them on)."""
    if not gemm_layers(plan) or not aie_nl.block_layers(plan):
        return {}
    shared = shared_graph_context(plan)  # computed once per plan: every PL file asks
    assert shared is not None  # the plan has GEMMs, so a block
    return {c["index"]: c for c in shared["nl_layers"]}


def step_context(plan: Plan, ctx: dict[str, Any]) -> dict[str, Any]:
    """What ``block_nonlinear.h.j2`` needs for one layer."""
    regions, _ = pl.arena(plan)
    layer = plan.layers[ctx["index"]]
    streams_a, streams_b, streams_c = pl.stream_names(plan)
    return {
        **ctx,
        "p": pl.ident(ctx["index"], layer.name),
        "name": re.sub(r"[^A-Za-z0-9_.-]", "_", layer.name),
        "x": regions[layer.inputs[0]],
        "y": regions[layer.outputs[0]],
        "param_regions": [regions[n] for n in ctx["params"]],
        "a_streams": streams_a,
        "b_streams": streams_b,
        "c_streams": pl.c_names(plan, layer),  # its group's (group 0)
        "c_all": streams_c,
        "rtp_streams": pl.rtp_names(plan),
        "epi_words": pl.epilogue_words(plan),
        "ctl_header": CONTROL_HEADER_WORDS,
        # whole buffer ports (pl.port_beats): rows then zeros; B zeros without parameters (the
        # kernel fires only on a full B buffer); C: the rows, then dropped values
        **dict(zip(("a_beats", "b_beats", "c_beats"), pl.port_beats(plan), strict=True)),
    }


def emit_steps(plan: Plan, kind: str) -> list[tuple[str, bytes]]:
    """``hls/<ident>.h`` of each AIE-placed layer of ``kind`` with a kernel."""
    files = []
    for ctx in contexts(plan).values():
        if ctx["kind"] == kind:
            s = step_context(plan, ctx)
            files.append((f"hls/{s['p']}.h", pl.render("block_nonlinear.h.j2", **s)))
    return files


def emit(plan: Plan, kind: str) -> tuple[tuple[str, bytes], ...]:
    """Every file of the AIE-placed layers of ``kind``: the AIE kernels and the PL steps."""
    return (*aie_nl.emit_kernels(plan, kind), *emit_steps(plan, kind))


def _beats(tiles: np.ndarray, nbytes: int) -> bytes:
    """fp32 tiles [count, values] as little-endian bytes, each tile zero-padded to ``nbytes``
    (a whole buffer port of the block: :func:`codesign.aie.emit.port_bytes`)."""
    rows = np.ascontiguousarray(tiles, dtype="<f4")
    rows = rows.reshape(rows.shape[0], int(np.prod(rows.shape[1:]))).view(np.uint8)
    return np.pad(rows, ((0, 0), (0, nbytes - rows.shape[1]))).tobytes()


def expected_streams(
    plan: Plan, ctx: dict[str, Any], x: np.ndarray, y: np.ndarray, params: list[np.ndarray]
) -> dict[str, bytes]:
    """The bytes the layer puts on (a_*, b_*, rtp_*) and takes from (c_*) each stream, for
    input ``x``, output ``y`` and parameter values ``params``; padding rows are zero on A and C
    (the PL drops C's padding rows, so any value would do there)."""
    ports = port_bytes(plan)
    T = ctx["iterations"]
    R, N, NO = ctx["rows"], ctx["n"], ctx["n_out"]
    idx = aie_nl.stream_rows(ctx)
    xs = np.asarray(x, np.float32).reshape(R, N)
    ys = np.asarray(y, np.float32).reshape(R, NO)
    a_tiles = aie_nl.gather(xs, idx["a"])  # [T, L, C*q, N]
    c_tiles = aie_nl.gather(ys, idx["c"])  # [T, C, L*q, NO]
    out: dict[str, bytes] = {}
    for l, name in enumerate(pl.stream_names(plan)[0]):  # noqa: E741
        out[name] = _beats(a_tiles[:, l].reshape(T, -1), ports.a)
    b = pl.stream_names(plan)[1]
    if params:
        vec = np.concatenate([np.asarray(p, np.float32).reshape(-1) for p in params])
    else:  # no parameters: the B buffers still fill (zeros), or the kernels would not fire
        vec = np.zeros(0, np.float32)
    tile = _beats(np.tile(vec, (T, 1)), ports.b)
    for name in b:
        out[name] = tile
    for c, name in enumerate(pl.c_names(plan, plan.layers[ctx["index"]])):  # its group's
        out[name] = _beats(c_tiles[:, c].reshape(T, -1), ports.c)
    words = pl.epilogue_words(plan)
    for c, name in enumerate(pl.rtp_names(plan)):
        rec = np.zeros((T, CONTROL_HEADER_WORDS + words), dtype="<u4")
        rec[:, 0], rec[:, 1], rec[:, 2], rec[:, 3] = ctx["index"], np.arange(T), T, c
        out[name] = rec.tobytes()
    return out
