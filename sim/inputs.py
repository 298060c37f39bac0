"""Seeded random inputs for a plan: what ``codesign simulate`` without ``--inputs``, the
Python API's ``Build.simulate()`` and a build's golden/ data run on.

Floats are standard normal. Integers are drawn as a tokenizer and a padding mask would give
them where the plan shows what they are, and uniform over the dtype elsewhere:

- an input that gathers read as indices (token ids): uniform over the rows every such gather
  can index (:func:`codesign.kinds.movement.index_bound`);
- an input read only as a truth value (a Cast to bool, lowered to ``nonzero``: an
  ``attention_mask``): 0 or 1.
"""

from __future__ import annotations

import numpy as np

from codesign.ir.graph import numpy_dtype
from codesign.ir.plan import Plan


def _truth_value_only(plan: Plan, name: str) -> bool:
    readers = [layer for layer in plan.layers if name in layer.inputs]
    return bool(readers) and all(getattr(r, "fn", None) == "nonzero" for r in readers)


def random_inputs(plan: Plan, seed: int = 0) -> dict[str, np.ndarray]:
    """Deterministic inputs for every graph input of ``plan`` (module doc), by name."""
    from codesign.kinds.movement import index_bound

    rng = np.random.default_rng(seed)
    out = {}
    for t in plan.inputs:
        dt = numpy_dtype(t.dtype)
        if not np.issubdtype(dt, np.integer):
            out[t.name] = rng.standard_normal(t.shape).astype(dt)
            continue
        rows = index_bound(plan, t.name)
        if rows is not None:
            out[t.name] = rng.integers(0, rows, size=t.shape).astype(dt)
        elif _truth_value_only(plan, t.name):
            out[t.name] = rng.integers(0, 2, size=t.shape).astype(dt)
        else:
            info = np.iinfo(dt)
            out[t.name] = rng.integers(info.min, info.max, size=t.shape, endpoint=True).astype(dt)
    return out
