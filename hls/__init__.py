"""The PL side of a build: Vitis HLS C++ from Jinja2 templates, and its x86 check.

- :mod:`codesign.hls.pl`: stream names, the DDR arena and the text of every HLS file (GEMM
  movers and tilers, vector units, the sequencer kernel), a pure function of the Plan;
- ``templates/``: the Jinja2 templates; ``include/``: the x86 ``ap_int.h`` and
  ``hls_stream.h`` g++ compiles the kernels against;
- :mod:`codesign.hls.nl_math`: ``nl_math.h``, the nonlinear arithmetic of
  :mod:`codesign.sim.numerics.nonlinear` in scalar C++ (copied into builds; PL and AIE units
  include it);
- :mod:`codesign.hls.check`: ``check_hls``, which compiles and runs the kernels on the
  simulator's tensors and compares every byte.

Contracts: docs/pl_streams.md.
"""
