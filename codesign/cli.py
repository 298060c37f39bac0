"""The ``codesign`` command line: thin click wrappers over the library.

Exit codes: 0 ok, 1 internal error (a bug: please report it), 2 user error (bad model, option,
board or build), 3 fidelity check failed. Errors print one line on stderr; ``--debug`` shows the
traceback.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
import numpy as np
from rich.console import Console

from codesign import __version__
from codesign.boards import DEFAULT_BOARD
from codesign.cli_check import check
from codesign.cli_errors import error_line, one_line, os_error_line, safe_data, safe_text
from codesign.cli_estimate import estimate
from codesign.cli_inspect import inspect
from codesign.cli_prune import prune
from codesign.errors import CodesignError, FidelityError, OptionError
from codesign.rtl.cli import verify

ISSUES_URL = "https://github.com/codesign-fpga/codesign/issues"

console = Console()
err_console = Console(stderr=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="codesign")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.pass_context
def main_group(ctx: click.Context, debug: bool) -> None:
    """Compile quantized ONNX models onto AMD Versal AI Edge (AIE-ML + PL)."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


# --- compile ------------------------------------------------------------------------------------


@main_group.command("compile")
@click.argument("model", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--board",
    default=DEFAULT_BOARD,
    show_default=True,
    help="Target board (see `codesign boards`).",
)
@click.option(
    "-o",
    "--output",
    "out",
    default="build",
    show_default=True,
    type=click.Path(path_type=Path),
    help="Build directory to write.",
)
@click.option("--block", default="2x8", show_default=True, help="Compute block CHAINSxCASCADE.")
@click.option(
    "--shape",
    "shapes",
    multiple=True,
    metavar="NAME=DIMS",
    help="Fix a dynamic input shape, e.g. --shape input=1x128 (repeatable).",
)
@click.option("--force", is_flag=True, help="Replace an existing build directory.")
@click.option("--no-synth", is_flag=True, help="Skip yosys synthesis figures of the RTL blocks.")
@click.option(
    "--solver-time-limit",
    type=float,
    default=10.0,
    show_default=True,
    metavar="SECONDS",
    help="CP-SAT time limit per GEMM tile; 0 = exhaustive search (reported as a fallback).",
)
@click.option(
    "--max-model-size",
    default="2G",
    show_default=True,
    metavar="SIZE",
    help="Largest model file plus external data, e.g. 500M (at most 2G).",
)
@click.option(
    "--strict",
    is_flag=True,
    help="Refuse the model if any node would run on the Host (ARM) instead of the AIE/PL.",
)
def compile_cmd(
    model: Path,
    board: str,
    out: Path,
    block: str,
    shapes: tuple[str, ...],
    force: bool,
    no_synth: bool,
    solver_time_limit: float,
    max_model_size: str,
    strict: bool,
) -> None:
    """Compile MODEL (ONNX) for a board into a build directory."""
    from codesign import api
    from codesign.codegen.build import check_output, signals_as_interrupts
    from codesign.frontend import ShapeOverride
    from codesign.frontend.load import parse_size

    overrides = tuple(ShapeOverride.parse(s) for s in shapes)
    max_bytes = parse_size(max_model_size, "--max-model-size")
    check_output(out, force)  # before any work
    from codesign import progress
    from codesign.report.plan_report import stage_summary

    # Ctrl-C (kept through CP-SAT's solves), SIGTERM and SIGHUP interrupt the compile and the
    # write alike: the temporary build and any parent folders it created are removed. Stages
    # and solves show on a terminal; quiet when stderr is a file or a CI log.
    with (
        signals_as_interrupts(),
        progress.display(err_console, enabled=err_console.is_terminal),
    ):
        build = api.compile(
            model,
            board=board,
            block=block,
            shapes=overrides,
            solver_time_limit=solver_time_limit,
            max_model_bytes=max_bytes,
            synth=not no_synth,
            debug=bool((click.get_current_context().find_root().obj or {}).get("debug")),
            strict=strict,
        )
        build.save(out, force=force)
    _warn_without_yosys(out)
    plan, report = build.plan, build.report()
    t = report["totals"]
    console.print(
        f"[green]compiled[/] {safe_text(model)} -> {safe_text(out)}/ for {safe_text(board)} "
        f"(block {plan.block}): {stage_summary(plan)}; "
        f"modelled {t['time_s'] * 1e3:.3f} ms per inference (one graph run), {t['gops']:.1f} GOPS, "
        f"{report['power']['total_w']:.2f} W"
        + (
            f"; one launch per GEMM (Tempus's host flow): {t['per_launch_time_s'] * 1e3:.3f} ms"
            if "per_launch_time_s" in t
            else ""
        )
        + f" (see `codesign report {safe_text(out)}`)"
    )
    for a in report.get("advice", []):
        console.print(f"[yellow]advice:[/] {safe_text(a)}")
    host = [layer for layer in plan.layers if layer.unit == "host"]
    if host:
        count = sum(len(getattr(layer, "nodes", ())) for layer in host)
        console.print(
            f"[yellow]host:[/] {count} node(s) run on the ARM cores in {len(host)} Host "
            f"partition(s) (onnxruntime); `codesign inspect {safe_text(model)}` lists them, "
            "--strict refuses them"
        )
    for g in plan.gemms():
        if g.schedule.solver.fallback:
            console.print(
                f"[yellow]solver fallback[/] {safe_text(repr(g.name))}: "
                f"{safe_text(g.schedule.solver.fallback)}"
            )


