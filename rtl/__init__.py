"""RTL blocks for the programmable logic, written in Amaranth and emitted as Verilog.

Blocks (see :data:`codesign.rtl.spec.BLOCKS`): ``requantizer``, ``broadcaster``,
``mwq_decoder``, ``sparse_expander``. Each is an ``amaranth.lib.wiring.Component`` with
AXI4-Stream-style ports (:mod:`codesign.rtl.stream`), verified by the cocotb benches in
:mod:`codesign.rtl.bench` against :mod:`codesign.sim.numerics`.

Entry points: :class:`BlockSpec`, :func:`write_blocks` (Verilog + manifest into a build),
:func:`synthesize` (yosys figures), :func:`run_bench` (the cocotb bench of one block) and the
``verify`` click command in :mod:`codesign.rtl.cli`.
"""

from codesign.rtl.spec import BLOCKS, BlockSpec
from codesign.rtl.verilog import read_manifest, to_verilog, write_blocks

__all__ = ["BLOCKS", "BlockSpec", "read_manifest", "to_verilog", "write_blocks"]
