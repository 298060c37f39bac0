"""Op kinds as registered units: one module per kind registers everything about it.

:mod:`codesign.kinds.registry` defines the :class:`~codesign.kinds.registry.OpKind` record and
the lookups the shared drivers use. Importing this package registers the built-in kinds
(:mod:`~codesign.kinds.gemm`, :mod:`~codesign.kinds.vector`, :mod:`~codesign.kinds.reshape`,
:mod:`~codesign.kinds.nonlinear`, :mod:`~codesign.kinds.rownorm`, :mod:`~codesign.kinds.transpose`,
:mod:`~codesign.kinds.batched_matmul`, :mod:`~codesign.kinds.host`, :mod:`~codesign.kinds.movement`).
A new kind is one more module that calls :func:`~codesign.kinds.registry.register`, plus its
tests.
"""

from codesign.kinds import (  # noqa: F401  (registration)
    batched_matmul,
    gemm,
    host,
    movement,
    nbits,
    nonlinear,
    reshape,
    rownorm,
    transpose,
    vector,
)
from codesign.kinds.registry import (
    Cost,
    Emitted,
    LayerMemory,
    OpKind,
    UnregisteredKind,
    kinds,
    register,
    unregister,
)

__all__ = [
    "Cost",
    "Emitted",
    "LayerMemory",
    "OpKind",
    "UnregisteredKind",
    "kinds",
    "register",
    "unregister",
]