def _warn_without_yosys(out: Path) -> None:
    """Compile still succeeds without yosys, but the PL figures of the build's RTL blocks are
    then not synthesised: say so (the build's rtl manifest notes it when synthesis was asked
    for and could not run)."""
    from codesign.rtl.synth import yosys_missing

    manifest = out / "rtl" / "manifest.json"
    note = json.loads(manifest.read_text()).get("synth_note") if manifest.is_file() else None
    why = yosys_missing() if note else None
    if why:
        err_console.print(
            f"[yellow]warning:[/] {why}; the PL figures of the RTL blocks are not synthesised "
            "(the report marks them) -- install yosys, or pass --no-synth to skip it knowingly"
        )


# --- simulate -----------------------------------------------------------------------------------


def _load_npz(path: Path, plan) -> dict[str, np.ndarray]:
    """The plan's inputs from an .npz, each member checked against the plan before it is
    decompressed (see :func:`codesign.fileio.read_npz`)."""
    from codesign.fileio import read_npz
    from codesign.ir.graph import numpy_dtype

    expected = {t.name: (tuple(t.shape), numpy_dtype(t.dtype)) for t in plan.inputs}
    return read_npz(path, expected, error=OptionError, what="--inputs")


@main_group.command("simulate")
@click.argument("build", type=click.Path(path_type=Path))
@click.option(
    "--inputs",
    "inputs_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Inputs .npz keyed by the ONNX graph input names (default: random, seed 0).",
)
@click.option(
    "--output",
    "output_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the outputs .npz here.",
)
@click.option(
    "--reference", is_flag=True, help="Also run onnxruntime on the original model and compare."
)
@click.option(
    "--ort-opt",
    type=click.Choice(["disable", "basic", "extended", "all"]),
    default="basic",
    show_default=True,
    help="onnxruntime graph optimisation level of the reference.",
)
@click.option(
    "--seed",
    default=0,
    show_default=True,
    type=click.IntRange(min=0),
    help="Seed for random inputs when --inputs is omitted.",
)
@click.option("--wide", is_flag=True, help="Show every column of the comparison (kind, errors).")
def simulate_cmd(
    build: Path,
    inputs_path: Path | None,
    output_path: Path | None,
    reference: bool,
    ort_opt: str,
    seed: int,
    wide: bool,
) -> None:
    """Run BUILD bit-accurately on the plan; optionally compare with onnxruntime."""
    from codesign import api
    from codesign.runtime.fidelity import compare
    from codesign.sim.functional import Simulator
    from codesign.sim.memory import check_fits

    build_ = api.load_build(build)
    check_fits(build_.plan, build, reference)
    inputs = (
        _load_npz(inputs_path, build_.plan) if inputs_path else api.random_inputs(build_.plan, seed)
    )
    sim = Simulator(build_.plan, build_.root)
    outputs = sim.run(inputs)
    if output_path:
        _save_npz(output_path, outputs)
    console.print(
        f"[green]simulated[/] {safe_text(build)}: "
        + ", ".join(f"{safe_text(k)} {tuple(v.shape)} {v.dtype}" for k, v in outputs.items())
    )
    if not reference:
        return
    from codesign.frontend.reference import run_onnxruntime

    ref = run_onnxruntime(Path(build) / "model.onnx", sim.check_inputs(inputs), ort_opt)
    constants = {name: sim.data(f) for name, f in sim.plan.constants.items()}
    results = compare(sim.plan, outputs, ref, constants)
    from codesign.report.terminal import make_table

    # 80 columns by default (the criterion text wraps); --wide adds the kind and error columns
    cols = (
        ("output", "kind", "max |err|", "mean |err|", "max LSB", "equal", "criterion", "result")
        if wide
        else ("output", "max LSB", "equal", "criterion", "result")
    )
    table = make_table(f"simulator vs onnxruntime (optimisation {ort_opt})", cols)
    for r in results:
        cells = {
            "output": safe_text(r.name),
            "kind": r.kind,
            "max |err|": f"{r.max_abs:.3g}",
            "mean |err|": f"{r.mean_abs:.3g}",
            "max LSB": "-" if r.max_lsb is None else f"{r.max_lsb:g}",
            "equal": f"{r.equal_fraction:.2%}",
            "criterion": r.criterion,
            "result": "[green]pass[/]" if r.passed else "[red]FAIL[/]",
        }
        table.add_row(*(cells[c] for c in cols))
    console.print(table)
    _record_simulation(Path(build), results, ort_opt)
    failed = [r.name for r in results if not r.passed]
    if failed:
        raise FidelityError(
            f"output(s) {', '.join(failed)} differ from onnxruntime beyond the tolerance"
        )


