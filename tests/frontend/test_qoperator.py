"""com.microsoft QGemm / QLinearAdd (onnxruntime's QOperator format): the lowering's checks.
Compilation within tolerance of every QOperator form is tested in test_ort_quantizer_forms.py
and test_transformer_ffn_forms.py."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

import codesign
from codesign.errors import CodesignError
from codesign.examples import models


@pytest.fixture(autouse=True)
def _quiet():
    logging.disable(logging.WARNING)
    yield
    logging.disable(logging.NOTSET)


@pytest.mark.parametrize("use_gemm, slot", [(True, 4), (False, 4)])
def test_a_zero_weight_scale_is_refused_in_one_line(use_gemm, slot, tmp_path: Path) -> None:
    path = models.qdq_mlp(tmp_path / "m.onnx", use_gemm=use_gemm, quant_format="QOperator")
    m = onnx.load(path)
    op = "QGemm" if use_gemm else "QLinearAdd"
    node = next(n for n in m.graph.node if n.op_type == op)
    name = node.input[slot]
    for i, t in enumerate(m.graph.initializer):
        if t.name == name:
            zero = np.zeros_like(numpy_helper.to_array(t))
            m.graph.initializer[i].CopyFrom(numpy_helper.from_array(zero, name))
    onnx.save(m, path)
    with pytest.raises(CodesignError) as e:
        codesign.compile(path, synth=False)
    msg = str(e.value)
    assert "\n" not in msg and name in msg and "finite and positive" in msg, msg
