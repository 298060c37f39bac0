"""AIE-ML kernels of the nonlinear layers the cost model places on the block (``placement``
"aie"): row functions of the ``rownorm`` kind (softmax, LayerNorm, RMSNorm, ReduceMean) and the
unary float functions of the ``nonlinear`` kind (exp, erf, tanh, sigmoid, sqrt, reciprocal,
GELU, SiLU). The arithmetic is ``nl_math.h`` (codesign.hls, the scalar C++ of
:mod:`codesign.sim.numerics.nonlinear`), copied next to the kernels; nothing here defines a
function a second time.

The layout contract (the AIE kernels, the PL sequencer step of
:mod:`codesign.hls.aie_nonlinear` and both x86 checks follow it):

- The layer's input is viewed as ``R`` rows of ``N`` fp32 values (the last axis; a scalar is one
  row of one); the output as ``R`` rows of ``NO`` values (``NO = 1`` for ReduceMean, else ``N``).
- Every core of the block (chain ``c``, cascade position ``l``; C chains x L positions) computes
  ``q`` whole rows per graph iteration; iteration ``t`` (of ``T = ceil(R / (C*L*q))``) gives core
  (c, l) the rows ``t*C*L*q + (c*L + l)*q + s``, ``s < q`` (rows past ``R`` are zero padding).
- In over the A PLIOs, as the cost model assumes (:mod:`codesign.cost.nonlinear`): per
  iteration ``a_{l}`` carries the ``C*q`` rows of position ``l`` (chain c's ``q`` rows at row
  ``c*q`` of the tile), row-major fp32; the PL broadcasts it to every chain and each core takes
  its chain's rows.
- The layer's parameters (gamma, then beta, ``N`` fp32 each, when the layer has them) go to
  every core over its B PLIO ``b_{c}_{l}``, once per iteration (the core's B buffer; the
  parameters are constants, so no model bandwidth is counted for them).
- Out over the C PLIOs: per iteration ``c_{c}`` carries chain c's ``L*q`` output rows (position
  ``l``'s at row ``l*q``: rows ``t*C*L*q + c*L*q ...``, contiguous), fp32.
- The cascade brings every position's rows to the last core without the cores knowing their
  position: every non-first core reads ``L-1`` slots of ``q*NO`` values and every non-last core
  writes ``L-1`` slots: its own rows first, then the slots it read except the last (the first
  core pads with zeros). The last core so reads positions ``L-2, ..., 0`` and writes them to
  its C buffer in position order, then its own. fp32 values cross the cascade bit-exactly
  (accfloat lanes hold them; acc32/acc64 lanes hold their bits as int32, shift 0).
- Control: per iteration each chain's record (docs/pl_streams.md) is
  ``[layer, t, T, c, 0...]``: the plan layer index, the iteration, the iteration count and the
  chain's index in the ``za`` word (a core learns its chain from it; it has no other word).

``q`` is as many rows as fit the graph's buffers made for the GEMMs (A: ``C*q*N``, C: ``L*q*NO``
values), at least 1 (the graph's buffers grow to one row per core when a row does not fit) and
no more than the layer needs. The kernels run in the first accumulator group of the block
(:func:`codesign.aie.emit.graph_context`; its cascade type carries the rows).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from codesign.boards import load as load_board
from codesign.hls.nl_math import NL_MATH_H, epsilon_literal, nl_math_source  # noqa: F401
from codesign.ir.plan import Layer, Plan

#: the AIE-placed nonlinear functions with a kernel: the nl_math.h call of each
ROW_FUNCTIONS = {
    "softmax": "nl_softmax_row",
    "layernorm": "nl_layernorm_row",
    "rmsnorm": "nl_rmsnorm_row",
    "reducemean": "nl_row_mean",
}
ELEMENT_FUNCTIONS = {
    "exp": "nl_exp",
    "erf": "nl_erf",
    "tanh": "nl_tanh",
    "sigmoid": "nl_sigmoid",
    "sqrt": "nl_sqrt",
    "reciprocal": "nl_reciprocal",
    "silu": "nl_silu",
    "gelu": "nl_gelu",
}
#: bits of one accumulator lane of each AIE API accumulator tag (a cascade word carries the
#: board's ``aie.cascade_bits`` of them)
LANE_BITS = {"acc32": 32, "accfloat": 32, "acc64": 64}
#: fp32 bytes
F32 = 4
#: the build's copy of nl_math.h beside the kernels (:mod:`codesign.hls.nl_math`)
NL_MATH = NL_MATH_H


def has_kernel(layer: Layer) -> bool:
    """Whether ``layer`` is an AIE-placed nonlinear layer this module generates a kernel for."""
    if getattr(layer, "placement", None) != "aie":
        return False
    if layer.kind == "rownorm":
        return layer.fn in ROW_FUNCTIONS
    if layer.kind == "nonlinear":
        return layer.fn in ELEMENT_FUNCTIONS
    return False


def block_layers(plan: Plan) -> list[tuple[int, Layer]]:
    """(plan layer index, layer) of every layer with a kernel here, in plan order."""
    return [(i, layer) for i, layer in enumerate(plan.layers) if has_kernel(layer)]


def rows_of(plan: Plan, layer: Layer) -> tuple[int, int, int]:
    """(R, N, NO): rows, input row length and output row length of the layer."""
    shape = tuple(plan.value_spec(layer.inputs[0]).shape)
    n = shape[-1] if shape else 1
    rows = math.prod(shape[:-1]) if shape else 1
    return rows, n, 1 if layer.fn == "reducemean" else n


def _call(layer: Layer, params: list[str], eps: str | None) -> tuple[str, bool]:
    """The C++ statement computing one row ``x`` into ``y`` and whether it is element-wise."""
    if layer.kind == "nonlinear":
        fn = ELEMENT_FUNCTIONS[layer.fn]
        if layer.fn == "gelu" and dict(layer.attrs).get("approximate", "none") == "tanh":
            fn = "nl_gelu_tanh"
        return f"codesign_nl::{fn}(x[i])", True
    gamma = "params" if params else "nullptr"
    beta = "params + N" if len(params) > 1 else "nullptr"
    if layer.fn == "softmax":
        return "codesign_nl::nl_softmax_row(x, y, N)", False
    if layer.fn == "layernorm":
        return f"codesign_nl::nl_layernorm_row(x, {gamma}, {beta}, {eps}, y, N)", False
    if layer.fn == "rmsnorm":
        return f"codesign_nl::nl_rmsnorm_row(x, {gamma}, {eps}, y, N)", False
    return "y[0] = codesign_nl::nl_row_mean(x, N)", False


def layer_contexts(
    plan: Plan, a_bytes: int, c_bytes: int, tag: str, kernel_prefix: str
) -> list[dict[str, Any]]:
    """Template values of every AIE-placed nonlinear layer with a kernel (see the module
    docstring), for the graph whose GEMM buffers hold ``a_bytes`` (A) and ``c_bytes`` (C), in
    accumulator group ``tag``. Layers equal in every compiled constant share a kernel
    (``<kind><v>``, ``v`` in first-use order per kind)."""
    C, L = plan.block.chains, plan.block.cascade
    lanes = load_board(plan.board).aie.cascade_bits // LANE_BITS[tag]
    out: list[dict[str, Any]] = []
    keys: dict[tuple, str] = {}
    counts: dict[str, int] = {}
    for index, layer in block_layers(plan):
        R, N, NO = rows_of(plan, layer)
        fit = min(a_bytes // (C * N * F32), c_bytes // (L * NO * F32))
        q = max(1, min(fit, -(-R // (C * L))))
        params = [n for n in layer.inputs[1:] if n]
        eps = epsilon_literal(layer.attrs)
        call, elementwise = _call(layer, params, eps)
        key = (layer.kind, call, N, NO, q, len(params), tag)
        if key not in keys:
            v = counts.get(layer.kind, 0)
            counts[layer.kind] = v + 1
            keys[key] = f"{layer.kind}{v}"
        fn = keys[key]
        out.append(
            {
                "index": index,
                "name": layer.name,
                "kind": layer.kind,
                "fn_name": layer.fn,
                "fn": fn,
                "header": f"{fn}.h",
                "rows": R,
                "n": N,
                "n_out": NO,
                "q": q,
                "iterations": -(-R // (C * L * q)),
                "params": params,
                "call": call,
                "elementwise": elementwise,
                "tag": tag,
                "kernel_prefix": kernel_prefix,
                "lanes": lanes,
                "chains": C,
                "cascade": L,
                "a_bytes": C * q * N * F32,
                "b_bytes": max(1, len(params)) * N * F32,
                "c_bytes": L * q * NO * F32,
            }
        )
    return out


def kernel_contexts(layers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One context per shared kernel (the first member's, the members' names joined)."""
    seen: dict[str, dict[str, Any]] = {}
    for ctx in layers:
        if ctx["fn"] in seen:
            seen[ctx["fn"]]["layer_names"].append(ctx["name"])
        else:
            seen[ctx["fn"]] = {**ctx, "layer_names": [ctx["name"]]}
    return list(seen.values())


