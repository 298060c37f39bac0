"""The op-kind registry: one :class:`OpKind` record per kind holds everything about the kind.

A kind module (:mod:`codesign.kinds.gemm`, ``vector``, ``reshape``, or a module of a later room
or of a test) builds one frozen :class:`OpKind` and passes it to :func:`register`. The shared
drivers -- the planner loop (:mod:`codesign.schedulers.planner`), the simulator loop
(:mod:`codesign.sim.functional`), the plan checker (:mod:`codesign.sim.plan_check`), the memory
estimate (:mod:`codesign.sim.memory`), the report loop (:mod:`codesign.report.plan_report`), the
build writer (:mod:`codesign.codegen.build`) and the fidelity check
(:mod:`codesign.runtime.fidelity`) -- only iterate and ask this registry through the lookups
below. A lookup for a kind without an entry raises :class:`UnregisteredKind` naming the kind and
the registry: a bug in codesign (an internal error), never a silently skipped layer.

Entry signatures (the context objects are the drivers' own; see each driver):

- ``plan(ctx: PlanContext, op) -> Layer``: map a KernelGraph op to its plan layer, packing data
  through ``ctx.packer`` (nothing is written);
- ``execute(sim: Simulator, layer, args) -> tuple[np.ndarray, ...]``: bit-exact execution, one
  array per layer output; ``args`` are the input arrays (None for an omitted optional input);
- ``check(ck: PlanChecker, layer) -> None``: refuse (``ck.fail``) a layer the executor or the
  cost model cannot run as written; ``ck`` holds the shapes and dtypes of the tensors defined so
  far;
- ``cost(ctx: CostContext, stage) -> Cost | None``: the modelled time, bound, power and
  resources of one hardware stage (a list of layers of this kind; see ``fuses``), computed with
  :mod:`codesign.cost`; None for a layer that costs nothing (a view);
- ``memory(plan, layer) -> LayerMemory``: host memory the simulator needs for the layer;
- ``emit(plan, layers) -> Emitted``: the files the layers of this kind need in a build (RTL
  block specs today; AIE, HLS and driver files later), given every layer of the kind at once;
- ``output_scale(plan, layer, output, constants) -> float | None``: the quantisation step of a
  graph output the layer produces (for the fidelity tolerance), or None;
- ``fuses``: consecutive layers of this kind, each reading only the previous one's output, are
  modelled as one stream stage (a fused vector unit makes one pass over the data).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from codesign.ir.plan import LAYER_KINDS, Layer, Plan, register_layer

if TYPE_CHECKING:
    from codesign.cost import GemmWorkload, LayerEstimate
    from codesign.ir.graph import Op
    from codesign.rtl.spec import BlockSpec


class UnregisteredKind(LookupError):
    """A lookup found no entry for a kind: a bug in codesign (internal error, exit 1)."""


@dataclass(frozen=True)
class Cost:
    """What the cost model says about one stage: the per-layer estimate, extra report fields,
    and (for GEMM-like stages) the workload the report may compare with the spatial baseline."""

    estimate: LayerEstimate
    extra: Mapping[str, Any] = field(default_factory=dict)
    workload: GemmWorkload | None = None


@dataclass(frozen=True)
class LayerMemory:
    """Host bytes the simulator needs for one layer: data files it reads (as decoded), what it
    caches for the run, and its largest transient working set."""

    files: tuple[int, ...] = ()
    cached: int = 0
    transient: int = 0


@dataclass(frozen=True)
class Emitted:
    """What a kind's emitter contributes to a build: RTL block specs (written with their
    manifest under ``rtl/``) and other files as (path relative to the build, bytes)."""

    blocks: tuple[BlockSpec, ...] = ()
    files: tuple[tuple[str, bytes], ...] = ()


@dataclass(frozen=True)
class OpKind:
    """Everything about one op kind (see the module docstring for the entry signatures)."""

    name: str
    op: type[Op]
    layer: type[Layer]
    plan: Callable[..., Layer]
    execute: Callable[..., tuple[Any, ...]]
    check: Callable[..., None]
    cost: Callable[..., Cost | None]
    memory: Callable[..., LayerMemory]
    emit: Callable[..., Emitted]
    output_scale: Callable[..., float | None]
    fuses: bool = False


#: every entry of an OpKind that a driver looks up (the "registries")
REGISTRIES = ("plan", "execute", "check", "cost", "memory", "emit", "output_scale")

_BY_NAME: dict[str, OpKind] = {}
_BY_OP: dict[type, OpKind] = {}


def register(kind: OpKind) -> OpKind:
    """Register ``kind`` (and its layer type with the plan's JSON reader); return it.

    Raises ValueError when an entry is not callable, the layer's ``kind`` differs from the name,
    or another kind already has the name, the op type or the layer type."""
    for f in fields(kind):
        if f.name in REGISTRIES and not callable(getattr(kind, f.name)):
            raise ValueError(f"op kind {kind.name!r}: entry {f.name!r} must be callable")
    if kind.layer.kind != kind.name:
        raise ValueError(
            f"op kind {kind.name!r}: its layer type {kind.layer.__name__} has kind "
            f"{kind.layer.kind!r}"
        )
    old = _BY_NAME.get(kind.name)
    if old is not None and old != kind:
        raise ValueError(f"op kind {kind.name!r} is already registered")
    if kind.op in _BY_OP and _BY_OP[kind.op].name != kind.name:
        raise ValueError(f"op type {kind.op.__name__} is already registered")
    if LAYER_KINDS.get(kind.name, kind.layer) is not kind.layer:
        raise ValueError(f"layer kind {kind.name!r} is already registered")
    register_layer(kind.layer)
    _BY_NAME[kind.name] = kind
    _BY_OP[kind.op] = kind
    return kind


def unregister(name: str) -> None:
    """Remove a kind (tests that register a kind of their own clean up with this)."""
    kind = _BY_NAME.pop(name, None)
    if kind is not None:
        _BY_OP.pop(kind.op, None)
        LAYER_KINDS.pop(name, None)


def kinds() -> tuple[OpKind, ...]:
    """Every registered kind, in registration order."""
    return tuple(_BY_NAME.values())


def get(name: str, registry: str = "kind") -> OpKind:
    """The kind called ``name``; UnregisteredKind names the kind and the registry asked."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise UnregisteredKind(
            f"no {registry} registered for op kind {name!r} in codesign.kinds "
            f"(registered: {', '.join(_BY_NAME) or 'none'})"
        ) from None


