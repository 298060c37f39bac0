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
- Block-quantised 4-bit weights (MatMulNBits) and the int8 x int4 block GEMM: :mod:`.nbits`.
- Nonlinear functions (exp, erf, tanh, sigmoid, rsqrt, reciprocal, softmax, norms, GELU, SiLU)
  are fp32 approximations with stated error bounds (:mod:`codesign.sim.numerics.nonlinear`).
"""

from __future__ import annotations

from codesign.sim.numerics.batched import (
    BATCHED_INT_MODES,
    recentre,
    zero_point_correction,
)
from codesign.sim.numerics.bf16 import (
    CASCADE_COLUMNS,
    cascade_add_f32,
    cascade_columns,
    cascade_gemm_bf16,
    cascade_mac_bf16,
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
    wrap,
    wrap_int32,
)
from codesign.sim.numerics.mwq import (
    MWQCode,
    mwq_dequantize,
    mwq_encode,
    mwq_integer_scales,
    mwq_reconstruct,
)
from codesign.sim.numerics.nbits import (
    INT4_OFFSET,
    block_epilogue,
    block_rowsums,
    dequantize_nbits,
    int4_from_nibbles,
    pack_nibbles,
    quantize_a_blocks,
    reference_nbits_int8,
    unpack_nibbles,
)
from codesign.sim.numerics.nonlinear import (
    OPS_PER_ELEMENT,
    div_f32,
    erf_f32,
    exp_f32,
    gelu_f32,
    layernorm_f32,
    reciprocal_f32,
    rmsnorm_f32,
    row_mean_f32,
    row_sum_f32,
    rsqrt_f32,
    sigmoid_f32,
    silu_f32,
    softmax_f32,
    sqrt_f32,
    tanh_f32,
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
    NM_PATTERNS,
    best_nm,
    nm_compress,
    nm_expand,
    nm_index_bits,
    nm_prune,
    nm_satisfied,
)

__all__ = [
    "ACCUMULATOR_BITS",
    "BATCHED_INT_MODES",
    "EXACT_F32",
    "EXACT_F64",
    "INT4_OFFSET",
    "INT_DTYPES",
    "MWQCode",
    "NM_PATTERNS",
    "OPS_PER_ELEMENT",
    "ROUNDING_MODES",
    "RoundingMode",
    "acc_preshift",
    "accumulate",
    "best_nm",
    "block_epilogue",
    "block_rowsums",
    "CASCADE_COLUMNS",
    "cascade_add_f32",
    "cascade_columns",
    "cascade_gemm_bf16",
    "dequantize_linear",
    "dequantize_nbits",
    "div_f32",
    "dynamic_quantize_linear",
    "erf_f32",
    "exp_f32",
    "gelu_f32",
    "gemm_epilogue_bf16",
    "gemm_epilogue_int",
    "int4_from_nibbles",
    "int_matmul",
    "int_range",
    "layernorm_f32",
    "cascade_mac_bf16",
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
    "nm_satisfied",
    "pack_nibbles",
    "quantize_a_blocks",
    "quantize_linear",
    "quantize_multiplier",
    "recentre",
    "reciprocal_f32",
    "reference_gemm_bf16",
    "reference_gemm_int",
    "reference_nbits_int8",
    "relu",
    "relu_f32",
    "requantize",
    "rmsnorm_f32",
    "round_shift",
    "row_mean_f32",
    "row_sum_f32",
    "rsqrt_f32",
    "saturate",
    "wrap",
    "sigmoid_f32",
    "silu_f32",
    "softmax_f32",
    "sqrt_f32",
    "tanh_f32",
    "to_bf16",
    "unpack_nibbles",
    "wrap_int32",
    "zero_point_correction",
]