def stream_rows(ctx: dict[str, Any]) -> dict[str, np.ndarray]:
    """The row numbers of the layer's A and C tiles in the contract's order: ``a`` [T, L, C*q]
    (the rows ``a_{l}`` carries in iteration t) and ``c`` [T, C, L*q] (the rows ``c_{c}``
    carries); -1 marks a padding row."""
    C, L, q, T = ctx["chains"], ctx["cascade"], ctx["q"], ctx["iterations"]
    rows = np.arange(T * C * L * q).reshape(T, C, L, q)  # row of (t, c, l, s)
    rows = np.where(rows < ctx["rows"], rows, -1)
    a = rows.transpose(0, 2, 1, 3).reshape(T, L, C * q)
    c = rows.reshape(T, C, L * q)
    return {"a": a, "c": c}


def gather(values: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Rows of ``values`` (R x W fp32) at ``index`` (any shape; -1 gives a zero row)."""
    width = values.shape[-1]
    padded = np.concatenate([values.astype(np.float32), np.zeros((1, width), np.float32)])
    return padded[np.where(index < 0, len(values), index)]


def render_kernel(
    ctx: dict[str, Any], positions: tuple[str, ...], model: str
) -> list[tuple[str, bytes]]:
    """The kernel files of one shared kernel (``aie/kernels/<fn>.cc`` and ``.h``)."""
    from codesign.aie.emit import comment_safe, render

    shown = ", ".join(comment_safe(n) for n in ctx["layer_names"][:4])
    if len(ctx["layer_names"]) > 4:
        shown += f" and {len(ctx['layer_names']) - 4} more"
    values = {**ctx, "layer": shown, "positions": positions, "model": comment_safe(model)}
    return [
        (f"aie/kernels/{ctx['fn']}.cc", render("nonlinear_kernel.cc.j2", **values)),
        (f"aie/kernels/{ctx['fn']}.h", render("nonlinear_kernel.h.j2", **values)),
    ]


def emit_kernels(plan: Plan, kind: str) -> list[tuple[str, bytes]]:
    """The AIE kernel files of the plan's AIE-placed layers of ``kind`` (the kind's ``emit``)."""
    from codesign.aie.emit import gemm_layers, graph_context

    if not gemm_layers(plan) or not any(layer.kind == kind for _, layer in block_layers(plan)):
        return []
    gctx = graph_context(plan)
    files: list[tuple[str, bytes]] = []
    for ctx in kernel_contexts([c for c in gctx["nl_layers"] if c["kind"] == kind]):
        files += render_kernel(ctx, gctx["positions"], plan.model or "the model")
    return files
