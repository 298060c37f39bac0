"""The Plan: what a build executes, layer by layer, serialised as build/schedule.json.

A Plan is self-contained: with the files it names under the build directory, the functional
simulator runs it without the ONNX model. Every class here is a frozen dataclass; :func:`to_json`
and :func:`from_json` convert a Plan to and from the versioned JSON document described in
``docs/schedule.md``.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import types
import typing
from dataclasses import dataclass, field
from typing import Any, ClassVar

SCHEMA = "codesign.schedule/1"


@dataclass(frozen=True)
class TensorSpec:
    """A named tensor with a static shape and KernelGraph dtype."""

    name: str
    shape: tuple[int, ...]
    dtype: str


@dataclass(frozen=True)
class DataFile:
    """A raw little-endian array of the plan, addressed by ``sha256`` (of its stored bytes).

    In memory the bytes are in :attr:`Plan.data` under ``sha256``; in a build they are the file
    at ``path``, relative to the build directory.

    ``layout`` says in what order the elements are stored (``"row-major"`` or a stream layout
    defined by a scheduler, e.g. ``"tempus.b/1"``); ``dtype`` is the stored dtype (bf16 is stored
    as its 16 raw bits).
    """

    path: str
    dtype: str
    shape: tuple[int, ...]
    sha256: str
    layout: str = "row-major"


@dataclass(frozen=True)
class Block:
    """The fixed compute block: ``chains`` cascade chains of ``cascade`` cores each."""

    chains: int
    cascade: int

    @property
    def cores(self) -> int:
        return self.chains * self.cascade

    def __str__(self) -> str:
        return f"{self.chains}x{self.cascade}"


@dataclass(frozen=True)
class Tile:
    """The per-core tile: each core multiplies an m x k tile of A by a k x n tile of B."""

    m: int
    k: int
    n: int

    def __str__(self) -> str:
        return f"{self.m}x{self.k}x{self.n}"


@dataclass(frozen=True)
class SolverReport:
    """How a solver reached its answer: status, objective, and the fallback if one was used.

    No wall time is recorded: the plan must be byte-identical for the same inputs.
    """

    solver: str
    status: str
    objective: int
    fallback: str | None = None


@dataclass(frozen=True)
class TemporalSchedule:
    """A GEMM M x K x N on the temporal block (see :mod:`codesign.schedulers.tempus`).

    Output tiles are walked as ``graph_iterations = m_tiles * n_tiles`` graph iterations in
    ``order`` ("m-outer": the N tile index varies fastest); each iteration runs ``k_passes``
    passes over K through the cascade. Dimensions are padded up to ``padded_*``.
    ``block_cycles`` is the reported cost model's time of the whole GEMM in AIE cycles
    (:func:`codesign.cost.estimate_temporal_gemm` on this block, tile and dataflow: compute,
    cascade, PLIO, DDR and launch); ``dataflow`` ("tempus" or "reuse") and ``reuse_plan`` say how
    the operands reach the block. Tile and dataflow are that model's choice
    (:func:`codesign.cost.tiles.search_tile`: CP-SAT narrows with a proven lower bound, the model
    decides); ``solver.objective`` is CP-SAT's proven lower bound of that time in 0.1 ps units
    (:data:`codesign.solvers.tiling.UNIT_S`), not the time itself.
    """

    M: int
    K: int
    N: int
    dtype: str
    native: tuple[int, int, int]
    block: Block
    tile: Tile
    m_tiles: int
    n_tiles: int
    k_passes: int
    padded_M: int
    padded_K: int
    padded_N: int
    core_memory_bytes: int
    plio_in: int
    plio_out: int
    block_cycles: int
    solver: SolverReport
    dataflow: str = "tempus"
    reuse_plan: str | None = None
    order: str = "m-outer"

    @property
    def graph_iterations(self) -> int:
        return self.m_tiles * self.n_tiles


@dataclass(frozen=True)
class RequantSpec:
    multiplier: DataFile
    shift: DataFile
    zero_point: int
    dtype: str
    rounding: str


@dataclass(frozen=True)
class WeightSparsity:
    """How sparse a GEMM's weight [K, N] is, measured at planning (after the shrink pass):
    ``zeros`` of ``elements`` are zero; ``nm`` is the sparsest N:M pattern in K it satisfies
    ("2:4"), "" for none."""

    zeros: int
    elements: int
    nm: str = ""


@dataclass(frozen=True)
class SparseB:
    """A GEMM whose weight streams N:M-compressed (see :mod:`codesign.ir.layouts`,
    ``tempus.b-nm/1``): the layer's ``weight`` file holds the kept values, ``index`` their
    ``log2(m)``-bit positions. ``expand`` says where the dense lanes are rebuilt: ``"pl"``, the
    N:M expander block between the PL DMA and the PLIO."""

    n: int
    m: int
    index: DataFile
    expand: str = "pl"


@dataclass(frozen=True)
class Layer:
    """Base of plan layers: name (the ONNX node), input and output tensor names."""

    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    kind: ClassVar[str] = "layer"
    unit: ClassVar[str] = "none"


@dataclass(frozen=True)
class GemmLayer(Layer):
    """A GEMM on the AIE-ML block, with its epilogue (bias, zero-point correction, ReLU, requant)."""

    dtype: str = "int8"
    schedule: TemporalSchedule | None = None
    weight: DataFile | None = None
    bias: DataFile | None = None
    colsum: DataFile | None = None
    acc_shift: int = 0
    relu: bool = False
    requant: RequantSpec | None = None
    sparsity: WeightSparsity | None = None
    sparse: SparseB | None = None
    kind: ClassVar[str] = "gemm"
    unit: ClassVar[str] = "aie"


@dataclass(frozen=True)
class VectorLayer(Layer):
    """An element-wise op on the vector path; ``fn`` as in :mod:`codesign.sim.vector`."""

    fn: str = "add"
    attrs: tuple[tuple[str, Any], ...] = ()
    kind: ClassVar[str] = "vector"
    unit: ClassVar[str] = "pl"


@dataclass(frozen=True)
class ReshapeLayer(Layer):
    """A view: the same bytes with a new shape; costs nothing."""

    shape: tuple[int, ...] = ()
    kind: ClassVar[str] = "reshape"
    unit: ClassVar[str] = "none"


@dataclass(frozen=True)
class KernelVariant:
    """One compiled GEMM kernel of the block: the per-core tile it is compiled for, in ``dtype``.

    One AIE graph serves every layer, so the layers' tiles come from a small fixed set of these
    (at most :attr:`Execution.max_variants` per dtype)."""

    dtype: str
    tile: Tile


@dataclass(frozen=True)
class LayerRun:
    """How one hardware stage of the plan runs inside the single graph run of an inference.

    Per layer: ``reconfig_cycles`` (its run-time parameters reach the block), ``fill_cycles`` (the
    pipeline fills and drains once); per tile: ``tiles`` x ``tile_cycles`` (the slowest overlapped
    stage, operand and weight streaming included). ``weight_bytes``: the weight the layer streams
    (already inside its tile stages; listed, not added again). ``variant``: index into
    :attr:`Execution.variants` (-1 for a stage off the AIE block). ``launch_cycles``: what the
    stage would pay on its own graph run (Tempus's host flow), for comparison only. All cycles are
    the cost model's, in AIE cycles (modelled)."""

    layer: str
    unit: str
    variant: int
    tiles: int
    tile_cycles: int
    fill_cycles: int
    reconfig_cycles: int
    weight_bytes: int
    launch_cycles: int


@dataclass(frozen=True)
class Execution:
    """Whole-model execution: one AIE graph and one PL sequencer walk every layer on the block,
    with ``launches`` launches per inference (one, plus one after each Host partition that
    layers follow: :func:`inference_steps`).

    Per launch: ``launch_cycles`` (kernel launch and graph run). Per layer and per
    tile: :class:`LayerRun`. ``cycles``: the modelled inference latency (launch + every layer's
    reconfiguration, fill and tiles); ``per_launch_cycles``: the same layers each launched as its
    own graph run (Tempus's host flow: one launch per GEMM), for comparison. ``variants``: the
    kernel tile variants the graph is compiled with (at most ``max_variants`` per dtype).
    Every figure is modelled (codesign.cost), in AIE cycles at ``aie_clock_mhz``."""

    mode: str
    launches: int
    launch_cycles: int
    aie_clock_mhz: float
    cycles: int
    per_launch_cycles: int
    max_variants: int
    variants: tuple[KernelVariant, ...]
    layers: tuple[LayerRun, ...]
    reconfig_source: str = ""
    label: str = "modelled"


LAYER_KINDS: dict[str, type[Layer]] = {
    cls.kind: cls for cls in (GemmLayer, VectorLayer, ReshapeLayer)
}


@dataclass(frozen=True)
class Plan:
    """Everything a build runs: board, block, graph inputs/outputs, tensors, constants, layers.

    ``execution`` says how the layers run in one graph run per inference and which modelled
    costs are per inference, per layer and per tile (None in a plan written before it existed:
    readers recompute it from the cost model). ``data`` holds the stored bytes of the plan's DataFiles by sha256 when the plan was made in
    memory (:func:`codesign.schedulers.planner.plan`); a plan read from schedule.json has none
    and its data is in the build's files. ``data`` is not part of the JSON.
    """

    board: str
    block: Block
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    tensors: tuple[TensorSpec, ...]
    constants: dict[str, DataFile]
    layers: tuple[Layer, ...]
    model: str = ""
    execution: Execution | None = None
    schema: str = field(default=SCHEMA)
    data: dict[str, bytes] = field(
        default_factory=dict, compare=False, repr=False, metadata={"json": False}
    )

    def tensor(self, name: str) -> TensorSpec:
        try:
            return self._tensor_index[name]
        except KeyError:
            raise KeyError(name) from None

    def value_spec(self, name: str) -> TensorSpec:
        """The shape and dtype of ``name``, an activation or a constant (a GEMM's A may be a
        folded constant); KeyError when the plan has neither."""
        if name in self.constants:
            f = self.constants[name]
            return TensorSpec(name, tuple(f.shape), f.dtype)
        return self.tensor(name)

    @functools.cached_property
    def _tensor_index(self) -> dict[str, TensorSpec]:
        # built once per plan: a scan per lookup made per-layer callers quadratic
        index: dict[str, TensorSpec] = {}
        for t in self.tensors:
            index.setdefault(t.name, t)  # the first of a name, as the scan found
        return index

    def gemms(self) -> list[GemmLayer]:
        return [layer for layer in self.layers if isinstance(layer, GemmLayer)]


def inference_steps(units: typing.Sequence[str]) -> list[tuple[str, tuple[int, ...]]]:
    """How one inference runs, from each layer's unit in plan order: ``("launch", positions)``
    for one launch of the PL kernel (and the AIE graph) over those layers, ``("host", (i,))`` for
    Host partition ``i`` (unit "host"), run on the ARM cores between two launches.

    The layers are split at every Host partition; views (unit "none") need no launch of their
    own and join the next launch (a trailing run of views is dropped). Without Host partitions
    this is one launch."""
    steps: list[tuple[str, tuple[int, ...]]] = []
    pending: list[int] = []
    for i, unit in enumerate(units):
        if unit == "host":
            if any(units[j] != "none" for j in pending):
                steps.append(("launch", tuple(pending)))
                pending.clear()
            steps.append(("host", (i,)))
        else:
            pending.append(i)
    if any(units[j] != "none" for j in pending):
        steps.append(("launch", tuple(pending)))
    return steps


def data_files(obj: Any) -> list[DataFile]:
    """Every DataFile reachable from a plan object (a Plan, a layer...), in field order."""
    found: list[DataFile] = []

    def walk(o: Any) -> None:
        if isinstance(o, DataFile):
            found.append(o)
        elif dataclasses.is_dataclass(o):
            for f in _json_fields(o):
                walk(getattr(o, f.name))
        elif isinstance(o, dict):
            for v in o.values():
                walk(v)
        elif isinstance(o, list | tuple):
            for v in o:
                walk(v)

    walk(obj)
    return found


def _json_fields(obj: Any) -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(obj) if f.metadata.get("json", True)]


