"""The table of ONNX lowerings: which (domain, op type) the frontend lowers, and how.

A lowering is ``fn(lw, node) -> None``: it emits the primitive KernelGraph ops for one ONNX node
through the lowering context ``lw`` (:class:`codesign.frontend.lower._Lowering`). The core ops
register in :mod:`codesign.frontend.lower`; a topic module (attention, norms, ...) registers its
own with :func:`lowering` and is imported by :mod:`codesign.frontend.lower`, so adding ops does
not mean editing one long table.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

#: (domain, op type) -> lowering; the default ONNX domain is "" ("ai.onnx" is folded into it)
_TABLE: dict[tuple[str, str], Callable[[Any, Any], None]] = {}


def _domain(domain: str) -> str:
    return "" if domain == "ai.onnx" else domain


def lowering(*op_types: str, domain: str = "") -> Callable:
    """Decorator: register the decorated function as the lowering of ``op_types`` in ``domain``.

    Registering an op twice is a bug in codesign and raises ValueError.
    """

    def register(fn: Callable[[Any, Any], None]) -> Callable[[Any, Any], None]:
        for op_type in op_types:
            key = (_domain(domain), op_type)
            if key in _TABLE:
                raise ValueError(f"ONNX op {key[0] or 'ai.onnx'}.{op_type} is lowered twice")
            _TABLE[key] = fn
        return fn

    return register


def find(domain: str, op_type: str) -> Callable[[Any, Any], None] | None:
    """The lowering of ``domain``.``op_type``, or None if the frontend does not lower it."""
    return _TABLE.get((_domain(domain), op_type))


def supported() -> list[str]:
    """Every lowered op as ``Op`` (default domain) or ``domain.Op``, sorted."""
    return sorted(f"{d}.{o}" if d else o for d, o in _TABLE)
