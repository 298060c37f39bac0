"""The Host op: a partition of the ONNX graph that runs on the board's ARM cores (onnxruntime).

The frontend makes one :class:`Host` op per connected run of ONNX nodes the accelerator does not
take (no lowering, or a lowering that refuses the node's form). The op carries the partition as
a self-contained serialised ONNX model (``model``: its nodes, their value infos, the constants
they read as initializers and the opset imports), so nothing downstream needs the original model
or imports onnx: the planner packs the bytes as plan data, the simulator runs them with
onnxruntime, the build writer stores them as ``host/<partition>.onnx``.

Pure (``codesign.ir`` only), like the rest of the IR.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from codesign.ir.graph import Op


@dataclass(frozen=True)
class Host(Op):
    """inputs: the tensors the partition reads from the rest of the graph (never constants:
    those are initializers of ``model``); outputs: the tensors it gives back.

    ``nodes`` are the ONNX node labels in the partition (the exporter's node name, or
    ``<OpType #index>`` for an unnamed node), ``op_types`` their ONNX op types (``domain.Op``
    outside the default domain) and ``reasons`` why each one is on the Host, index by index;
    ``flops`` is the frontend's modelled operation count of the partition (for the cost model).
    """

    nodes: tuple[str, ...] = ()
    op_types: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()
    model: bytes = b""
    flops: int = 0
    kind: ClassVar[str] = "host"


__all__ = ["Host"]
