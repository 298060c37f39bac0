"""codesign: compile quantized ONNX models onto AMD Versal AI Edge (AIE-ML + PL).

The Python API (:mod:`codesign.api`)::

    import codesign
    build = codesign.compile("model.onnx", board="vek280", block="2x8", shapes={"x": (1, 128)})
    outputs = build.simulate({"x": x})
    report = build.report()
    build.save("build/")
    build = codesign.load_build("build/")

The package is split into rooms (see the README's architecture section): ``codesign.frontend``
reads ONNX, ``codesign.ir`` holds the KernelGraph and the Plan, ``codesign.passes`` rewrites the
graph, ``codesign.kinds`` registers everything about each op kind, ``codesign.schedulers`` maps
the graph onto the hardware (pure), ``codesign.cost`` models it, ``codesign.sim`` executes it,
``codesign.codegen`` writes a build, ``codesign.boards`` holds the hardware data.
"""

from codesign.api import Build, compile, load_build
from codesign.version import __version__

__all__ = ["Build", "__version__", "compile", "load_build"]