def _save_npz(path: Path, outputs: dict[str, np.ndarray]) -> None:
    """Write the outputs .npz through a temporary file and a rename (a user error if the folder
    is missing or unwritable)."""
    import io

    from codesign.fileio import atomic_write

    buf = io.BytesIO()
    np.savez(buf, **outputs)
    try:
        atomic_write(path, buf.getvalue())
    except OSError as e:
        raise OptionError(f"--output {path}: cannot be written: {e.strerror or e}") from None


def _record_simulation(build: Path, results, ort_opt: str) -> None:
    """Keep the comparison in BUILD/report/simulation.json, so `codesign report` shows it.

    Written like every file of a build (no symlink followed, see
    :func:`codesign.fileio.write_in`), and its sha256 recorded in the build's manifest.json so
    the build still verifies (``--force`` may replace it)."""
    from codesign.codegen.build import record_files
    from codesign.errors import BuildError
    from codesign.fileio import make_dir_in, write_in
    from codesign.report.build import SIMULATION_FILE, simulation_entry

    rel = f"report/{SIMULATION_FILE}"
    text = json.dumps(simulation_entry(results, ort_opt), indent=2) + "\n"
    try:
        make_dir_in(build, "report")
        record_files(build, {rel: write_in(build, rel, text)})
    except BuildError as e:  # a read-only build still simulates; only the record is lost
        err_console.print(f"[yellow]warning:[/] cannot record the simulation: {safe_text(e)}")


# --- report -------------------------------------------------------------------------------------


