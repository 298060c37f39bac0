"""The onnx package's backend node tests for every op the frontend claims (docs/conformance.md).

No case may compute wrong numbers or end in an internal error: each passes within the documented
tolerance, or is refused with a one-line error. The table in docs/ must be the current one.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from codesign.examples import conformance
from codesign.frontend.lowerings import supported

DOC = Path(__file__).resolve().parents[2] / "docs" / "conformance.md"


@pytest.fixture(scope="module")
def results() -> list[conformance.CaseResult]:
    return conformance.run()


def test_no_case_is_wrong_or_an_internal_error(results):
    bad = [r for r in results if r.outcome in ("wrong", "error")]
    assert not bad, "\n".join(f"{r.case} ({r.outcome}): {r.detail}" for r in bad)


def test_every_claimed_op_has_cases(results):
    ops = {o for o in supported() if "." not in o}
    assert ops - {r.op for r in results} == set()


def test_refusals_are_one_line(results):
    for r in results:
        if r.outcome == "refused":
            assert r.detail and "\n" not in r.detail and "Traceback" not in r.detail


def test_the_table_in_docs_is_current(results):
    ops = [o for o in supported() if "." not in o]
    want = conformance.document(results, ops)
    assert DOC.read_text() == want, (
        "docs/conformance.md is stale: python -m codesign.examples.conformance "
        "--write docs/conformance.md"
    )
