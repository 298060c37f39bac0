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


#: the onnxruntime element type (``ONNX_TENSOR_ELEMENT_DATA_TYPE_<name>``) of each dtype a Host
#: partition can read or write in the arena (a BOOL tensor is carried as uint8 0/1)
ORT_TYPES = {
    "int8": "INT8",
    "uint8": "UINT8",
    "int16": "INT16",
    "uint16": "UINT16",
    "int32": "INT32",
    "int64": "INT64",
    "float32": "FLOAT",
}


def _host_stages(plan: Plan) -> tuple[list[dict], list[dict]]:
    """host.cpp's stage table (:func:`codesign.hls.pl.stages`) and its Host partitions: model
    file and the arena region, onnxruntime element type and shape of each input and output.
    Raises PLCodegenError naming the partition's tensor whose dtype onnxruntime cannot hold."""
    regions, _ = pl.arena(plan)
    stages, partitions = [], []
    for st in pl.stages(plan):
        if st.segment >= 0:
            what = f"segment {st.segment}: {len(st.layers)} layer(s)"
            stages.append(
                {"segment": st.segment, "iterations": st.iterations, "partition": -1, "what": what}
            )
            continue
        layer = plan.layers[st.layers[0]]
        tensors = {}
        for group in ("inputs", "outputs"):
            tensors[group] = []
            for name in getattr(layer, group):
                r = regions[name]
                if r.dtype not in ORT_TYPES:
                    raise pl.PLCodegenError(
                        f"Host partition {layer.name!r}: tensor {name!r} is {r.dtype}; the host "
                        f"program passes only {', '.join(ORT_TYPES)} to onnxruntime"
                    )
                tensors[group].append(
                    {
                        "name": _c_string(name),
                        "offset": r.offset,
                        "bytes": r.nbytes,
                        "type": ORT_TYPES[r.dtype],
                        "shape": list(pl.shape_of(plan, name)),
                    }
                )
        stages.append(
            {
                "segment": -1,
                "iterations": 0,
                "partition": len(partitions),
                "what": f"Host partition {_safe(layer.name)}",
            }
        )
        partitions.append({"model": layer.model.path, **tensors})
    return stages, partitions


def _c_string(text: str) -> str:
    """``text`` as the body of a C++ string literal: every byte outside printable ASCII, and the
    quote and backslash, as an octal escape (a tensor name from the model is data)."""
    out = []
    for byte in text.encode("utf-8", "surrogatepass"):
        ch = chr(byte)
        out.append(ch if 32 <= byte < 127 and ch not in '"\\?' else f"\\{byte:03o}")
    return "".join(out)


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
    stages, partitions = _host_stages(plan)
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
        "stages": stages,
        "partitions": partitions,
        "model": _safe(plan.model),
        # every layer on the block, with its graph iterations (all heads of a batched product)
        "gemms": [
            {"name": _safe(plan.layers[i].name), "iterations": n}
            for i, n in pl.layer_iterations(plan).items()
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
        *([("host/partitions.h", pl.render("partitions.h.j2", **ctx))] if partitions else []),
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
