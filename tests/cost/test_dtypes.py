"""The dtype registry (codesign.ir.dtypes) against numpy, and the tables derived from it."""

import numpy as np
import pytest

from codesign.cost.workload import DTYPE_BYTES
from codesign.ir.dtypes import COMPUTE_MODES, DTYPES, dtype
from codesign.ir.graph import TensorType, numpy_dtype
from codesign.sim.numerics import int_range


@pytest.mark.parametrize("name", [n for n, d in DTYPES.items() if d.integer and d.bits >= 8])
def test_integer_ranges_match_numpy(name):
    info = np.iinfo(DTYPES[name].numpy)
    assert DTYPES[name].range == (int(info.min), int(info.max))
    assert DTYPES[name].signed == (info.min < 0)


def test_sub_byte_and_derived_tables():
    assert dtype("int4").range == (-8, 7) and dtype("uint4").range == (0, 15)
    assert int_range("int4") == (-8, 7)
    assert TensorType((3,), "int4").nbytes == 2 and TensorType((3,), "int64").nbytes == 24
    assert TensorType((3,), "bf16").nbytes == 6 and numpy_dtype("bf16") == np.float32
    assert {n: m.bytes for n, m in COMPUTE_MODES.items()} == DTYPE_BYTES
    assert DTYPE_BYTES["int16x8"] == (2, 1, 2, 4)
    with pytest.raises(ValueError, match="dtype must be one of"):
        dtype("int3")
    with pytest.raises(ValueError):
        _ = dtype("bf16").range
