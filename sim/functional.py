"""The functional simulator: executes a build's Plan, layer by layer, from its packed files.

GEMM layers run tile by tile as the temporal block does: for each M tile and each K pass, every
core (chain c, cascade position l) multiplies its A tile by the B tile it reads from the packed
``tempus.b/1`` weight stream, the cascade adds the partials in order, and the epilogue runs on the
finished accumulator. Graph iterations are independent, so the N tiles of one M tile are computed
together as one batched product (vectorisation, not a shortcut: every per-core product is still
formed from the streamed tile). All arithmetic is :mod:`codesign.sim.numerics`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from codesign.codegen.datafiles import read
from codesign.errors import BuildError, OptionError
from codesign.fileio import check_tree, read_in
from codesign.ir.graph import numpy_dtype
from codesign.ir.layouts import unpack_b
from codesign.ir.plan import GemmLayer, Layer, Plan, ReshapeLayer, VectorLayer, from_json
from codesign.sim import numerics, vector


def load_plan(build: str | os.PathLike[str]) -> tuple[Path, Plan]:
    """Read and check ``build/schedule.json`` (:func:`codesign.sim.plan_check.check_plan`);
    BuildError when the build is missing, unreadable or inconsistent."""
    from codesign.sim.plan_check import check_plan

    root = Path(build)
    path = root / "schedule.json"
    if not path.is_file():
        raise BuildError(
            f"{root}: not a codesign build (no schedule.json); run codesign compile first"
        )
    check_tree(root)  # a build holding a symlink, FIFO, socket or device is refused whole
    try:
        # no symlink, FIFO or device: read_in opens it no-follow and checks the handle
        plan = from_json(read_in(root, "schedule.json", max_bytes=1 << 30).decode("utf-8"))
    except (ValueError, KeyError, TypeError, UnicodeDecodeError, RecursionError) as e:
        raise BuildError(f"{path}: unreadable schedule: {' '.join(str(e).split())[:300]}") from None
    check_plan(plan, root)
    return root, plan


class Simulator:
    """Runs one build's Plan on inputs keyed by the ONNX graph input names."""

    def __init__(self, build: str | os.PathLike[str]) -> None:
        self.root, self.plan = load_plan(build)
        self._cache: dict[str, Any] = {}

    def data(self, f) -> np.ndarray:
        if f.path not in self._cache:
            self._cache[f.path] = read(self.root, f)
        return self._cache[f.path]

    def check_inputs(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Match inputs to the plan's graph inputs by name, shape and dtype."""
        out = {}
        expected = {t.name: t for t in self.plan.inputs}
        missing = sorted(set(expected) - set(inputs))
        if missing:
            raise OptionError(
                f"inputs must include {', '.join(missing)} (the graph inputs are {', '.join(expected)})"
            )
        for name, t in expected.items():
            x = np.asarray(inputs[name])
            if tuple(x.shape) != tuple(t.shape):
                raise OptionError(
                    f"input {name!r} must have shape {tuple(t.shape)}, not {tuple(x.shape)}"
                )
            want = numpy_dtype(t.dtype)
            if x.dtype != want and not np.can_cast(x.dtype, want, casting="same_kind"):
                raise OptionError(f"input {name!r} must be {t.dtype}, not {x.dtype}")
            out[name] = x.astype(want, copy=False)
        return out

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Execute every layer in order; return the graph outputs by name."""
        env = self.run_all(inputs)
        return {t.name: env[t.name] for t in self.plan.outputs}

    def run_all(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Execute every layer in order; return every tensor (inputs, constants, activations)."""
        env: dict[str, np.ndarray] = dict(self.check_inputs(inputs))
        for name, f in self.plan.constants.items():
            env[name] = self.data(f)
        # float overflow to inf/NaN is IEEE arithmetic the hardware does too, not a warning
        with np.errstate(all="ignore"):
            for layer in self.plan.layers:
                results = EXECUTORS[layer.kind](
                    self, layer, [env[i] if i else None for i in layer.inputs]
                )
                for name, value in zip(layer.outputs, results, strict=True):
                    env[name] = value
        return env


def _run_gemm(
    sim: Simulator, layer: GemmLayer, args: list[np.ndarray | None]
) -> tuple[np.ndarray, ...]:
    s = layer.schedule
    a = args[0]
    out_shape = a.shape[:-1] + (s.N,)
    L, C = s.block.cascade, s.block.chains
    m, k, n = s.tile.m, s.tile.k, s.tile.n
    bf16 = layer.dtype == "bf16"
    Bc, bound = _core_weights(sim, layer)  # [k_pass, core, k, n_tile*chain*n]
    A = np.zeros((s.padded_M, s.padded_K), dtype=Bc.dtype)
    A[: s.M, : s.K] = numerics.to_bf16(a.reshape(s.M, s.K)) if bf16 else a.reshape(s.M, s.K)
    # A tiles [m_tile, k_pass, core, m, k]: the same A tile goes to every chain
    At = A.reshape(s.m_tiles, m, s.k_passes, L, k).transpose(0, 2, 3, 1, 4)
    cols = s.n_tiles * C * n
    acc = np.zeros((s.m_tiles, m, cols), dtype=np.float32 if bf16 else np.int64)
    for i in range(s.m_tiles):  # graph iterations of M tile i (all its N tiles at once)
        for p in range(s.k_passes):
            if bf16:
                for core in range(L):  # the cascade adds the fp32 partials in chain order
                    partial = numerics.mac_partial_bf16(At[i, p, core], Bc[p, core])
                    acc[i] = numerics.cascade_add_f32(acc[i], partial)
            else:
                # Integer partials are exact and acc32 wrap-around is associative, so the L core
                # products of this pass and their cascade sum are one product over the pass's
                # L*k slice: the same number, formed in one BLAS call.
                a_pass = np.ascontiguousarray(At[i, p].transpose(1, 0, 2).reshape(m, L * k))
                partial = numerics.mac_partial_int(a_pass, Bc[p].reshape(L * k, -1), bound=bound)
                acc[i] = numerics.accumulate(acc[i], partial, layer.dtype)
    # columns are ordered (n_tile, chain, n): exactly the output's N order
    full = acc.reshape(s.padded_M, s.padded_N)[: s.M, : s.N]
    y = _epilogue(sim, layer, full, args)
    return (y.reshape(out_shape),)


def _core_weights(sim: Simulator, layer: GemmLayer) -> tuple[np.ndarray, int | None]:
    """The streamed B tiles regrouped per (K pass, core) as [k, n_tile*chain*n] matrices, and
    the bound of one pass's integer products (cached per layer). Integer weights are held as
    float32 when every pass sum stays below 2**24 (exact there, and twice as fast as float64)."""
    key = f"{layer.weight.path}#core"
    if key not in sim._cache:
        s = layer.schedule
        B = unpack_b(sim.data(layer.weight), s)  # [n_tile, k_pass, chain, core, k, n]
        bound = 0
        if layer.dtype != "bf16":
            a_lo, a_hi = numerics.int_range(sim.plan.tensor(layer.inputs[0]).dtype)
            bmax = int(np.abs(B.astype(np.int64)).max(initial=0))
            bound = max(abs(a_lo), abs(a_hi)) * bmax * s.tile.k * s.block.cascade
        exact_f32 = layer.dtype == "bf16" or bound < numerics.EXACT_F32
        Bc = np.ascontiguousarray(
            B.transpose(1, 3, 4, 0, 2, 5), dtype=np.float32 if exact_f32 else np.float64
        )
        sim._cache[key] = (Bc.reshape(s.k_passes, s.block.cascade, s.tile.k, -1), bound)
    return sim._cache[key]


def _epilogue(sim: Simulator, layer: GemmLayer, acc: np.ndarray, args: list) -> np.ndarray:
    bias = sim.data(layer.bias) if layer.bias else None
    if layer.dtype == "bf16":
        return numerics.gemm_epilogue_bf16(acc, bias=bias, relu=layer.relu)
    r = layer.requant
    requant = None
    if r is not None:
        shift = sim.data(r.shift)
        if shift.size and (shift.min() < 0 or shift.max() > 62):  # data from a build: refuse
            raise BuildError(
                f"{sim.root / r.shift.path}: requantisation shifts must lie in 0..62, "
                f"not {shift.min()}..{shift.max()}"
            )
        requant = (sim.data(r.multiplier), shift, r.zero_point, r.dtype, r.rounding)
    return numerics.gemm_epilogue_int(
        acc,
        dtype=layer.dtype,
        acc_shift=layer.acc_shift,
        bias=bias,
        a_zero_point=args[1] if len(args) > 1 else None,
        colsum=sim.data(layer.colsum) if layer.colsum else None,
        relu=layer.relu,
        requant=requant,
    )


def _run_vector(sim: Simulator, layer: VectorLayer, args: list) -> tuple[np.ndarray, ...]:
    return vector.apply(layer.fn, [x for x in args if x is not None], dict(layer.attrs))


def _run_reshape(sim: Simulator, layer: ReshapeLayer, args: list) -> tuple[np.ndarray, ...]:
    return (args[0].reshape(layer.shape),)


EXECUTORS: dict[str, Callable[[Simulator, Layer, list], tuple[np.ndarray, ...]]] = {
    "gemm": _run_gemm,
    "vector": _run_vector,
    "reshape": _run_reshape,
}


def simulate(build: str | os.PathLike[str], inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Run the build at ``build`` on ``inputs``; return its outputs by graph output name."""
    if not inputs and not Path(build).exists():
        raise BuildError(f"{build}: no such build directory")
    from codesign.sim.memory import check_fits

    sim = Simulator(build)
    check_fits(sim.plan, build)
    return sim.run(inputs)
