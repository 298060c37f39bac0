"""The cost of a Host partition: ONNX nodes run by onnxruntime on the board's ARM cores.

Modelled, not measured. A partition costs

- its **compute** on the ARM cores: the frontend's modelled operation count (multiply-adds count
  two; element-wise ops a weight per element, see :func:`codesign.frontend.host.node_flops`)
  over the board's measured host throughput ``ps.host_gflops`` (a PyTorch fp32 GEMM on the
  dual Cortex-A72; the board file gives the source), and
- the **transfers** at its boundary: every tensor it reads leaves the accelerator for DDR and
  every tensor it writes comes back (bytes over the achieved DDR bandwidth), plus one hand-off
  of the XRT run (``perf.run_overhead_s``: the host waits for the accelerator's run to finish
  before it starts, and starts the next one after).

The three add up (they are sequential: the ARM cores wait for the data, the accelerator for the
ARM cores). The board's ARM core count and clock (``ps.arm_cores``, ``ps.arm_clock_mhz``) are
reported beside the figures, for scale.
"""

from __future__ import annotations

from codesign.boards import Board
from codesign.cost.layers import LayerEstimate
from codesign.cost.params import optional, perf_params, required
from codesign.cost.power import estimate_power


def estimate_host_partition(
    board: Board, name: str, flops: int, bytes_in: int, bytes_out: int, *, kind: str = "host"
) -> LayerEstimate:
    """The modelled time of one Host partition (see the module docstring); unit ``host``."""
    gflops = float(required(board, "ps", "host_gflops"))
    p = perf_params(board)
    t_cpu = max(flops, 0) / (gflops * 1e9)
    moved = bytes_in + bytes_out
    t_transfer = moved / p.ddr_bytes_s
    t_handoff = p.run_overhead_s
    time_s = max(t_cpu + t_transfer + t_handoff, 1e-9)
    parts = {"host": t_cpu, "transfer": t_transfer, "handoff": t_handoff}
    bound = max(parts, key=lambda k: parts[k])
    power = estimate_power(board, active_cores=0, ddr_bytes_s=moved / time_s)
    return LayerEstimate(
        name=name,
        kind=kind,
        unit="host",
        time_s=time_s,
        ops=max(flops, 0),
        ddr_bytes=moved,
        bound=bound,
        power=power,
        breakdown=parts,
        critical_path={"launch": t_handoff, "fill": t_transfer, "steady": t_cpu},
        detail={
            "host_gflops": gflops,
            "arm_cores": optional(board, "ps", "arm_cores"),
            "arm_clock_mhz": optional(board, "ps", "arm_clock_mhz"),
            "transfer_bytes_in": bytes_in,
            "transfer_bytes_out": bytes_out,
            "transfer_s": t_transfer,
            "handoff_s": t_handoff,
            "compute_s": t_cpu,
        },
    )


__all__ = ["estimate_host_partition"]