def register_layer(cls: type[Layer]) -> type[Layer]:
    """Make a new layer kind (from a later room) known to the JSON reader."""
    LAYER_KINDS[cls.kind] = cls
    return cls


# --- JSON ---------------------------------------------------------------------------------------


def to_dict(obj: Any) -> Any:
    """Plain JSON-able data for a plan object (layers carry their ``kind``)."""
    if dataclasses.is_dataclass(obj):
        out = {f.name: to_dict(getattr(obj, f.name)) for f in _json_fields(obj)}
        if isinstance(obj, Layer):
            out = {"kind": obj.kind, "unit": obj.unit, **out}
        return out
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_dict(v) for v in obj]
    return obj


def to_json(plan: Plan) -> str:
    """The schedule.json text: sorted keys, two-space indent, trailing newline (deterministic)."""
    return json.dumps(to_dict(plan), indent=2, sort_keys=True) + "\n"


def from_json(text: str) -> Plan:
    """Read schedule.json text; raise ValueError naming what is wrong.

    Every value must have its field's JSON type (integers for ints, lists for tuples, objects
    for dataclasses, null only where a field may be None), so a damaged or hand-edited file is
    refused here rather than failing deep in the simulator.
    """
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError(f"schedule must be a JSON object, not {type(data).__name__}")
    if data.get("schema") != SCHEMA:
        raise ValueError(f"schedule schema must be {SCHEMA!r}, not {data.get('schema')!r}")
    return _build(Plan, data, "schedule")