@main_group.command("report")
@click.argument("build", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON instead of tables.")
@click.option("--wide", is_flag=True, help="Show every column (block, tile, cycles, DDR, power).")
def report_cmd(build: Path, as_json: bool, wide: bool) -> None:
    """Per-layer shapes, tiles, modelled time, bound, resources and power of BUILD.

    Also (re)writes BUILD/report/report.json and BUILD/report/report.html.
    """
    from codesign import api
    from codesign.codegen.build import write_report
    from codesign.report.terminal import render_terminal

    build_ = api.load_build(build)
    report = write_report(build_.root, build_.plan, build_.report())
    if as_json:
        click.echo(json.dumps(report, indent=2, sort_keys=True))
    else:
        render_terminal(safe_data(report), console, wide=wide)


# --- boards -------------------------------------------------------------------------------------


@main_group.command("boards")
@click.argument("name", required=False)
@click.option("--wide", is_flag=True, help="Also show the memory tiles and the description.")
def boards_cmd(name: str | None, wide: bool) -> None:
    """List the boards, or show one board's data with sources."""
    from codesign import boards
    from codesign.report.terminal import make_table

    if name is None:
        cols = ["name", "device", "AIE", "tiles", "MHz", "use"]
        if wide:
            cols += ["memory tiles", "description"]
        table = make_table("boards", cols)
        for n in boards.available():
            b = boards.load(n)
            cells = {
                "name": b.name + (" (default)" if n == DEFAULT_BOARD else ""),
                "device": b.device,
                "AIE": b.aie.generation,
                "tiles": f"{b.aie.columns}x{b.aie.rows}={b.aie.tiles}",
                "MHz": f"{b.aie.clock_mhz:g}",
                "use": "compile, estimate" if b.use == "compile" else b.use,
                "memory tiles": str(b.memory_tiles.count),
                "description": b.description,
            }
            table.add_row(*(cells[c] for c in cols))
        console.print(table)
        return
    b = boards.load(name)
    table = make_table(f"{b.name}: {b.description} ({b.part})", ("field", "value", "source"))
    for path, source in sorted(b.sources.items()):
        table.add_row(path, _show(_value_at(b, path)), source)
    console.print(table)


def _value_at(board, path: str):
    """The value of a board field by the dotted path its source is filed under."""
    head, *rest = path.split(".")
    obj = getattr(board, head) if hasattr(board, head) else board.extra.get(head)
    for part in rest:
        obj = obj.get(part) if isinstance(obj, dict) else getattr(obj, part, None)
    return obj


def _show(v) -> str:
    return "null (unknown)" if v is None else str(v)


main_group.add_command(estimate)
main_group.add_command(check)  # codesign check BUILD (codesign/cli_check.py)
main_group.add_command(prune)  # codesign prune MODEL (codesign/cli_prune.py)
main_group.add_command(inspect)  # codesign inspect MODEL (codesign/cli_inspect.py)
main_group.add_command(verify)


# --- entry point --------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the group and map errors to one line and an exit code."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    try:
        main_group.main(args=args, prog_name="codesign", standalone_mode=False)
    except click.exceptions.Abort:
        err_console.print("aborted")
        sys.exit(130)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except click.UsageError as e:
        cmd = e.ctx.command_path if e.ctx else "codesign"
        click.echo(f"error: {one_line(cmd)}: {one_line(e.format_message())}", err=True)
        sys.exit(2)
    except click.ClickException as e:
        click.echo(f"error: {one_line(e.format_message())}", err=True)
        sys.exit(2)
    except CodesignError as e:
        if debug:
            raise
        click.echo(f"error: {error_line(e)}", err=True)
        sys.exit(e.exit_code)
    except MemoryError:
        if debug:
            raise
        click.echo(
            "error: out of memory: the model, build or inputs need more memory than this "
            "process may use (raise the limit, e.g. ulimit -v, or use a smaller model)",
            err=True,
        )
        sys.exit(2)
    except OSError as e:  # the file system said no (permissions, full disk, long names)
        if debug:
            raise
        click.echo(f"error: {os_error_line(e)}", err=True)
        sys.exit(2)
    except Exception as e:
        if debug:
            raise
        click.echo(
            f"internal error: {type(e).__name__}: {one_line(' '.join(str(e).split()), 300)} "
            f"(this is a bug in codesign {__version__}; please report it at {ISSUES_URL} "
            "with the command and rerun it with --debug for the traceback)",
            err=True,
        )
        sys.exit(1)
    sys.exit(0)


if __name__ == "__main__":
    main()
