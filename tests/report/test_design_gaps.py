"""The report says where the generated design does not do what the plan models."""

from __future__ import annotations

import dataclasses

import codesign
from codesign.examples import models
from codesign.report.plan_report import reuse_notes


def _with_dataflow(plan, dataflow: str, reuse_plan: str | None):
    def one(x):
        if x.kind != "gemm":
            return x
        s = dataclasses.replace(x.schedule, dataflow=dataflow, reuse_plan=reuse_plan)
        return dataclasses.replace(x, schedule=s)

    return dataclasses.replace(plan, layers=tuple(one(x) for x in plan.layers))


def test_a_reuse_dataflow_is_flagged_as_not_in_the_build(tmp_path) -> None:
    plan = codesign.compile(models.qdq_mlp(tmp_path / "m.onnx"), synth=False).plan
    assert reuse_notes(_with_dataflow(plan, "tempus", None)) == []
    (note,) = reuse_notes(_with_dataflow(plan, "reuse", "a_panel"))
    assert "a_panel" in note and "does not express" in note and "DDR" in note
