"""Text from models and builds on the terminal: escaped for rich, one line per error.

Names in a model (nodes, outputs, op types) and in a build come from strangers. rich parses
``[...]`` as markup, so ``[/]`` in a name used to crash a finished compile, and a newline in an op
type could print a line that looks like codesign's own ``error:``. Everything that comes from
data goes through :func:`safe_text` (or :func:`safe_data` for a whole report) before rich sees
it, and every error goes through :func:`one_line`.
"""

from __future__ import annotations

import re
from typing import Any

from rich.markup import escape

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def one_line(text: object, limit: int = 1000) -> str:
    """``text`` as one line: control characters (newlines, escapes, carriage returns) shown as
    ``\\n``-style escapes, so data cannot start a line of its own; at most ``limit``
    characters."""
    s = _CONTROL.sub(lambda m: m[0].encode("unicode_escape").decode("ascii"), str(text))
    return s if len(s) <= limit else s[: limit - 3] + "..."


def safe_text(text: object) -> str:
    """``text`` from a model or build, ready for rich: one line and markup escaped."""
    return escape(one_line(text))


def safe_data(obj: Any) -> Any:
    """A copy of a JSON-like report with every string made safe for rich (:func:`safe_text`)."""
    if isinstance(obj, str):
        return safe_text(obj)
    if isinstance(obj, dict):
        return {safe_data(k): safe_data(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(safe_data(v) for v in obj)
    return obj


def error_line(e: BaseException) -> str:
    """The one line printed for an error (without the ``error:`` prefix)."""
    return one_line(e)


def os_error_line(e: OSError) -> str:
    """One line for an OSError that reached the CLI: the file and the system's reason."""
    name = e.filename if e.filename is not None else ""
    reason = e.strerror or str(e)
    return one_line(f"{name}: {reason}" if name else reason)
