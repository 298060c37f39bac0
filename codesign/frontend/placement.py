"""Where each ONNX node runs: the one decision ``codesign compile`` and ``codesign inspect`` share.

:func:`place` lowers the model (:mod:`codesign.frontend.lower`: a node without a lowering, or
whose lowering refuses its form, goes to a Host partition, :mod:`codesign.frontend.host`) and
runs the pass pipeline (:func:`codesign.passes.pipeline.to_hardware`). Primitive ops the passes
cannot map (:class:`~codesign.passes.pipeline.UnmappedOpsError`) send their ONNX nodes to the
Host too, and the model is lowered again with those nodes placed there; a pass that refuses a
layer's numbers (a quantisation it cannot compute exactly) stays an error, as it says what to
change in the model.

The result names, for every ONNX node, its unit: ``AIE``, ``PL`` (the plan-layer unit of the
kind that runs it, or of the layer it is fused into, found by the tensor that layer computes),
``Host``, ``view`` (a reshape, no work), ``folded`` (computed at compile time) or, for ``codesign inspect`` only (``keep_going``),
``refused`` with the reason.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import onnx

from codesign.errors import CodesignError, ModelError
from codesign.frontend.host import op_label
from codesign.frontend.lower import _Lowering
from codesign.ir.graph import KernelGraph
from codesign.ir.host import Host

#: how often the compile lowers again with more nodes on the Host before it gives up
MAX_ROUNDS = 4

_UNITS = {"aie": "AIE", "pl": "PL", "host": "Host", "none": "view"}


@dataclass(frozen=True)
class NodePlacement:
    """One ONNX node: its label (exporter name, or ``<Op #index>``), op type, unit and, for
    the Host and refusals, the reason."""

    name: str
    op_type: str
    unit: str
    reason: str = ""


@dataclass
class Placement:
    """The placed model: the hardware KernelGraph (None when a refusal stopped it), every
    node's placement in model order, and the error that stopped it (``keep_going`` only)."""

    kg: KernelGraph | None
    nodes: list[NodePlacement]
    error: str | None = None

    def host_nodes(self) -> list[NodePlacement]:
        return [n for n in self.nodes if n.unit == "Host"]

    def blockers(self) -> list[NodePlacement]:
        """Nodes that keep the model off the accelerator: on the Host, or refused."""
        return [n for n in self.nodes if n.unit in ("Host", "refused")]


def place(
    model: onnx.ModelProto,
    source: str = "model",
    *,
    debug: bool = False,
    keep_going: bool = False,
    to_hardware: Callable[..., KernelGraph] | None = None,
) -> Placement:
    """Lower and map ``model`` (checked and shape-inferred by ``load_model``), see the module
    docstring. Without ``keep_going`` every error propagates as the compile reports it."""
    if to_hardware is None:
        from codesign.passes.pipeline import to_hardware
    from codesign.passes.pipeline import UnmappedOpsError

    forced: set[str] = set()
    for _ in range(MAX_ROUNDS):
        lw = _Lowering(model, source, frozenset(forced), keep_going=keep_going)
        try:
            kg = lw.run()
        except CodesignError as e:
            if not keep_going:
                raise
            return Placement(None, _nodes(lw, None), str(e))
        try:
            to_hardware(kg, source=source, debug=debug)
        except UnmappedOpsError as e:
            more = {_owner(lw, name) for name in e.ops} - {None} - forced
            if not more:
                if not keep_going:
                    raise
                return Placement(None, _nodes(lw, None), str(e))
            forced |= more  # type: ignore[arg-type]
            continue
        except CodesignError as e:
            if not keep_going:
                raise
            refused = dict(lw.refused)
            m = re.search(r"node '([^']*)'", str(e))
            owner = _owner(lw, m.group(1)) if m else None
            if owner is not None:
                refused[owner] = str(e).split(": ", 1)[-1]
            return Placement(None, _nodes(lw, None, refused), None if owner else str(e))
        return Placement(kg, _nodes(lw, kg))
    raise ModelError(f"{source}: the Host partitioning did not settle in {MAX_ROUNDS} rounds")


def _owner(lw: _Lowering, op_name: str) -> str | None:
    """The label of the ONNX node a KernelGraph op came from: op names are the node's name or
    ``name/part``; the longest node name that prefixes it wins."""
    names = _names(lw)
    name = op_name
    while name:
        if name in names:
            return name
        if "/" not in name:
            return None
        name = name.rsplit("/", 1)[0]
    return None


def _names(lw: _Lowering) -> set[str]:
    cached = getattr(lw, "_placement_names", None)
    if cached is None:
        cached = {lw.host.label(n) for n in lw.model.graph}
        lw._placement_names = cached  # type: ignore[attr-defined]
    return cached


def _nodes(
    lw: _Lowering, kg: KernelGraph | None, refused: dict[str, str] | None = None
) -> list[NodePlacement]:
    from codesign.kinds import registry

    refused = lw.refused if refused is None else refused
    host: dict[str, str] = {}
    units: dict[str, list[str]] = {}
    made: dict[str, str] = {}  # tensor -> unit of the hardware op that computes it
    ops = kg.ops if kg is not None else lw.kg.ops
    for op in ops:
        if isinstance(op, Host):
            for n, r in zip(op.nodes, op.reasons, strict=True):
                host[n] = r
            continue
        if kg is None:
            continue
        try:
            unit = _UNITS.get(registry.for_op(op).layer.unit, "AIE")
        except LookupError:
            unit = "PL"
        made.update(dict.fromkeys(op.outputs, unit))
        owner = _owner(lw, op.name)
        if owner is not None and unit not in units.setdefault(owner, []):
            units[owner].append(unit)
    out = []
    for node in lw.model.graph:
        label = lw.host.label(node)
        op = op_label(node)
        if label in refused:
            out.append(NodePlacement(label, op, "refused", refused[label]))
        elif label in host:
            out.append(NodePlacement(label, op, "Host", host[label]))
        elif kg is None:
            out.append(NodePlacement(label, op, "accelerator"))
        elif label in units:
            us = units[label]
            work = [u for u in us if u != "view"] or us
            out.append(NodePlacement(label, op, "+".join(work)))
        else:
            # fused into a layer that computes its output (a bias Add, a requantising Q
            # folded into a GEMM), else folded at compile time (a weight's DequantizeLinear)
            fused = [made[v.name] for v in node.outputs if v is not None and v.name in made]
            out.append(NodePlacement(label, op, fused[0] if fused else "folded"))
    return out


def summary(nodes: Sequence[NodePlacement], limit: int = 6) -> str:
    """``LSTM '/lstm/LSTM', TopK 'topk0' (and 3 more)``: nodes for a one-line message."""
    shown = [f"{n.op_type} {n.name!r}" for n in nodes[:limit]]
    more = f" (and {len(nodes) - limit} more)" if len(nodes) > limit else ""
    return ", ".join(shown) + more
