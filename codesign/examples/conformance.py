"""ONNX backend conformance: the onnx package's node tests, through compile -> simulate.

The onnx package generates its backend node tests in code
(:func:`onnx.backend.test.case.node.collect_testcases`: one small model per case with input and
expected output arrays). :func:`run` takes every case whose graph holds a single node of an op
the frontend claims (:func:`codesign.frontend.lowerings.supported`), compiles it with
:func:`codesign.compile` and simulates each data set, and sorts it into one outcome:

- ``pass``: every output within the documented tolerance of the expected one
  (:func:`codesign.runtime.fidelity.compare`: bf16 for float paths, <= 1 LSB for quantised
  outputs, equal for integers);
- ``host``: compiled with a Host partition (the node runs through onnxruntime on the board's
  ARM cores, so it proves nothing about the accelerator); ``strict`` compiles refuse these;
- ``refused``: a one-line :class:`~codesign.errors.CodesignError` (an unsupported form, an
  out-of-range value): the user is told, nothing is computed wrongly;
- ``wrong``: the simulator's numbers are outside the tolerance -- a bug;
- ``error``: any other exception -- a bug.

``python -m codesign.examples.conformance [--write docs/conformance.md]`` prints (or writes) the
table of counts per op; ``tests/conformance`` checks that no case is wrong or an error and that
the table in docs/ is the current one.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import warnings
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnx.numpy_helper

OUTCOMES = ("pass", "host", "refused", "wrong", "error")


@dataclass(frozen=True)
class CaseResult:
    """The outcome of one backend node test and, unless it passed, the one line that says why."""

    op: str
    case: str
    outcome: str
    detail: str = ""


def backend_cases(ops: Iterable[str]) -> Iterator[tuple[str, onnx.ModelProto, list]]:
    """(op, model, data sets) for every generated node test with one node of one of ``ops``.

    A data set is ``(inputs, expected outputs)``, lists of arrays in graph order. Cases of ops in
    other domains than the default one, and the ``_expanded`` function bodies (many nodes), are
    not taken.
    """
    from onnx.backend.test.case.node import collect_testcases

    wanted = set(ops)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")  # the generators divide by zero on purpose (inf cases)
        cases = collect_testcases(None)
    for case in cases:
        nodes = case.model.graph.node
        if len(nodes) == 1 and nodes[0].domain in ("", "ai.onnx") and nodes[0].op_type in wanted:
            yield nodes[0].op_type, case.model, case.data_sets


def run_case(op: str, name: str, model: onnx.ModelProto, data_sets: list) -> CaseResult:
    """Compile ``model`` and simulate every data set; classify the outcome (module doc)."""
    import codesign
    from codesign.errors import CodesignError
    from codesign.runtime.fidelity import compare
    from codesign.sim.functional import Simulator

    try:
        build = codesign.compile(model, synth=False, solver_time_limit=0.0)
    except CodesignError as e:
        return CaseResult(op, name, "refused", _one_line(e))
    except Exception as e:  # noqa: BLE001  (a bug in codesign is an outcome here, not a crash)
        return CaseResult(op, name, "error", f"compile: {type(e).__name__}: {_one_line(e)}")
    if any(layer.kind == "host" for layer in build.plan.layers):
        return CaseResult(op, name, "host", "runs on the Host through onnxruntime")
    inits = {i.name for i in model.graph.initializer}
    in_names = [v.name for v in model.graph.input if v.name not in inits]
    out_names = [v.name for v in model.graph.output]
    for inputs, expected in data_sets:
        feed = dict(zip(in_names, (_array(a) for a in inputs), strict=True))
        try:
            sim = Simulator(build.plan, build.root)
            outputs = sim.run(feed)
        except CodesignError as e:
            return CaseResult(op, name, "refused", _one_line(e))
        except Exception as e:  # noqa: BLE001
            return CaseResult(op, name, "error", f"simulate: {type(e).__name__}: {_one_line(e)}")
        ref = {n: _array(a) for n, a in zip(out_names, expected, strict=True)}
        undefined = _undefined_elements(model, feed)
        if undefined is not None:  # not compared: the spec gives these elements no value
            name = out_names[0]
            outputs = {**outputs, name: np.where(undefined, 0, outputs[name])}
            ref[name] = np.where(undefined, 0, ref[name].astype(outputs[name].dtype))
        constants = {n: sim.data(f) for n, f in sim.plan.constants.items()}
        for c in compare(sim.plan, outputs, ref, constants):
            if not c.passed:
                return CaseResult(
                    op, name, "wrong", f"{c.name}: max |err| {c.max_abs:.3g}, {c.criterion}"
                )
    return CaseResult(op, name, "pass")


def run(ops: Iterable[str] | None = None) -> list[CaseResult]:
    """Run every backend node test of ``ops`` (default: every op the frontend lowers)."""
    from codesign.frontend.lowerings import supported

    ops = [o for o in (supported() if ops is None else ops) if "." not in o]
    results = []
    for op, model, data_sets in backend_cases(ops):
        results.append(run_case(op, model.graph.name, model, data_sets))
    return sorted(results, key=lambda r: (r.op, r.case))


def table(results: Iterable[CaseResult], ops: Iterable[str]) -> str:
    """The Markdown table of outcome counts per op (every op in ``ops``, with or without cases)."""
    counts: dict[str, Counter] = {op: Counter() for op in ops}
    for r in results:
        counts.setdefault(r.op, Counter())[r.outcome] += 1
    lines = [
        "| op | cases | " + " | ".join(OUTCOMES) + " |",
        "|---|---:|" + "---:|" * len(OUTCOMES),
    ]
    for op in sorted(counts):
        c = counts[op]
        lines.append(
            f"| {op} | {sum(c.values())} | " + " | ".join(str(c[o]) for o in OUTCOMES) + " |"
        )
    return "\n".join(lines) + "\n"


_HEADER = """# ONNX backend conformance

