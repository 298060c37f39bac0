"""The dtype registry: every element type and compute mode codesign knows, in one place.

:data:`DTYPES` gives each tensor element type its width, signedness, numpy storage and value
range; :data:`COMPUTE_MODES` gives each GEMM compute mode its operand, output and accumulator
element types and sizes. The IR, the cost model, the scheduler and the numerics read these
instead of keeping their own tables. Imports nothing of codesign's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class DType:
    """One element type. ``storage``: the numpy dtype that holds its values (int4 in int8, bf16
    in float32); ``integer`` False for floating types (no saturation range)."""

    name: str
    bits: int
    signed: bool
    integer: bool
    storage: str

    @property
    def numpy(self) -> np.dtype:
        return np.dtype(self.storage)

    @property
    def range(self) -> tuple[int, int]:
        """Inclusive (min, max) of an integer type; ValueError for a floating type."""
        if not self.integer:
            raise ValueError(f"{self.name} is not an integer dtype")
        if self.signed:
            return -(2 ** (self.bits - 1)), 2 ** (self.bits - 1) - 1
        return 0, 2**self.bits - 1

    def nbytes(self, size: int) -> int:
        """Bytes of ``size`` packed elements (sub-byte types rounded up to whole bytes)."""
        return (size * self.bits + 7) // 8


#: Element types by name, in the IR's order.
DTYPES: dict[str, DType] = {
    d.name: d
    for d in (
        DType("float32", 32, True, False, "float32"),
        DType("bf16", 16, True, False, "float32"),
        DType("int4", 4, True, True, "int8"),
        DType("uint4", 4, False, True, "uint8"),
        DType("int8", 8, True, True, "int8"),
        DType("uint8", 8, False, True, "uint8"),
        DType("int16", 16, True, True, "int16"),
        DType("uint16", 16, False, True, "uint16"),
        DType("int32", 32, True, True, "int32"),
        DType("int64", 64, True, True, "int64"),
    )
}


def dtype(name: str) -> DType:
    """The registered element type ``name``; ValueError naming the known ones otherwise."""
    try:
        return DTYPES[name]
    except KeyError:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, not {name!r}") from None


@dataclass(frozen=True)
class ComputeMode:
    """A GEMM compute mode: A and B operand types, the output type, the accumulator lane bytes."""

    name: str
    a: str
    b: str
    out: str
    acc_bytes: int

    @property
    def bytes(self) -> tuple[float, float, float, int]:
        """(A, B, output, accumulator) bytes per element; a sub-byte operand (int4) counts its
        fraction of a byte (0.5), whole-byte types an int."""

        def size(name: str) -> float:
            bits = DTYPES[name].bits
            return bits // 8 if bits % 8 == 0 else bits / 8

        return (size(self.a), size(self.b), size(self.out), self.acc_bytes)


#: GEMM compute modes by name (``int16x8``: int16 A, int8 B; ``int8x4``: int8 A, int4 B, the
#: AIE-ML mode MatMulNBits weights run in). Accumulators: acc32 for 8/16-bit
#: integers, acc64 for int32, fp32 for floating modes (AM020, AIE API).
COMPUTE_MODES: dict[str, ComputeMode] = {
    m.name: m
    for m in (
        ComputeMode("int8", "int8", "int8", "int8", 4),
        ComputeMode("int16", "int16", "int16", "int16", 4),
        ComputeMode("int16x8", "int16", "int8", "int16", 4),
        ComputeMode("int8x4", "int8", "int4", "int8", 4),
        ComputeMode("bf16", "bf16", "bf16", "bf16", 4),
        ComputeMode("int32", "int32", "int32", "int32", 8),
        ComputeMode("fp32", "float32", "float32", "float32", 4),
    )
}

#: AIE API accumulator tag of each GEMM dtype on the block (AM020: int8 -> acc32, int16 ->
#: acc64, bf16 -> fp32). A cascade carries one accumulator type, so the block layers of each tag
#: run on a kernel group of their own (``chains x cascade`` cores each: codesign.aie.emit)
ACC_TAG = {"int8": "acc32", "int16": "acc64", "bf16": "accfloat"}
