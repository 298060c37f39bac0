"""What is being estimated: a GEMM workload and the temporal block configuration that runs it.

Shapes follow the scheduler's conventions (see :mod:`codesign.cost.temporal`): a block of
``chains x cascade`` cores, per-core tile ``m x k x n``; one graph iteration produces one ``m x n``
output tile per chain; K larger than one pass (``cascade * k``) loops inside the iteration.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil

from codesign.errors import OptionError
from codesign.ir.dtypes import COMPUTE_MODES
from codesign.ir.tiling import tile_counts

#: element sizes in bytes: (A operand, B operand, output, accumulator lane), from the registry
DTYPE_BYTES: dict[str, tuple[int, int, int, int]] = {
    name: mode.bytes for name, mode in COMPUTE_MODES.items()
}

DATAFLOWS = ("tempus", "reuse")
#: Lowest clock (PL or AIE) a configuration may name.
MIN_CLOCK_MHZ = 1.0


def check_dtype(dtype: str) -> tuple[int, int, int, int]:
    """Element sizes of ``dtype``; :class:`OptionError` naming the known ones otherwise."""
    try:
        return DTYPE_BYTES[dtype]
    except KeyError:
        raise OptionError(f"dtype must be one of {', '.join(DTYPE_BYTES)}, not {dtype!r}") from None


@dataclass(frozen=True)
class GemmWorkload:
    """C[M, N] = A[M, K] @ B[K, N] in ``dtype`` (``int16x8``: int16 A, int8 B).

    ``b_ddr_ratio``: the bytes of B that leave DDR, as a fraction of the dense B (0.625 for an
    int8 weight, 0.5625 for bf16, stored 2:4-compressed, values and 2-bit positions, and expanded by the
    N:M expander in the PL before the PLIO; the PLIO and the cores still see dense B).
    """

    M: int
    K: int
    N: int
    dtype: str = "int16"
    b_ddr_ratio: float = 1.0

    def __post_init__(self) -> None:
        for name in ("M", "K", "N"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise OptionError(f"GEMM {name} must be a positive integer, not {v!r}")
        check_dtype(self.dtype)
        if not 0 < self.b_ddr_ratio <= 1:
            raise OptionError(f"b_ddr_ratio must lie in (0, 1], not {self.b_ddr_ratio!r}")

    @property
    def ops(self) -> int:
        """Useful operations, 2*M*K*N (a MAC counts two)."""
        return 2 * self.M * self.K * self.N

    @property
    def a_bytes(self) -> int:
        return self.M * self.K * DTYPE_BYTES[self.dtype][0]

    @property
    def b_bytes(self) -> int:
        return ceil(self.K * self.N * DTYPE_BYTES[self.dtype][1])  # int4: half a byte each

    @property
    def c_bytes(self) -> int:
        return self.M * self.N * DTYPE_BYTES[self.dtype][2]

    def label(self) -> str:
        return f"{self.M}x{self.K}x{self.N} {self.dtype}"


@dataclass(frozen=True)
class TemporalConfig:
    """A temporal block and how data reaches it.

    ``dataflow``: ``"tempus"`` streams host-replicated A and B tiles from DDR for every graph
    iteration (Tempus's policy); ``"reuse"`` keeps panels on chip (memory tiles, then PL URAM) so
    each operand leaves DDR fewer times. ``reuse_plan`` names the on-chip plan (see
    :mod:`codesign.cost.dataflow`); ``None`` lets the model pick the one moving fewest bytes.
    ``pl_clock_mhz`` / ``aie_clock_mhz`` ``None`` mean the board's clocks.
    """

    chains: int = 2
    cascade: int = 8
    tile_m: int = 64
    tile_k: int = 128
    tile_n: int = 64
    dataflow: str = "tempus"
    pl_clock_mhz: float | None = None
    plio_bits: int = 128
    aie_clock_mhz: float | None = None
    reuse_plan: str | None = None

    def __post_init__(self) -> None:
        for name in ("chains", "cascade", "tile_m", "tile_k", "tile_n", "plio_bits"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise OptionError(f"{name} must be a positive integer, not {v!r}")
        if self.dataflow not in DATAFLOWS:
            raise OptionError(
                f"dataflow must be one of {', '.join(DATAFLOWS)}, not {self.dataflow!r}"
            )
        for name in ("pl_clock_mhz", "aie_clock_mhz"):
            v = getattr(self, name)
            # below 1 MHz the modelled times overflow (a 1e-300 MHz clock was an OverflowError)
            if v is not None and not v >= MIN_CLOCK_MHZ:
                raise OptionError(f"{name} must be at least {MIN_CLOCK_MHZ:g} MHz, not {v!r}")

    @property
    def cores(self) -> int:
        return self.chains * self.cascade


@dataclass(frozen=True)
class Tiling:
    """The iteration space a config induces on a workload (all shapes padded up)."""

    m_tiles: int
    n_tiles: int
    k_passes: int
    iterations: int
    m_pad: int
    k_pad: int
    n_pad: int

    @staticmethod
    def of(w: GemmWorkload, c: TemporalConfig) -> Tiling:
        tc = tile_counts(w.M, w.K, w.N, c.chains, c.cascade, c.tile_m, c.tile_k, c.tile_n)
        return Tiling(
            m_tiles=tc.m_tiles,
            n_tiles=tc.n_tiles,
            k_passes=tc.k_passes,
            iterations=tc.iterations,
            m_pad=tc.padded_M,
            k_pad=tc.padded_K,
            n_pad=tc.padded_N,
        )