The onnx package's backend node tests (generated by `onnx.backend.test.case.node`, onnx
{onnx_version}) for every op the frontend lowers, each compiled with `codesign.compile` and
simulated bit-accurately, compared with the test's expected outputs under the documented
tolerance (README, "Fidelity"). Outcomes: **pass** within tolerance on the accelerator path;
**host** runs through onnxruntime on the ARM cores (proves nothing about the accelerator);
**refused** with a one-line error (an unsupported form: nothing is computed wrongly); **wrong**
and **error** are bugs (the test suite fails on any). Cases whose graph holds one node of the op
are counted; `_expanded` function bodies are not.

Regenerate with `python -m codesign.examples.conformance --write docs/conformance.md`;
`tests/conformance/test_backend.py` checks that this table is current.

"""


def document(results: list[CaseResult], ops: Iterable[str]) -> str:
    """The whole docs/conformance.md text: header, table, and the refusals' reasons."""
    text = _HEADER.format(onnx_version=onnx.__version__) + table(results, ops)
    refused = [r for r in results if r.outcome != "pass"]
    if refused:
        text += "\n## Cases that do not pass, and why\n\n"
        text += "".join(f"- `{r.case}` ({r.outcome}): {r.detail}\n" for r in refused)
    return text


def _undefined_elements(model: onnx.ModelProto, feed: dict) -> np.ndarray | None:
    """The elements of a float -> integer Cast whose input is NaN, infinite or outside the
    target type's range: the ONNX spec leaves them undefined ("fixed point: undefined if OOR"),
    and the test generator's expected values follow whatever its ml_dtypes release does (it
    wrapped to int4 in 0.6 and gives 0 in 0.7). None for every other case."""
    node = model.graph.node[0]
    if node.op_type != "Cast":
        return None
    (x,) = feed.values()
    (to_attr,) = (a for a in node.attribute if a.name == "to")
    to = onnx.helper.tensor_dtype_to_np_dtype(onnx.helper.get_attribute_value(to_attr))
    if not np.issubdtype(x.dtype, np.floating) or to.kind not in "iu" and "int" not in to.name:
        return None
    import ml_dtypes

    info = ml_dtypes.iinfo(to)
    return ~np.isfinite(x) | (x < info.min) | (x > info.max)


def _array(a: object) -> np.ndarray:
    # the generators give numpy arrays, or TensorProtos for the types numpy lacks (int4, ...)
    if isinstance(a, onnx.TensorProto):
        return onnx.numpy_helper.to_array(a)
    return np.asarray(a)


def _one_line(e: BaseException) -> str:
    text = str(e).splitlines()[0] if str(e) else type(e).__name__
    # the compile names the in-memory model "model.onnx"; the case name says which
    return text.replace("\n", " ").replace("|", "\\|")


def main(argv: list[str] | None = None) -> int:
    """Print the conformance document, or write it with ``--write PATH``."""
    import click

    from codesign.fileio import atomic_write
    from codesign.frontend.lowerings import supported

    @click.command("python -m codesign.examples.conformance")
    @click.option("--write", "out", type=click.Path(dir_okay=False), help="Write the document.")
    def cli(out: str | None) -> None:
        ops = [o for o in supported() if "." not in o]
        text = document(run(ops), ops)
        if out:
            atomic_write(Path(out), text.encode())
            click.echo(out)
        else:
            click.echo(text, nl=False)

    try:
        cli.main(args=argv, standalone_mode=False)
    except click.UsageError as e:
        click.echo(f"error: {e.format_message()}", err=True)
        return 2
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.exit(main())
