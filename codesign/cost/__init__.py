"""codesign.cost: the physics-based performance, resource and power model.

Every figure it produces is modelled (labelled so), calibrated on published Versal measurements
(see :mod:`codesign.cost.calibration`). Public API:

- :class:`GemmWorkload`, :class:`TemporalConfig`, :func:`estimate_temporal_gemm` -> :class:`GemmEstimate`
- :func:`choose_temporal_config` -> :class:`Choice` (best block/tile/dataflow when not given)
- :func:`estimate_stream_layer`, :func:`estimate_host_layer` -> :class:`LayerEstimate`
- :func:`gemm_layer` (a GemmEstimate as a LayerEstimate), :func:`temporal_layer` (estimate + wrap),
  :func:`summarize` -> :class:`ModelEstimate`
- :class:`ResourceUsage`, :class:`PlUsage`, :func:`require_fit`, :func:`capacities`
- :func:`estimate_power` -> :class:`PowerEstimate`
"""

from codesign.cost.choose import Choice, choose_temporal_config
from codesign.cost.layers import (
    LayerEstimate,
    ModelEstimate,
    estimate_host_layer,
    estimate_stream_layer,
    gemm_layer,
    summarize,
    temporal_layer,
)
from codesign.cost.power import PowerEstimate, estimate_power
from codesign.cost.resources import Capacity, PlUsage, ResourceUsage, capacities, require_fit
from codesign.cost.temporal import MODELLED, GemmEstimate, estimate_temporal_gemm
from codesign.cost.workload import GemmWorkload, TemporalConfig

__all__ = [
    "MODELLED",
    "Capacity",
    "Choice",
    "GemmEstimate",
    "GemmWorkload",
    "LayerEstimate",
    "ModelEstimate",
    "PlUsage",
    "PowerEstimate",
    "ResourceUsage",
    "TemporalConfig",
    "capacities",
    "choose_temporal_config",
    "estimate_host_layer",
    "estimate_power",
    "estimate_stream_layer",
    "estimate_temporal_gemm",
    "gemm_layer",
    "require_fit",
    "summarize",
    "temporal_layer",
]
