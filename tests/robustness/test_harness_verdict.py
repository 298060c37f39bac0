"""The fuzz harness's verdict: exit 3 is a failure when only values changed (issue 10 item 2)."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest

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
    value = mu.RedrawInts(0, 0, 1.0)
    quant = mu.SetScale(1, 0.5)
    assert mu.values_only([value, quant, mu.SetZeroPoint(0, 0.5), mu.RedrawFloats(0, 1, 1.0)], [])
    assert not mu.values_only([value, mu.DropNode(0)], [])
    assert not mu.values_only([value, mu.SetBatch(3)], [])
    assert not mu.values_only([value], [mu.CutBytes(0.5, b"")])
    assert not mu.values_only([mu.SetInitValue(0, 0, 2.0**31)], [])  # edge values: refusals


@pytest.mark.parametrize(
    "base, mutation",
    [
        ("qdq_mlp_pc_gemm", mu.RedrawInts(0, 1, 1.0)),
        ("qdq_mlp_pc_gemm", mu.RedrawInts(3, 2, 0.5, bits=20)),
        ("qdq_mlp_uint8", mu.SetScale(1, 10.0)),
        ("qdq_mlp_uint8", mu.SetZeroPoint(0, 0.9)),
        ("qdq_gemm_int16_wide", mu.SetBatch(33)),
        ("float_reshape", mu.SetBatch(7)),
        ("float_gemm", mu.ToggleTransB(1)),
        ("float_mlp_wide", mu.RedrawFloats(2, 3, 10.0)),
        ("dynamic_mlp", mu.RedrawInts(0, 4, 0.5)),
    ],
)
def test_structure_aware_mutations_keep_models_supported(
    base: str, mutation, tmp_path: Path
) -> None:
    """Each structure-aware mutation changes the model and it still compiles and simulates
    within the fidelity tolerance (issue 10 item 13)."""
    src = harness.BASE_BUILDERS[base](tmp_path / "base.onnx").read_bytes()
    data = mu.apply(src, [mutation], [])
    assert data != src
    onnx.checker.check_model(onnx.load_model_from_string(data), full_check=True)
    model_dir = harness.prepare_model_dir(tmp_path)
    outcomes = harness.drive(model_dir, data, (), reference=True)
    assert [o.code for o in outcomes] == [0, 0], outcomes
    assert harness.reached(outcomes) == ["scheduled", "compared"]


def test_reach_fractions() -> None:
    counts = {"cases": 10, "scheduled": 5, "compared": 2}
    assert harness.reach_fractions(counts) == {"scheduled": 0.5, "compared": 0.2}
