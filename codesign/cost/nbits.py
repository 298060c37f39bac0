"""The cost of a MatMulNBits (block-quantised 4-bit weight) layer on the temporal block.

Two mappings are modelled, on the same block:

- ``int8x4``: the AIE-ML int8 x int4 mmul (512 MAC/cycle, native 4x16x8, REFERENCES.md s1) on
  int4 weights streamed at half a byte each (:func:`codesign.cost.estimate_temporal_gemm` with
  the ``int8x4`` compute mode), plus
  - the **per-block epilogue** on the cores: at every K block each output element's acc32 is
    converted to fp32, corrected by the zero point times the block's A row sum, multiplied by the
    product of the two scales and added to an fp32 running sum: :data:`EPILOGUE_OPS` vector
    operations per output element per K block, at the board's ``perf.fp32_vector_ops_per_cycle``
    per core (a derived figure, not a published one: the board file says so), not overlapped with
    the MACs (a conservative choice);
  - the **activation quantiser** in the PL: A streams in as float32, its per-block max-abs
    scale and int8 codes are formed on the way (a stream stage over A; its float32 read is
    counted in the stream, not overlapped).
- ``bf16``: the weight dequantised to bf16 (two bytes each) on the bf16 mmul (128 MAC/cycle).

Every figure is modelled (:data:`codesign.cost.MODELLED`), none measured.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from codesign.boards import Board
from codesign.cost.layers import LayerEstimate, estimate_stream_layer, gemm_layer
from codesign.cost.params import optional, perf_params
from codesign.cost.resources import PlUsage
from codesign.cost.temporal import GemmEstimate, estimate_temporal_gemm
from codesign.cost.workload import GemmWorkload, TemporalConfig
from codesign.errors import BoardError

#: fp32 vector operations per output element per K block in the block epilogue: int32 -> fp32
#: conversion, zero-point correction, scale product, multiply-add into the running sum
EPILOGUE_OPS = 4


@dataclass(frozen=True)
class NBitsEstimate:
    """The layer as modelled: the whole layer, and its parts (seconds)."""

    layer: LayerEstimate
    gemm: GemmEstimate
    epilogue_s: float
    quantizer_s: float
    weight_bytes: int


def epilogue_seconds(board: Board, M: int, N: int, k_blocks: int, cores: int) -> float:
    """Time of the int8 x int4 mode's per-block epilogue, spread over the block's cores."""
    rate = optional(board, "perf", "fp32_vector_ops_per_cycle")
    if rate is None:
        raise BoardError(
            f"board file {board.name}.json: perf.fp32_vector_ops_per_cycle must be set to model "
            "the MatMulNBits block epilogue, not null"
        )
    p = perf_params(board)
    return EPILOGUE_OPS * M * N * k_blocks / (float(rate) * cores * p.aie_clock_hz)


def estimate_nbits_gemm(
    board: Board,
    name: str,
    M: int,
    K: int,
    N: int,
    block_size: int,
    config: TemporalConfig,
    mode: str,
    *,
    pl: PlUsage | None = None,
) -> NBitsEstimate:
    """Model a MatMulNBits layer M x K x N with K blocks of ``block_size`` in ``mode``
    (``int8x4`` or ``bf16``) on the block and tile of ``config``."""
    dtype = "int8x4" if mode == "int8x4" else "bf16"
    work = GemmWorkload(M, K, N, dtype)
    est = estimate_temporal_gemm(board, work, config, pl=pl)
    layer = gemm_layer(name, est, kind="gemm_nbits")
    if mode != "int8x4":
        return NBitsEstimate(layer, est, 0.0, 0.0, work.b_bytes)
    k_blocks = math.ceil(K / block_size)
    epi = epilogue_seconds(board, M, N, k_blocks, config.cores)
    # the quantiser reads float32 A and writes int8 codes plus, per row and block, a float32
    # scale and an int32 row sum of the codes (for the zero-point correction)
    quant = estimate_stream_layer(
        board, f"{name}/quantize_a", M * K * 4, M * K + M * k_blocks * 8, from_ddr=False
    ).time_s
    breakdown = dict(layer.breakdown)
    breakdown["block_epilogue"] = epi
    breakdown["a_quantizer"] = quant
    # weight bytes: int4 codes (half a byte), fp32 scales and int8 zero points per (block, column)
    weight_bytes = work.b_bytes + k_blocks * N * (4 + 1)
    layer = replace(
        layer,
        time_s=layer.time_s + epi + quant,
        ops=layer.ops + EPILOGUE_OPS * M * N * k_blocks,
        breakdown=breakdown,
        detail={**layer.detail, "block_size": block_size, "k_blocks": k_blocks},
    )
    return NBitsEstimate(layer, est, epi, quant, weight_bytes)
