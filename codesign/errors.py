"""One exception hierarchy for everything codesign reports to its user.

Each error carries the process exit code the CLI uses:

- 2: user error (bad model, bad option, impossible fit): :class:`CodesignError` and subclasses;
- 3: fidelity check failed (the simulated hardware disagrees with the reference): :class:`FidelityError`;
- 1: anything else is an internal error (a bug), reported with a request to file it.

Messages name the file, node, tensor or option and say what was expected, in the form
"X must be Y, not Z", on one line.
"""

from __future__ import annotations


class CodesignError(Exception):
    """A problem with the user's input: model, option, board or build directory."""

    exit_code = 2


class ModelError(CodesignError):
    """The ONNX model is malformed, unsafe or uses something codesign cannot lower."""


class UnsupportedError(ModelError):
    """The model uses an op, dtype or attribute codesign does not support (yet)."""


class OptionError(CodesignError):
    """A command-line option or API argument has a value that cannot work."""


class BoardError(CodesignError):
    """An unknown board or a board file that is malformed."""


class FitError(CodesignError):
    """The design does not fit on the board (memory, cores, PLIOs, PL resources)."""


class MemoryLimitError(CodesignError):
    """The host does not have the memory an operation would need (checked before it starts)."""


class BuildError(CodesignError):
    """A build directory is missing, incomplete, or would be clobbered."""


class FidelityError(CodesignError):
    """The simulated result differs from the reference beyond the documented tolerance."""

    exit_code = 3
