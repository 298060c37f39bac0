"""The Python API: compile a model, simulate it, report it, save it -- the flow the CLI wraps.

::

    import codesign
    build = codesign.compile("model.onnx", board="vek280", block="2x8", shapes={"x": (1, 128)})
    outputs = build.simulate({"x": x})      # dict of numpy arrays by graph output name
    report = build.report()                  # the report.json content as a dict
    build.save("build/")                     # the same files `codesign compile -o build/` writes
    same = codesign.load_build("build/")     # the same object, from disk

:func:`compile` runs load -> passes -> :func:`~codesign.schedulers.planner.plan` -> estimate in
memory: nothing is written until :meth:`Build.save`, which runs the atomic build writer
(:func:`codesign.codegen.build.write`). Errors are the :class:`~codesign.errors.CodesignError`
subclasses the CLI prints (it exits 2 on them).
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from codesign import progress
from codesign.errors import BuildError, ModelError, OptionError
from codesign.ir.graph import KernelGraph
from codesign.ir.plan import Block, Plan, data_files
from codesign.sim.inputs import random_inputs

__all__ = ["Build", "compile", "load_build", "random_inputs"]


@dataclass
class Build:
    """A compiled model: its :attr:`plan` (with its data), the self-contained copy of the model
    (``model.onnx`` of the build, for the onnxruntime reference) and the compile options.

    Made by :func:`compile` (in memory, ``root`` None) or :func:`load_build` (``root`` is the
    build directory, whose files hold the data).
    """

    plan: Plan
    options: Any  # codesign.codegen.build.CompileOptions
    reference: bytes | None = None
    root: Path | None = None
    _report: dict[str, Any] | None = field(default=None, repr=False)
    _synthesized: Any = field(default=None, repr=False)
    _simulator: Any = field(default=None, repr=False)  # codesign.sim.functional.Simulator

    # --- simulate ---------------------------------------------------------------------------

    def simulate(
        self, inputs: Mapping[str, np.ndarray] | None = None, *, seed: int = 0
    ) -> dict[str, np.ndarray]:
        """Run the plan bit-accurately on ``inputs`` (by graph input name; random inputs from
        ``seed`` when None); return the outputs by graph output name.

        Raises :class:`~codesign.errors.MemoryLimitError` when the host lacks the memory the
        run needs and :class:`~codesign.errors.OptionError` for inputs of the wrong name, shape
        or dtype.

        The first call decodes and regroups the plan's weights; later calls reuse them (held
        while the Build lives), as an inference session keeps its prepacked weights."""
        from codesign.sim.functional import Simulator
        from codesign.sim.memory import check_fits

        if self._simulator is None:
            if self.root is None:  # a build read from disk was checked by load_build
                from codesign.sim.plan_check import check_plan

                check_plan(self.plan, None)
            check_fits(self.plan, self.root)
            self._simulator = Simulator(self.plan, self.root)
        feed = dict(inputs) if inputs is not None else random_inputs(self.plan, seed)
        return self._simulator.run(feed)

    # --- report -----------------------------------------------------------------------------

    def report(self) -> dict[str, Any]:
        """The modelled report (the content of ``report/report.json``) as a dict (a copy).

        Raises :class:`~codesign.errors.FitError` when the modelled resources exceed the board.
        """
        if self._report is None:
            from codesign.codegen.build import options_entry, tool_versions
            from codesign.report.build import build_context
            from codesign.report.plan_report import estimate
            from codesign.sim.build_files import read_json

            report = estimate(self.plan, self.synthesized())
            # in memory: this run's options and tools; from disk: those the manifest recorded
            memory = self.root is None
            report["build"] = build_context(
                self.root,
                self.plan,
                options_entry(self.options) if memory else None,
                tool_versions() if memory else None,
                read_json=read_json,
            )
            self._report = report
        return copy.deepcopy(self._report)

    def synthesized(self) -> dict[str, Any] | None:
        """Summed yosys figures of the plan's RTL blocks (None without synthesis)."""
        from codesign.codegen import rtl_blocks

        if self._synthesized is None:
            if self.root is not None:
                try:
                    figures = rtl_blocks.synthesized_pl(self.root)
                except (ValueError, TypeError, AttributeError, KeyError, OSError) as e:
                    raise BuildError(
                        f"{self.root / rtl_blocks.RTL_DIR / 'manifest.json'}: must be the RTL "
                        f"manifest codesign wrote: {' '.join(str(e).split())[:200]}"
                    ) from None
                self._synthesized = ("ok", figures)
            else:
                self._synthesized = (
                    "ok",
                    rtl_blocks.synthesized_figures(self.plan, self.options.synth),
                )
        return self._synthesized[1]

    # --- save -------------------------------------------------------------------------------

    def save(self, out: str | os.PathLike[str], *, force: bool = False) -> Path:
        """Write the build directory ``out`` (atomically; ``force`` replaces an existing build)
        with the same files ``codesign compile -o out`` writes; return its path."""
        from codesign.codegen.build import write

        plan = self.plan if self.root is None else self._with_data()
        if self.reference is None:
            raise BuildError(f"{out}: this build has no model.onnx to save with it")
        write(plan, Path(out), self.reference, replace(self.options, force=force), self.report())
        return Path(out)

    def _with_data(self) -> Plan:
        """The plan with the bytes of every data file read (and verified) from ``root``."""
        from codesign.ir.data import sha256
        from codesign.sim.build_files import read_bytes

        blobs = {}
        for f in data_files(self.plan):
            data = read_bytes(self.root, f)
            blobs[sha256(data)] = data
        return replace(self.plan, data=blobs)


