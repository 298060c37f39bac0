"""The board's host runtime for Host partitions: onnxruntime on a partition's ONNX model.

A Host partition (:class:`codesign.ir.host.Host`) is a self-contained ONNX model that the board's
ARM cores run with onnxruntime; the simulator runs it the same way, on the x86 host, with the
CPU execution provider, one thread and the ``basic`` optimisation level (the ONNX semantics as
written, see :mod:`codesign.frontend.reference`).

This module and :mod:`codesign.frontend` are the only ones that import onnxruntime (the
import-linter contract in pyproject.toml names this exception): it runs a model's bytes and
never parses or builds ONNX (that stays in the frontend, the only importer of onnx / onnx-ir).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from codesign.errors import BuildError
from codesign.fileio import scratch_environment


class HostSession:
    """One onnxruntime session of a partition's model (``data``, the ONNX bytes), made once and
    run many times; ``name`` names the partition in errors."""

    def __init__(self, name: str, data: bytes) -> None:
        self.name = name
        # onnxruntime writes a telemetry database and a temp file when it is imported and when
        # its first session starts: keep both in a temporary directory removed afterwards
        with scratch_environment():
            import onnxruntime as ort

            if hasattr(ort, "disable_telemetry_events"):
                ort.disable_telemetry_events()
            opts = ort.SessionOptions()
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
            opts.intra_op_num_threads = 1
            opts.inter_op_num_threads = 1
            opts.log_severity_level = 3
            try:
                self._sess: Any = ort.InferenceSession(
                    data, opts, providers=["CPUExecutionProvider"]
                )
            except Exception as e:
                raise BuildError(
                    f"Host partition {name!r}: onnxruntime cannot load its model: {_short(e)}"
                ) from None
        self.inputs = [i.name for i in self._sess.get_inputs()]
        # the accelerator carries ONNX BOOL as uint8 0/1 (the nonlinear kind's masks): a
        # partition's bool inputs get their bool view back
        self._bool = {i.name for i in self._sess.get_inputs() if i.type == "tensor(bool)"}
        self.outputs = [o.name for o in self._sess.get_outputs()]

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The partition's outputs by name, for ``feeds`` by input name."""
        missing = [n for n in self.inputs if n not in feeds]
        if missing:
            raise BuildError(f"Host partition {self.name!r}: no value for input {missing[0]!r}")
        try:
            values = self._sess.run(
                self.outputs,
                {n: feeds[n] != 0 if n in self._bool else feeds[n] for n in self.inputs},
            )
        except Exception as e:
            raise BuildError(
                f"Host partition {self.name!r}: onnxruntime failed: {_short(e)}"
            ) from None
        return dict(zip(self.outputs, values, strict=True))


def library() -> Path | None:
    """The onnxruntime shared library this process runs Host partitions with (the onnxruntime
    package's ``capi/libonnxruntime.so.*``), for C++ that calls its C API; None without one."""
    from importlib.util import find_spec

    spec = find_spec("onnxruntime")
    if spec is None or spec.origin is None:
        return None
    found = sorted((Path(spec.origin).parent / "capi").glob("libonnxruntime.so.*"))
    return found[-1] if found else None


def _short(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return text[:300] + ("..." if len(text) > 300 else "")


__all__ = ["HostSession", "library"]
