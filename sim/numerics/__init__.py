"""The one definition of codesign's arithmetic.

Everything that computes numbers the hardware computes (the functional simulator, the cocotb
benches of the RTL blocks, the HLS csim and the AIE x86 runs) is checked bit for bit against the
functions here, and these functions are checked against onnxruntime.

Conventions:

- Integer tensors are numpy integer arrays; functions never silently change their width except
  where the docstring says so.
- AIE-ML accumulators (acc32) are two's-complement 32-bit lanes that wrap on overflow. Because
  wrap-around addition is associative, the result of a GEMM does not depend on the order in which
  the cascade adds its partial sums.
- Requantisation is ``saturate(round_shift(acc * multiplier, shift) + zero_point)`` with a 31-bit
  fixed-point multiplier (gemmlowp/TFLite style), computed in 64 bits. The rounding modes are the
  AIE-ML SRS modes (see :data:`ROUNDING_MODES`).
- ONNX QuantizeLinear/DequantizeLinear follow the ONNX spec in float32 (round half to even).
- bf16 is float32 with the low 16 bits cleared after round-to-nearest-even.
"""

from __future__ import annotations

from codesign.sim.numerics.batched import (
    BATCHED_INT_MODES,
    recentre,
    zero_point_correction,
)
from codesign.sim.numerics.bf16 import (
    cascade_add_f32,
    mac_partial_bf16,
    to_bf16,
)
from codesign.sim.numerics.gemm import (
    ACCUMULATOR_BITS,
    acc_preshift,
    accumulate,
    gemm_epilogue_bf16,
    gemm_epilogue_int,
    int_matmul,
    mac_partial_int,
    reference_gemm_bf16,
    reference_gemm_int,
    relu,
    relu_f32,
)
from codesign.sim.numerics.integer import (
    EXACT_F32,
    EXACT_F64,
    INT_DTYPES,
    int_range,
    quantize_multiplier,
    requantize,
    saturate,
    wrap_int32,
)
from codesign.sim.numerics.mwq import (
    MWQCode,
    mwq_dequantize,
    mwq_encode,
    mwq_integer_scales,
    mwq_reconstruct,
)
from codesign.sim.numerics.quantize import (
    dequantize_linear,
    dynamic_quantize_linear,
    quantize_linear,
)
from codesign.sim.numerics.rounding import (
    ROUNDING_MODES,
    RoundingMode,
    round_shift,
)
from codesign.sim.numerics.sparsity import (
    nm_compress,
    nm_expand,
    nm_index_bits,
    nm_prune,
)

__all__ = [
    "ACCUMULATOR_BITS",
    "BATCHED_INT_MODES",
    "EXACT_F32",
    "EXACT_F64",
    "INT_DTYPES",
    "MWQCode",
    "ROUNDING_MODES",
    "RoundingMode",
    "acc_preshift",
    "accumulate",
    "cascade_add_f32",
    "dequantize_linear",
    "dynamic_quantize_linear",
    "gemm_epilogue_bf16",
    "gemm_epilogue_int",
    "int_matmul",
    "int_range",
    "mac_partial_bf16",
    "mac_partial_int",
    "mwq_dequantize",
    "mwq_encode",
    "mwq_integer_scales",
    "mwq_reconstruct",
    "nm_compress",
    "nm_expand",
    "nm_index_bits",
    "nm_prune",
    "quantize_linear",
    "quantize_multiplier",
    "recentre",
    "reference_gemm_bf16",
    "reference_gemm_int",
    "relu",
    "relu_f32",
    "requantize",
    "round_shift",
    "saturate",
    "to_bf16",
    "wrap_int32",
    "zero_point_correction",
]
