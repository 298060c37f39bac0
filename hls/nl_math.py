"""The scalar C++ of the nonlinear arithmetic (``nl_math.h``), shared by PL and AIE kernels.

``nl_math.h`` (shipped in this package, namespace ``codesign_nl``) computes bit for bit what
:mod:`codesign.sim.numerics.nonlinear` computes: element-wise ``nl_exp``, ``nl_reciprocal``,
``nl_div``, ``nl_rsqrt``, ``nl_sqrt``, ``nl_erf``, ``nl_tanh``, ``nl_sigmoid``, ``nl_gelu``,
``nl_gelu_tanh``, ``nl_silu`` (``float -> float``), ``nl_bf16_round``, and per row of ``n``
floats ``nl_row_sum``, ``nl_row_max``, ``nl_row_mean``, ``nl_softmax_row(x, y, n)``,
``nl_layernorm_row(x, gamma, beta, eps, y, n)``, ``nl_rmsnorm_row(x, gamma, eps, y, n)``
(gamma/beta may be null). A build carries a verbatim copy (``hls/nl_math.h``; AIE kernels copy
it beside theirs), so there is one C++ text of the arithmetic. Checked by
``tests/hls/test_nl_math.py`` (a g++ probe against the simulator over edge cases) and, per
layer, by ``codesign check``.
"""

from __future__ import annotations

import math
from importlib import resources

import numpy as np

#: the header's file name, in the package and in a build's hls/ (and aie/) directory
NL_MATH_H = "nl_math.h"


def nl_math_source() -> bytes:
    """The bytes of ``nl_math.h`` (to write into a build unchanged)."""
    return resources.files("codesign.hls").joinpath(NL_MATH_H).read_bytes()


def float_literal(x: float) -> str:
    """The exact C++ literal (hex float) of the fp32 value nearest ``x``, as numpy's
    ``float32(x)`` rounds it: the constants the generated kernels pass to ``nl_math.h``."""
    v = float(np.float32(x))
    if math.isnan(v) or math.isinf(v):
        raise ValueError(f"{x!r} has no finite float literal")
    return f"{v.hex()}f"


def epsilon_literal(attrs: tuple) -> str | None:
    """The fp32 literal of a norm layer's ``epsilon`` attribute (the frontend writes it into
    every LayerNorm/RMSNorm layer); None for a layer without one (softmax, reducemean)."""
    eps = dict(attrs).get("epsilon")
    return None if eps is None else float_literal(float(eps))