def _block(block: str | Block | tuple[int, int]) -> Block:
    from codesign.schedulers.tempus import parse_block

    if isinstance(block, Block):
        return block
    if isinstance(block, str):
        return parse_block(block)
    if (
        isinstance(block, tuple | list)
        and len(block) == 2
        and all(isinstance(v, int) for v in block)
    ):
        return Block(int(block[0]), int(block[1]))
    raise OptionError(f"block must look like '2x8' or (2, 8), not {block!r}")


def _shapes(shapes: Mapping[str, Sequence[int]] | Sequence[Any] | None) -> tuple[Any, ...]:
    from codesign.frontend import ShapeOverride

    if shapes is not None and not isinstance(shapes, Mapping):
        if all(isinstance(o, ShapeOverride) for o in shapes):
            return tuple(shapes)  # parsed --shape options, in order (a repeated name refused)
        raise OptionError("shapes must map input names to dimensions, e.g. {'x': (1, 128)}")
    out = []
    for name, dims in (shapes or {}).items():
        if isinstance(dims, str) or not isinstance(dims, Sequence):
            raise OptionError(f"shapes[{name!r}] must be a sequence of integers, not {dims!r}")
        out.append(ShapeOverride.parse(f"{name}={'x'.join(str(d) for d in dims)}"))
    return tuple(out)


