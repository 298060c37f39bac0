"""The int8 x int4 block GEMM: the KernelGraph op and the plan layer of MatMulNBits layers run
in the AIE-ML int8 x int4 mode (:mod:`codesign.kinds.nbits` registers the kind).

Arithmetic (:mod:`codesign.sim.numerics.nbits`): the float32 activation is quantised to int8 per
row and per K block (onnxruntime's accuracy_level 4), multiplied by the int4 weight codes
(``code - 8``) in the int8 x int4 mmul into one acc32 per K block, and the per-block epilogue
applies the zero-point correction and the two scales in float32.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from codesign.ir.graph import Op
from codesign.ir.plan import DataFile, Layer, TemporalSchedule


@dataclass(frozen=True)
class GemmNBits(Op):
    """inputs ``(a,)`` float32 [..., K]; output float32 [..., N].

    ``weight``: constant int8 [K, N] of int4 values (code - 8); ``scales``: float32
    [k_blocks, N]; ``zero``: int8 [k_blocks, N] of zero point - 8, or None when every zero point
    is the default 8; ``block_size``: the K block of the weight and of the activation scales.
    """

    weight: str = ""
    scales: str = ""
    zero: str | None = None
    block_size: int = 32
    kind: ClassVar[str] = "gemm_nbits"

    @property
    def refs(self) -> tuple[str, ...]:
        return tuple(n for n in (self.weight, self.scales, self.zero) if n)


@dataclass(frozen=True)
class NBitsGemmLayer(Layer):
    """A MatMulNBits layer on the AIE-ML block.

    ``mode`` ``int8x4`` (the int8 x int4 mmul with the per-block epilogue) or ``bf16`` (the
    dequantised weight on the bf16 mmul), chosen by the cost model: ``reason`` says why and
    ``alternative_s`` is the other mode's modelled time. ``weight`` is the int4 stream
    (``tempus.b4/1``, uint8 bytes, logical shape [K, N]) or the bf16 one (``tempus.b/1``);
    ``scales`` float32 [k_blocks, N]; ``zero`` int8 [k_blocks, N] or None; the schedule is the
    block's tile walk (its ``dtype`` is ``int8x4``)."""

    mode: str = "int8x4"
    reason: str = ""
    alternative_s: float = 0.0
    schedule: TemporalSchedule | None = None
    weight: DataFile | None = None
    scales: DataFile | None = None
    zero: DataFile | None = None
    block_size: int = 32
    kind: ClassVar[str] = "gemm_nbits"
    unit: ClassVar[str] = "aie"
