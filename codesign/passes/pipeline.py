"""The pass pipeline: primitive KernelGraph (frontend output) -> hardware KernelGraph.

:data:`PIPELINE` declares the passes and their order, in one place. Every pass follows the
contract of :mod:`codesign.passes.base`: it rewrites the graph in place, returns whether it
changed anything, and leaves a graph that passes :meth:`KernelGraph.validate` and computes the
same numbers (up to the rounding each rule documents). :func:`to_hardware` runs them and checks
that only hardware ops remain.
"""

from __future__ import annotations

from codesign.errors import ModelError, UnsupportedError
from codesign.ir.graph import KernelGraph
from codesign.passes.attention import AttentionProducts
from codesign.passes.base import Pass, run_passes
from codesign.passes.epilogue import FoldEpilogue
from codesign.passes.float import FloatGemm
from codesign.passes.fold import FoldConstants, Prune
from codesign.passes.heads import PruneHeads
from codesign.passes.primitives import LowerPrimitives
from codesign.passes.quant import QuantGemm
from codesign.passes.shrink import ShrinkGemms


class UnmappedOpsError(UnsupportedError):
    """Primitive ops the passes could not map to the hardware; ``ops`` names every one of them
    (KernelGraph op names: the ONNX node's name, or ``node/part`` for a part of one), so the
    compile can place their ONNX nodes on the Host and lower again."""

    def __init__(self, message: str, ops: tuple[str, ...]) -> None:
        super().__init__(message)
        self.ops = ops


#: The passes :func:`to_hardware` runs, in order.
PIPELINE: tuple[Pass, ...] = (
    QuantGemm(),  # QDQ MatMul / MatMulInteger -> integer GEMM
    AttentionProducts(),  # activation x activation products, the transposes around them
    Prune(),  # drop the weight dequantisations the fusions consumed before folding constants
    FoldConstants(),
    FloatGemm(),  # before the epilogue, which folds a bias / ReLU into bf16 GEMMs too
    FoldEpilogue(),  # bias, ReLU, requantisation -> the GEMM
    LowerPrimitives(),  # Q / DQ left over -> vector ops
    PruneHeads(),  # pruned attention heads (all-zero rows of O) leave Q/K/V, products, O
    ShrinkGemms(),  # pruned neurons (all-zero weight columns / rows) leave the GEMMs
    FoldConstants(),
    Prune(),
)


def _registered(op: object) -> bool:
    from codesign.kinds import registry

    return any(k.op is type(op) for k in registry.kinds())


def to_hardware(
    kg: KernelGraph,
    source: str = "model",
    *,
    debug: bool = False,
    passes: tuple[Pass, ...] = PIPELINE,
) -> KernelGraph:
    """Rewrite a primitive KernelGraph into hardware ops (Gemm, Vector, Reshape, and the Host
    partitions the frontend made), in place.

    Primitive ops left over raise :class:`UnmappedOpsError` naming every one of them.

    A rule that finds the model's values unusable raises :class:`ModelError`; its message gets
    ``source`` (the model file) in front. With ``debug``, the graph is validated after every
    pass (see :func:`codesign.passes.base.run_passes`).
    """
    try:
        run_passes(kg, passes, debug=debug)
    except ModelError as e:
        raise type(e)(f"{source}: {e}") from None
    # a hardware op is one whose type a registered kind (codesign.kinds) plans
    unmapped = [op for op in kg.ops if not _registered(op)]
    if unmapped:
        op = unmapped[0]
        more = f" (and {len(unmapped) - 1} more)" if len(unmapped) > 1 else ""
        raise UnmappedOpsError(
            f"{source}: node {op.name!r} ({type(op).__name__}){more} could not be mapped to the "
            "hardware: its weight must be a constant of a supported integer or float type",
            tuple(o.name for o in unmapped),
        )
    for t in kg.outputs:
        if kg.is_const(t):
            raise UnsupportedError(
                f"{source}: graph output {t!r} is a constant; nothing to compute"
            )
    kg.validate()
    return kg