def compile(  # noqa: A001  (the API's name, as in the issue: codesign.compile)
    model: str | os.PathLike[str] | Any,
    *,
    board: str = "vek280",
    block: str | Block | tuple[int, int] = "2x8",
    shapes: Mapping[str, Sequence[int]] | Sequence[Any] | None = None,
    solver_time_limit: float = 10.0,
    max_model_bytes: int | None = None,
    synth: bool = True,
    passes: Sequence[Callable[[KernelGraph], bool]] = (),
    debug: bool = False,
    strict: bool = False,
) -> Build:
    """Compile ``model`` (an ONNX file path or an ``onnx.ModelProto``) for ``board`` in memory.

    ``block`` is CHAINSxCASCADE ("2x8", ``(2, 8)`` or a Block); ``shapes`` fixes dynamic input
    shapes by input name; ``solver_time_limit`` is CP-SAT's limit per GEMM tile in seconds (0:
    exhaustive search); ``max_model_bytes`` bounds the model plus its external data (default
    2 GiB); ``synth`` runs yosys (cached) on the RTL blocks for the report's PL figures;
    ``passes`` are further rewrites of the hardware KernelGraph, run in order after the standard
    pipeline (each takes the graph, rewrites it in place and returns whether it changed it). A
    ModelProto must carry its tensors inline or with external data relative to the current
    directory; its build names it ``model.onnx``. ``debug`` validates the KernelGraph after
    every pass of the pipeline, naming the pass that broke it (``codesign --debug compile``).
    Nodes the accelerator does not take run in Host partitions (onnxruntime on the board's ARM
    cores); ``strict`` refuses them instead (UnsupportedError naming the nodes, ``--strict``).

    Raises the :class:`~codesign.errors.CodesignError` subclasses the CLI prints: ModelError
    and UnsupportedError for the model, OptionError, BoardError, FitError.
    """
    from codesign.boards import load as load_board
    from codesign.codegen.build import CompileOptions, check_options
    from codesign.frontend import (
        MAX_MODEL_BYTES,
        place_model,
        read_model_bytes,
        reference_copy,
    )
    from codesign.schedulers.planner import plan as make_plan
    from codesign.schedulers.tempus import check_block

    if isinstance(solver_time_limit, int) and not isinstance(solver_time_limit, bool):
        solver_time_limit = float(solver_time_limit)  # the manifest records it as the CLI does
    options = CompileOptions(
        board=board,
        block=_block(block),
        shapes=_shapes(shapes),
        solver_time_limit=solver_time_limit,
        max_model_bytes=MAX_MODEL_BYTES if max_model_bytes is None else max_model_bytes,
        synth=synth,
    )
    check_options(options)
    target = load_board(options.board)
    target.require_compile()  # reference-only boards (vck190) are refused here
    check_block(target, options.block)
    if isinstance(model, str | os.PathLike):
        path = Path(model)
        data = read_model_bytes(path, options.max_model_bytes)
    elif callable(getattr(model, "SerializeToString", None)):
        path = Path("model.onnx")
        try:
            data = model.SerializeToString()
        except Exception as e:  # protobuf refuses messages over 2 GiB
            raise ModelError(f"model: cannot serialise the ModelProto: {e}") from None
        if len(data) > options.max_model_bytes:
            raise ModelError(
                f"model: must be at most {options.max_model_bytes} bytes, not {len(data)}"
            )
    else:
        raise OptionError(f"model must be a path or an onnx.ModelProto, not {type(model).__name__}")
    progress.stage(f"reading and importing {path.name}")
    # external data is read once (no-follow, one handle per file), into the self-contained copy;
    # the plan is made from that same copy, so the build's model.onnx and its weights agree
    reference = reference_copy(path, data, options.max_model_bytes)
    placed = place_model(path, options.shapes, options.max_model_bytes, reference, debug=debug)
    kg = placed.kg
    if strict and placed.host_nodes():
        from codesign.errors import UnsupportedError
        from codesign.frontend.placement import summary

        host = placed.host_nodes()
        raise UnsupportedError(
            f"{path}: --strict: {len(host)} node(s) would run on the Host (ARM, onnxruntime), "
            f"not the accelerator: {summary(host)} ({host[0].name!r}: {host[0].reason}); "
            f"see `codesign inspect {path.name}`"
        )
    for rewrite in passes:
        rewrite(kg)
    if passes:
        kg.validate()
    plan = make_plan(
        kg, target, options.block, model=path.name, solver_time_limit=options.solver_time_limit
    )
    build = Build(plan, options, reference)
    build.report()  # the fit with the PL blocks' synthesis figures (FitError), as the CLI's
    return build


def load_build(build: str | os.PathLike[str]) -> Build:
    """The :class:`Build` in directory ``build`` (what :meth:`Build.save` or ``codesign
    compile`` wrote). Its schedule.json is checked (BuildError naming the field or layer);
    data files are read when needed, each against its sha256."""
    from codesign.codegen.build import CompileOptions
    from codesign.fileio import read_in
    from codesign.frontend import MAX_MODEL_BYTES
    from codesign.sim.build_files import load_plan

    root, plan = load_plan(build)  # refuses a build holding a symlink, FIFO or device
    options = CompileOptions(board=plan.board, block=plan.block)
    try:
        manifest = json.loads(read_in(root, "manifest.json", max_bytes=64 << 20))
        opts = manifest["options"]
        options = _options_from_manifest(opts, options)
    except (BuildError, ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError):
        pass  # a build without a (readable) manifest still simulates and reports
    try:
        reference = read_in(root, "model.onnx", max_bytes=MAX_MODEL_BYTES)
    except BuildError:
        reference = None
    return Build(plan, options, reference, root)


def _options_from_manifest(opts: dict[str, Any], default: Any) -> Any:
    from codesign.frontend import ShapeOverride

    return replace(
        default,
        board=str(opts["board"]),
        block=_block(str(opts["block"])),
        shapes=tuple(
            ShapeOverride(str(k), tuple(int(d) for d in v)) for k, v in opts["shapes"].items()
        ),
        solver_time_limit=opts["solver_time_limit"],
        synth=bool(opts["synth"]),
    )
