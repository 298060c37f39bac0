"""The fuzz harness's verdict: exit 3 is a failure when only values changed (issue 10 item 2)."""

from __future__ import annotations

from tests.robustness import harness
from tests.robustness import mutations as mu

_COMPILED = harness.Outcome(("compile", "m.onnx", "-o", "b"), 0, "", "")
_FIDELITY = harness.Outcome(
    ("simulate", "b", "--reference"), 3, "", "error: output 'output' differs by 20 LSB\n"
)


def test_exit_3_is_accepted_after_a_structural_mutation() -> None:
    assert harness.verdict([_COMPILED, _FIDELITY], fresh_build=True) is None


def test_exit_3_is_a_failure_when_only_values_changed() -> None:
    failure = harness.verdict([_COMPILED, _FIDELITY], fresh_build=True, values_only=True)
    assert failure is not None and "values alone" in failure


def test_values_only_classifies_mutations() -> None:
    value = mu.SetInitValue(0, 0, 1.0)
    quant = mu.SetQuantParam(1, 0.5)
    assert mu.values_only([value, quant], [])
    assert not mu.values_only([value, mu.DropNode(0)], [])
    assert not mu.values_only([value], [mu.CutBytes(0.5, b"")])