_JSON_TYPES = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}


def _build(tp: Any, data: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if tp is Any:
        return data
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if data is None and len(args) < len(typing.get_args(tp)):
            return None
        return _build(args[0], data, where)
    if data is None:
        raise ValueError(f"{where} must not be null")
    if origin is tuple:
        if not isinstance(data, list):
            raise ValueError(f"{where} must be a list, not {_show(data)}")
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_build(args[0], v, f"{where}[{i}]") for i, v in enumerate(data))
        if len(data) != len(args):
            raise ValueError(f"{where} must have {len(args)} entries, not {len(data)}")
        pairs = enumerate(zip(args, data, strict=True))
        return tuple(_build(a, v, f"{where}[{i}]") for i, (a, v) in pairs)
    if origin is dict:
        if not isinstance(data, dict):
            raise ValueError(f"{where} must be an object, not {_show(data)}")
        _, vt = typing.get_args(tp)
        return {k: _build(vt, v, f"{where}.{k}") for k, v in data.items()}
    if (tp is Layer or dataclasses.is_dataclass(tp)) and not isinstance(data, dict):
        raise ValueError(f"{where} must be an object, not {_show(data)}")
    if tp is Layer:
        cls = LAYER_KINDS.get(data.get("kind")) if isinstance(data.get("kind"), str) else None
        if cls is None:
            raise ValueError(
                f"{where}.kind must be one of {sorted(LAYER_KINDS)}, not {data.get('kind')!r}"
            )
        return _build(cls, data, where)
    if dataclasses.is_dataclass(tp):
        hints = typing.get_type_hints(tp)
        kwargs = {}
        for f in _json_fields(tp):
            if f.name in data:
                kwargs[f.name] = _build(hints[f.name], data[f.name], f"{where}.{f.name}")
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ValueError(f"{where} must have the key {f.name!r}")
        return tp(**kwargs)
    if tp in _JSON_TYPES:
        ok = isinstance(data, tp) and not (tp is not bool and isinstance(data, bool))
        if tp is float:
            ok = isinstance(data, int | float) and not isinstance(data, bool)
        if not ok:
            raise ValueError(f"{where} must be {_JSON_TYPES[tp]}, not {_show(data)}")
    return data


def _show(data: Any) -> str:
    text = json.dumps(data)
    return text if len(text) <= 40 else text[:37] + "..."
