"""Size limits every stage enforces on tensors (the frontend on models, the simulator on plans)."""

from __future__ import annotations

#: Largest dimension accepted anywhere in a shape.
MAX_DIM = 2**31 - 1
#: Largest number of elements of one tensor (activation, weight or constant).
MAX_ELEMENTS = 2**32
