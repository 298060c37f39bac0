"""codesign: compile quantized ONNX models onto AMD Versal AI Edge (AIE-ML + PL).

The package is split into rooms (see the README's architecture section): ``codesign.frontend``
reads ONNX, ``codesign.ir`` holds the KernelGraph, ``codesign.passes`` rewrites it,
``codesign.schedulers`` maps it onto the hardware, ``codesign.codegen`` writes a build,
``codesign.sim`` executes and models the build, ``codesign.boards`` holds the hardware data.
"""

__version__ = "0.1.0"
