"""The build-level Vitis files: the PL kernel, system.cfg, Makefile, host application, golden/.

What a Vitis user runs, in order, is written into ``build/README.md``. Every file is a pure
function of the Plan (golden/ is the simulator's run on inputs drawn from a fixed seed), so
builds stay byte-deterministic. The PLIO names and stream order are
:mod:`codesign.hls.pl`'s (docs/pl_streams.md).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from codesign.aie.emit import block_layers
from codesign.hls import pl
from codesign.ir.data import stored_bytes
from codesign.ir.plan import GemmLayer, Plan

#: the platform of each board that has a Vitis base platform (AMD's names)
PLATFORMS = {"vek280": "xilinx_vek280_base_202420_1"}
#: what the AIE side writes (the ADF graph and its v++ config), named here for the Makefile
AIE_GRAPH = "aie/graph.cpp"
AIE_CFG = "aie.cfg"
#: the ADF graph instance the host runs (the AIE side declares it under this name)
GRAPH_NAME = "g"
#: the seed of golden/'s inputs
GOLDEN_SEED = 0
KERNEL = "codesign_pl_top"


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:100]


def golden_inputs(plan: Plan) -> dict[str, np.ndarray]:
    """golden/'s inputs: :func:`codesign.sim.inputs.random_inputs` with :data:`GOLDEN_SEED`."""
    from codesign.sim.inputs import random_inputs

    return random_inputs(plan, GOLDEN_SEED)


def golden_files(plan: Plan) -> list[tuple[str, bytes]]:
    """golden/: the seeded inputs and the simulator's outputs (stored bytes) and an index.

    A plan too large to simulate in this machine's memory gets no golden data (inputs included:
    they can be as large), and golden.json says why (``outputs_note``); the compile itself does
    not fail for that. Run ``codesign simulate`` on a larger host to make them."""
    from codesign.errors import MemoryLimitError
    from codesign.sim.functional import Simulator
    from codesign.sim.memory import check_fits

    files, index = [], {"seed": GOLDEN_SEED, "inputs": [], "outputs": []}
    try:  # the estimate counts the inputs too: none is drawn before the run is known to fit
        check_fits(plan, None)
    except MemoryLimitError:
        # no figures of this host in the note: the build's bytes stay the same across hosts
        index["outputs_note"] = (
            "not simulated at compile: the run needs more memory than the host had"
        )
        groups: tuple = ()
    else:
        x = golden_inputs(plan)
        y = Simulator(plan).run(x)
        groups = (("inputs", plan.inputs, x), ("outputs", plan.outputs, y))
    for group, specs, values in groups:
        for t in specs:
            path = f"golden/{group}/{_safe(t.name)}.bin"
            files.append((path, stored_bytes(values[t.name], t.dtype)))
            index[group].append(
                {"name": t.name, "dtype": t.dtype, "shape": list(t.shape), "file": path}
            )
    files.append(("golden/golden.json", (json.dumps(index, indent=2) + "\n").encode()))
    return files


def _host_tables(plan: Plan) -> dict:
    regions, size = pl.arena(plan)
    data = [
        {"file": f.path, "offset": regions[f.path].offset, "bytes": regions[f.path].nbytes}
        for f in pl.data_files(plan)
    ]
    ins = [
        {
            "file": f"golden/inputs/{_safe(t.name)}.bin",
            "offset": regions[t.name].offset,
            "bytes": regions[t.name].nbytes,
            "name": t.name,
        }
        for t in plan.inputs
    ]
    outs = [
        {
            "file": f"golden/outputs/{_safe(t.name)}.bin",
            "offset": regions[t.name].offset,
            "bytes": regions[t.name].nbytes,
            "name": t.name,
        }
        for t in plan.outputs
    ]
    return {"data": data, "inputs": ins, "outputs": outs, "arena_bytes": size}


def arena_json(plan: Plan) -> bytes:
    """hls/arena.json: every tensor's and data file's region of the PL arena."""
    regions, size = pl.arena(plan)
    body = {
        "bytes": size,
        "align": pl.ARENA_ALIGN,
        "regions": {
            k: {"offset": r.offset, "bytes": r.nbytes, "dtype": r.dtype}
            for k, r in sorted(regions.items())
        },
    }
    return (json.dumps(body, indent=2, sort_keys=True) + "\n").encode()


def vitis_files(plan: Plan) -> list[tuple[str, bytes]]:
    """Every build-level PL and Vitis file of ``plan`` as (path in the build, bytes).

    The per-GEMM movers (``hls/l<i>_<name>.h``) are made here too; the per-vector-layer units
    come from the vector kind's emitter.
    """
    a, b, c = pl.stream_names(plan)
    tables = _host_tables(plan)
    iterations = pl.graph_iterations(plan)
    platform = PLATFORMS.get(plan.board, f"xilinx_{plan.board}_base")
    ctx = {
        "plan": plan,
        "kernel": KERNEL,
        "a_streams": a,
        "b_streams": b,
        "c_streams": c,
        "rtp_streams": pl.rtp_names(plan),
        "platform": platform,
        "aie_graph": AIE_GRAPH,
        "aie_cfg": AIE_CFG,
        "graph_name": GRAPH_NAME,
        "iterations": iterations,
        # every layer on the block (a batched product's iterations cover all its heads)
        "gemms": [
            {
                "name": g.name,
                "iterations": getattr(g, "batch", 1)
                * g.schedule.graph_iterations
                * g.schedule.k_passes,
            }
            for _, g in block_layers(plan)
        ],
        **tables,
    }
    files = [
        ("hls/pl_common.h", pl.common_header(plan)),
        *pl.layer_files(plan, GemmLayer),
        pl.sequencer_file(plan, _emitted_paths(plan)),
        ("hls/arena.json", arena_json(plan)),
        ("hls/hls_config.cfg", pl.render("hls_config.cfg.j2", **ctx)),
        ("system.cfg", pl.render("system.cfg.j2", **ctx)),
        ("Makefile", pl.render("Makefile.j2", **ctx)),
        ("host/host.cpp", pl.render("host.cpp.j2", **ctx)),
        ("README.md", pl.render("build_README.md.j2", **ctx)),
    ]
    return files + golden_files(plan)


def _emitted_paths(plan: Plan) -> frozenset[str]:
    """Paths of the files the plan's kinds emit (their ``emit`` entries)."""
    from codesign.codegen.rtl_blocks import emitted

    return frozenset(rel for e in emitted(plan) for rel, _ in e.files)


def write_vitis(root: Path, plan: Plan) -> None:
    """Write :func:`vitis_files` into the build being assembled at ``root`` (folders made one
    level at a time and files written without following symlinks: :func:`codesign.fileio.write_in`)."""
    from codesign.codegen.datafiles import make_dirs_in
    from codesign.fileio import write_in

    for rel, data in vitis_files(plan):
        make_dirs_in(root, Path(rel).as_posix())
        write_in(root, Path(rel).as_posix(), data)
