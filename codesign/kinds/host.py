"""The host kind: a partition of the ONNX graph run by onnxruntime on the board's ARM cores.

KernelGraph op :class:`~codesign.ir.host.Host` (made by :mod:`codesign.frontend.host`), plan
layer :class:`HostLayer`. The planner packs the partition's ONNX model as plan data by content
(``host/<partition>.onnx``, written into the build by the data writer like every data file);
the executor runs it with onnxruntime (:class:`codesign.runtime.onnxhost.HostSession`, one
thread, the session cached per layer for the run); the cost is the ARM compute plus the
transfers at the partition's boundary (:func:`codesign.cost.host.estimate_host_partition`,
modelled); the emitter writes ``host/partitions.json``, the index the board's host program reads
(file, inputs, outputs and nodes of each partition).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from codesign.cost.host import estimate_host_partition
from codesign.ir.data import sha256
from codesign.ir.graph import TensorType, numpy_dtype
from codesign.ir.host import Host
from codesign.ir.plan import DataFile, Layer, Plan
from codesign.kinds.registry import (
    Cost,
    Emitted,
    LayerMemory,
    OpKind,
    no_output_scale,
    register,
)

if TYPE_CHECKING:
    from codesign.report.plan_report import CostContext
    from codesign.schedulers.planner import PlanContext
    from codesign.sim.functional import Simulator
    from codesign.sim.plan_check import PlanChecker

#: where a build keeps the Host partitions' models and their index
HOST_DIR = "host"


@dataclass(frozen=True)
class HostLayer(Layer):
    """A Host partition: ``model`` is its ONNX model (raw bytes, dtype uint8); ``nodes``,
    ``op_types`` and ``reasons`` name its ONNX nodes, their op types and why each is on the
    Host; ``flops`` is the frontend's modelled operation count."""

    model: DataFile | None = None
    nodes: tuple[str, ...] = ()
    op_types: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()
    flops: int = 0
    kind: ClassVar[str] = "host"
    unit: ClassVar[str] = "host"


def _file_name(name: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", name.removeprefix("host_")).strip("_.") or "partition"
    return f"{HOST_DIR}/{stem[:120]}.onnx"


def plan(ctx: PlanContext, op: Host) -> HostLayer:
    """The layer, with the partition's model packed by content (no file written)."""
    digest = sha256(op.model)
    ctx.packer.blobs.setdefault(digest, op.model)
    model = DataFile(path=_file_name(op.name), dtype="uint8", shape=(len(op.model),), sha256=digest)
    for name in op.inputs:  # a partition input folded to a constant by the passes
        if name and ctx.kg.is_const(name):
            ctx.constant(name)
    return HostLayer(
        op.name,
        op.inputs,
        op.outputs,
        model=model,
        nodes=op.nodes,
        op_types=op.op_types,
        reasons=op.reasons,
        flops=op.flops,
    )


def execute(sim: Simulator, layer: HostLayer, args: list) -> tuple[np.ndarray, ...]:
    """Run the partition's model with onnxruntime (session made once per layer and run)."""
    from codesign.runtime.onnxhost import HostSession

    key = f"host-session:{layer.name}:{layer.model.sha256}"
    session = sim.cache.get(key)
    if session is None:
        data = sim.data(layer.model)
        session = sim.cache[key] = HostSession(layer.name, np.asarray(data).tobytes())
    feeds = {}
    for name, x in zip(layer.inputs, args, strict=True):
        feeds[name] = np.ascontiguousarray(x)
    got = session.run(feeds)
    out = []
    for name in layer.outputs:
        spec = sim.plan.tensor(name)
        out.append(np.asarray(got[name]).astype(numpy_dtype(spec.dtype), copy=False))
    return tuple(out)


def check(ck: PlanChecker, layer: HostLayer) -> None:
    """A model file of raw bytes held by the plan or the build, at least one output, and one
    op type and reason per node."""
    if layer.model is None:
        ck.fail("a Host partition must name its ONNX model file")
    ck.datafile(layer.model, "Host partition model")
    if layer.model.dtype != "uint8" or len(layer.model.shape) != 1:
        ck.fail("the Host partition model must be 1-D uint8 bytes")
    ck.file_elements(layer.model, layer.model.shape[0], "Host partition model")
    if not layer.outputs:
        ck.fail("a Host partition must have at least one output")
    if not layer.nodes or not len(layer.nodes) == len(layer.op_types) == len(layer.reasons):
        ck.fail("a Host partition must list its nodes with one op type and reason each")
    if layer.flops < 0:
        ck.fail(f"flops must be >= 0, not {layer.flops}")


def _nbytes(plan: Plan, name: str) -> int:
    t = plan.value_spec(name)
    return TensorType(tuple(t.shape), t.dtype).nbytes


def cost(ctx: CostContext, stage: list[HostLayer]) -> Cost:
    """ARM compute and boundary transfers, modelled (:mod:`codesign.cost.host`)."""
    (layer,) = stage
    plan = ctx.plan
    bytes_in = sum(_nbytes(plan, t) for t in layer.inputs if t and t not in plan.constants)
    bytes_out = sum(_nbytes(plan, t) for t in layer.outputs)
    est = estimate_host_partition(
        ctx.board, layer.name, layer.flops, bytes_in, bytes_out, kind="host:onnxruntime"
    )
    return Cost(est, extra={"host_nodes": list(layer.nodes)})


def memory(plan: Plan, layer: HostLayer) -> LayerMemory:
    """The model bytes as read, onnxruntime's copy of the model and its initializers (twice
    the bytes, an upper-bound-minded guess), and the partition's inputs and outputs as copies."""
    size = layer.model.shape[0] if layer.model is not None else 0
    io = sum(
        math.prod(plan.value_spec(t).shape) * numpy_dtype(plan.value_spec(t).dtype).itemsize
        for t in (*layer.inputs, *layer.outputs)
        if t
    )
    return LayerMemory(files=(size,), cached=2 * size, transient=4 * io)


def emit(plan: Plan, layers: list[HostLayer]) -> Emitted:
    """``host/partitions.json``: for each partition, in plan order, its model file, inputs,
    outputs and ONNX nodes, for the board's host program (the model files themselves are plan
    data, written with the other data files)."""
    index = {
        "schema": "codesign.host/1",
        "runtime": "onnxruntime (CPUExecutionProvider)",
        "partitions": [
            {
                "name": layer.name,
                "model": layer.model.path if layer.model is not None else None,
                "sha256": layer.model.sha256 if layer.model is not None else None,
                "inputs": list(layer.inputs),
                "outputs": list(layer.outputs),
                "nodes": [
                    {"name": n, "op_type": o, "reason": r}
                    for n, o, r in zip(layer.nodes, layer.op_types, layer.reasons, strict=True)
                ],
            }
            for layer in layers
        ],
    }
    text = json.dumps(index, indent=2, sort_keys=True) + "\n"
    return Emitted(files=((f"{HOST_DIR}/partitions.json", text.encode()),))


KIND = register(
    OpKind(
        name="host",
        op=Host,
        layer=HostLayer,
        plan=plan,
        execute=execute,
        check=check,
        cost=cost,
        memory=memory,
        emit=emit,
        output_scale=no_output_scale,
    )
)