def for_op(op: Op, registry: str = "plan") -> OpKind:
    """The kind of a KernelGraph op (by its exact type)."""
    kind = _BY_OP.get(type(op))
    if kind is None:
        raise UnregisteredKind(
            f"no {registry} registered for KernelGraph op type {type(op).__name__} "
            f"(node {op.name!r}) in codesign.kinds"
        )
    return kind


def entry(name: str, registry: str) -> Callable[..., Any]:
    """The ``registry`` entry (one of :data:`REGISTRIES`) of kind ``name``."""
    if registry not in REGISTRIES:
        raise UnregisteredKind(f"codesign.kinds has no registry {registry!r}")
    return getattr(get(name, registry), registry)


def planner(op: Op) -> Callable[..., Layer]:
    return for_op(op, "plan").plan


def executor(layer: Layer) -> Callable[..., tuple[Any, ...]]:
    return entry(layer.kind, "execute")


def checker(layer: Layer) -> Callable[..., None]:
    return entry(layer.kind, "check")


def coster(layer: Layer) -> Callable[..., Cost | None]:
    return entry(layer.kind, "cost")


def memory(layer: Layer) -> Callable[..., LayerMemory]:
    return entry(layer.kind, "memory")


def emitter(name: str) -> Callable[..., Emitted]:
    return entry(name, "emit")


def output_scale(layer: Layer) -> Callable[..., float | None]:
    return entry(layer.kind, "output_scale")


def fuses(layer: Layer) -> bool:
    return get(layer.kind, "stage rule").fuses


def no_output_scale(plan: Any, layer: Layer, output: str, constants: Any) -> None:
    """``output_scale`` of a kind whose outputs carry no quantisation step of their own."""
    return None


def no_emission(plan: Any, layers: Any) -> Emitted:
    """``emit`` of a kind that needs nothing in the build beyond its plan entry and data."""
    return Emitted()


# --- queries over a plan ---------------------------------------------------------------------


def emitted(plan: Plan) -> list[Emitted]:
    """What every registered kind emits for ``plan`` (kinds in registration order)."""
    out = []
    for kind in kinds():
        layers = [layer for layer in plan.layers if layer.kind == kind.name]
        if layers:
            out.append(emitter(kind.name)(plan, layers))
    return out


def rtl_specs_for(plan: Plan) -> list[BlockSpec]:
    """The RTL blocks ``plan`` uses, in a fixed order, each once."""
    specs: list[BlockSpec] = []
    for e in emitted(plan):
        for spec in e.blocks:
            if spec not in specs:
                specs.append(spec)
    return specs
