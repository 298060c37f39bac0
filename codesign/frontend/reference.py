"""onnxruntime as the reference: run the original model on the same inputs.

The default optimisation level is ``basic``: onnxruntime then executes a QDQ graph as written
(dequantise, float op, quantise), which is the ONNX semantics. At ``all`` it fuses QDQ patterns
into integer kernels; on x86 CPUs without VNNI those use ``vpmaddubsw``, whose int16 pair
saturation (u8 x s8 pairs above 32767) departs from the ONNX semantics by tens of LSBs on
full-range weights (seen on this project's AVX2 machines), so ``all`` is available but is not the
default.
"""

from __future__ import annotations

import os

import numpy as np

from codesign.errors import BuildError, ModelError
from codesign.fileio import read_in, scratch_environment
from codesign.frontend.load import MAX_MODEL_BYTES

OPT_LEVELS = ("disable", "basic", "extended", "all")


def run_onnxruntime(
    model: str | os.PathLike[str], inputs: dict[str, np.ndarray], opt_level: str = "basic"
) -> dict[str, np.ndarray]:
    """Outputs of onnxruntime (CPU, one thread, optimisation ``opt_level``) by output name.

    The model file (a build's ``model.onnx``) is read once without following a symlink and
    must be a regular file (never a FIFO: see :func:`codesign.fileio.read_in`); onnxruntime gets
    its bytes, not the path. onnxruntime's telemetry events are turned off, and it is imported
    and run with HOME, TMPDIR and XDG_CACHE_HOME in a temporary directory removed afterwards
    (its telemetry database and session file are written at import), so the reference run
    writes nothing to the user's cache or temp directory.
    """
    path = os.fspath(model)
    data = read_in(
        os.path.dirname(path) or ".",
        os.path.basename(path),
        max_bytes=MAX_MODEL_BYTES,
        error=BuildError,
    )
    # onnxruntime writes a telemetry database under XDG_CACHE_HOME and a file in TMPDIR when
    # it is imported: keep both in a temporary directory removed afterwards
    with scratch_environment():
        return _run(data, path, inputs, opt_level)


def _run(data: bytes, model: str, inputs: dict[str, np.ndarray], opt_level: str) -> dict:
    import onnxruntime as ort

    if hasattr(ort, "disable_telemetry_events"):
        ort.disable_telemetry_events()

    levels = {
        "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }
    opts = ort.SessionOptions()
    opts.graph_optimization_level = levels[opt_level]
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    try:
        sess = ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])
        names = [o.name for o in sess.get_outputs()]
        feed = {i.name: inputs[i.name] for i in sess.get_inputs()}
        values = sess.run(names, feed)
    except Exception as e:
        raise ModelError(
            f"{model}: onnxruntime could not run the reference: {' '.join(str(e).split())[:300]}"
        ) from None
    return dict(zip(names, values, strict=True))
