"""``codesign prune`` round trips: its output is a model that codesign compiles and that
simulates to onnxruntime's outputs on that same pruned model; each method leaves the sparsity
it promises, which the compiler then uses (neurons: smaller GEMMs; nm 2:4: compressed weights);
user errors are one line with exit 2."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

pytest.importorskip("torch")

from codesign.api import compile as compile_model  # noqa: E402
from codesign.frontend.reference import run_onnxruntime  # noqa: E402
from codesign.sim import numerics  # noqa: E402
from tests.test_pruning import D_FF, D_IN, D_OUT, export, inputs  # noqa: E402


@pytest.fixture(scope="module")
def dense(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    torch.manual_seed(3)
    m = torch.nn.Sequential(
        torch.nn.Linear(D_IN, D_FF), torch.nn.ReLU(), torch.nn.Linear(D_FF, D_OUT)
    ).eval()
    return export(m, tmp_path_factory.mktemp("dense") / "mlp.onnx", dynamo=False)


def _weights(path: Path) -> list[np.ndarray]:
    """The [K, N] weights of the model's Gemm nodes (torch writes transB=1)."""
    m = onnx.load(path)
    inits = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    return [inits[n.input[1]].T for n in m.graph.node if n.op_type == "Gemm"]


@pytest.mark.parametrize(
    ("method", "sparsity"), [("magnitude", "0.5"), ("nm", "2:4"), ("neurons", "50%")]
)
def test_prune_round_trips(cli, dense: Path, tmp_path: Path, method: str, sparsity: str) -> None:
    out = tmp_path / f"{method}.onnx"
    r = cli("prune", dense, "--method", method, "--sparsity", sparsity, "-o", out)
    assert r.code == 0, r.err
    assert f"wrote {out}" in r.out
    w1, w2 = _weights(out)
    if method == "magnitude":
        assert all((w == 0).mean() == pytest.approx(0.5, abs=1 / w.size) for w in (w1, w2))
    elif method == "nm":
        assert all(numerics.nm_satisfied(w, 2, 4, axis=0) for w in (w1, w2))
    else:  # half the FFN neurons lose their weight column; the output layer is kept whole
        assert (~np.any(w1 != 0, axis=0)).sum() == D_FF // 2 and np.all(w2 != 0)
    build = compile_model(out, synth=False)
    x = inputs(seed=11)[0]
    got = build.simulate(x)["y"]
    ref = run_onnxruntime(out, x)["y"]
    np.testing.assert_allclose(got, ref, rtol=0, atol=2**-7 * float(np.abs(ref).max()))
    gemms = build.plan.gemms()
    if method == "neurons":
        assert [(g.schedule.K, g.schedule.N) for g in gemms] == [
            (D_IN, D_FF // 2),
            (D_FF // 2, D_OUT),
        ]
    if method == "nm":
        assert all(g.sparse is not None for g in gemms)
    report = build.report()
    zeros = [x["weight_zero_fraction"] for x in report["layers"] if x["kind"] == "gemm"]
    assert min(zeros) >= (0.0 if method == "neurons" else 0.49)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("--method", "heads", "--sparsity", "0.5"), "no attention output projection"),
        (("--method", "nm", "--sparsity", "3:5"), "N:M with M a power of two"),
        (("--method", "magnitude", "--sparsity", "1.5"), "fraction in (0, 1)"),
        (("--method", "bogus", "--sparsity", "0.5"), "--method"),
    ],
)
def test_prune_errors_are_one_line(cli, dense: Path, tmp_path: Path, args, needle) -> None:
    r = cli("prune", dense, *args, "-o", tmp_path / "out.onnx")
    assert r.code == 2
    assert needle in r.err and len(r.err.strip().splitlines()) == 1
    assert not (tmp_path / "out.onnx").exists()


def test_prune_refuses_a_quantized_model_and_a_missing_file(cli, dense: Path, tmp_path: Path):
    from tests.test_pruning import quantize

    q = quantize(dense, tmp_path / "q.onnx")
    r = cli("prune", q, "--method", "nm", "--sparsity", "2:4", "-o", tmp_path / "o.onnx")
    assert r.code == 2 and "prune the float model before quantizing" in r.err
    r = cli("prune", tmp_path / "nope.onnx", "--method", "nm", "--sparsity", "2:4", "-o", "x.onnx")
    assert r.code == 2 and "no such model file" in r.err
