"""Pruning is used, not ignored (issue 12 item 5), on models torch really exports.

A torch MLP (nn.Linear stack with ReLU or GELU) with half its FFN neurons zeroed through
torch.nn.utils.prune is exported with both exporters, optionally quantised by onnxruntime's
quantize_static (QDQ, its defaults); codesign's schedule.json must show the smaller GEMMs and the
outputs must equal onnxruntime's on the pruned model (within the bf16 rounding in float; within
the house's 1-LSB fidelity rule, and bit-equal to the unshrunk plan, once quantised).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
import torch  # noqa: E402
import torch.nn.utils.prune  # noqa: E402

ort_quant = pytest.importorskip("onnxruntime.quantization")

from codesign.api import compile as compile_model  # noqa: E402
from codesign.errors import UnsupportedError  # noqa: E402
from codesign.frontend import lowerings  # noqa: E402
from codesign.frontend.reference import run_onnxruntime  # noqa: E402
from codesign.passes import pipeline  # noqa: E402
from codesign.passes.shrink import ShrinkGemms  # noqa: E402

D_IN, D_FF, D_OUT, BATCH = 32, 64, 16, 8


def pruned_mlp(act: str = "relu", seed: int = 0) -> torch.nn.Module:
    """Linear(32, 64) -> act -> Linear(64, 16) with half the 64 FFN neurons pruned by L2 norm
    (torch.nn.utils.prune.ln_structured on the output rows of the first weight, made
    permanent). The pruned neurons keep their bias, as torch leaves it: the compiler must fold
    act(bias) into the next layer, not drop it."""
    torch.manual_seed(seed)
    act_mod = torch.nn.ReLU() if act == "relu" else torch.nn.GELU()
    m = torch.nn.Sequential(torch.nn.Linear(D_IN, D_FF), act_mod, torch.nn.Linear(D_FF, D_OUT))
    torch.nn.utils.prune.ln_structured(m[0], "weight", amount=0.5, n=2, dim=0)
    torch.nn.utils.prune.remove(m[0], "weight")
    return m.eval()


def export(m: torch.nn.Module, path: Path, dynamo: bool) -> Path:
    x = torch.randn(BATCH, D_IN)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kw = {"external_data": False} if dynamo else {}  # one self-contained file
        torch.onnx.export(
            m, (x,), str(path), dynamo=dynamo, input_names=["x"], output_names=["y"], **kw
        )
    return path


class _Reader(ort_quant.CalibrationDataReader):
    def __init__(self, xs: list[dict[str, np.ndarray]]) -> None:
        self._it = iter(xs)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._it, None)


def inputs(seed: int = 1) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [{"x": rng.normal(size=(BATCH, D_IN)).astype(np.float32)} for _ in range(4)]


def quantize(src: Path, dst: Path) -> Path:
    ort_quant.quantize_static(str(src), str(dst), _Reader(inputs()))  # QDQ per tensor: defaults
    return dst


def gemm_shapes(build_dir: Path) -> list[tuple[int, int, int]]:
    plan = json.loads((build_dir / "schedule.json").read_text())
    return [
        (g["schedule"]["M"], g["schedule"]["K"], g["schedule"]["N"])
        for g in plan["layers"]
        if g["kind"] == "gemm"
    ]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory):
    """The pruned MLP exported once per (activation, exporter), and quantised once."""
    cache: dict[tuple, Path] = {}

    def get(act: str, dynamo: bool, quantized: bool) -> Path:
        if act == "gelu" and "Erf" not in lowerings.supported():
            pytest.skip("the frontend does not lower GELU (Erf/Div) yet")
        key = (act, dynamo, quantized)
        if key not in cache:
            d = tmp_path_factory.mktemp(f"{act}_{dynamo}")
            path = export(pruned_mlp(act), d / "mlp.onnx", dynamo)
            cache[(act, dynamo, False)] = path
            cache[(act, dynamo, True)] = quantize(path, d / "mlp_q.onnx")
        return cache[key]

    return get


def _compile(path: Path):
    try:
        return compile_model(path, synth=False)
    except UnsupportedError as e:
        pytest.skip(f"the frontend does not lower this export yet: {e}")


@pytest.mark.parametrize("quantized", [False, True], ids=["float", "qdq"])
@pytest.mark.parametrize("dynamo", [True, False], ids=["dynamo", "torchscript"])
@pytest.mark.parametrize("act", ["relu", "gelu"])
def test_pruned_ffn_neurons_shrink_the_gemms(
    tmp_path: Path,
    exported,
    act: str,
    dynamo: bool,
    quantized: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model = exported(act, dynamo, quantized)
    build = _compile(model)
    build.save(tmp_path / "build")
    assert gemm_shapes(tmp_path / "build") == [(BATCH, D_IN, D_FF // 2), (BATCH, D_FF // 2, D_OUT)]
    x = inputs(seed=7)[0]
    got = build.simulate(x)["y"]
    ref = run_onnxruntime(model, x)["y"]
    if not quantized:
        tol = 2**-7 * float(np.abs(ref).max())  # bf16 operands, fp32 accumulation
        np.testing.assert_allclose(got, ref, rtol=0, atol=tol)
        return
    # the same numbers as the plan without the pass (bit-equal), and onnxruntime's within 1 LSB
    kw = dict(pipeline.to_hardware.__kwdefaults__)
    kw["passes"] = tuple(p for p in pipeline.PIPELINE if not isinstance(p, ShrinkGemms))
    monkeypatch.setattr(pipeline.to_hardware, "__kwdefaults__", kw)
    dense = compile_model(model, synth=False)
    assert [(g.schedule.K, g.schedule.N) for g in dense.plan.gemms()] == [
        (D_IN, D_FF),
        (D_FF, D_OUT),
    ]
    np.testing.assert_array_equal(got, dense.simulate(x)["y"])
    scale = _output_step(ref)
    lsb = np.rint(np.abs(got.astype(np.float64) - ref) / scale)
    assert lsb.max() <= 1 and (lsb == 0).mean() >= 0.99


def _output_step(y: np.ndarray) -> float:
    """The quantisation step of a dequantised output (its smallest non-zero value gap)."""
    gaps = np.diff(np.unique(y.astype(np.float64)))
    return float(gaps[gaps > 0].min())
