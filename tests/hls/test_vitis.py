"""The Vitis glue of a build: what build/README.md and the Makefile name exists, the host code
is valid C++ against XRT's API, system.cfg connects the PLIO names of docs/pl_streams.md, and
golden/ is the simulator's run on the seeded inputs."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from codesign.codegen import vitis
from codesign.hls import pl
from codesign.ir.data import stored_bytes
from codesign.sim.functional import Simulator

STUB = Path(__file__).parent / "xrt_stub"
#: a path inside a build, as the Makefile and README name them
_PATH = re.compile(
    r"\b(?:hls|host|aie|golden|weights)/[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)*|\bsystem\.cfg\b"
)


def _targets(makefile: str) -> set[str]:
    """Files the Makefile makes (rule targets): they are products, not inputs."""
    return {
        t
        for line in makefile.splitlines()
        if (m := re.match(r"^([^\s:=#][^:=]*):(?!=)", line))
        for t in m.group(1).split()
    }


@pytest.mark.parametrize("name", ["qdq", "float", "kpass"])
def test_everything_named_exists(saved, name):
    root, _ = saved(name)
    makefile = (root / "Makefile").read_text()
    readme = (root / "README.md").read_text()
    named = set(_PATH.findall(makefile)) | set(_PATH.findall(readme))
    named -= _targets(makefile)
    assert {"system.cfg", "hls/codesign_pl.cpp", "hls/hls_config.cfg", "host/host.cpp"} <= named
    # The ADF graph and aie.cfg are the AIE side's files (codesign.aie): until that side is in
    # the build they are the only names allowed to be missing, and only as a pair.
    aie = {vitis.AIE_GRAPH, vitis.AIE_CFG}
    if not (root / vitis.AIE_GRAPH).exists():
        assert not (root / "aie").exists() or not any((root / "aie").iterdir())
        named -= aie
    missing = sorted(n for n in named if not (root / n).exists())
    assert not missing
    # every make step of the flow is there, with the current v++ modes
    for step in ("v++ -c --mode aie", "v++ -c --mode hls", "v++ -l", "v++ -p", "x86simulator"):
        assert step in makefile
    for target in ("x86sim:", "hw_emu:", "hw:"):
        assert f"\n{target}" in makefile
    assert f"PLATFORM ?= {vitis.PLATFORMS['vek280']}" in makefile
    assert "xilinx_vek280_base" in vitis.PLATFORMS["vek280"]


@pytest.mark.gxx
@pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")
def test_host_code_is_valid_cpp_against_the_xrt_api(saved):
    """Syntax and types only: g++ -fsyntax-only against tests/hls/xrt_stub, a tiny stand-in
    that declares the XRT native API members the host uses (no XRT library exists here, so
    nothing is linked or run)."""
    root, _ = saved("qdq")
    r = subprocess.run(
        [
            "g++",
            "-std=c++17",
            "-Wall",
            "-Werror",
            "-fsyntax-only",
            "-I",
            str(STUB),
            str(root / "host" / "host.cpp"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 0, r.stderr


def test_system_cfg_connects_every_plio_of_the_block(saved):
    root, build = saved("qdq")
    cfg = (root / "system.cfg").read_text()
    a, b, c = pl.stream_names(build.plan)
    rtp = pl.rtp_names(build.plan)
    L, C = build.plan.block.cascade, build.plan.block.chains
    assert (len(a), len(b), len(c), len(rtp)) == (L, L * C, C, C)
    assert a[0] == "a_0" and b[-1] == f"b_{C - 1}_{L - 1}" and c[-1] == f"c_{C - 1}"
    assert rtp == [f"rtp_{i}" for i in range(C)]
    connects = re.findall(r"^stream_connect=(\S+):(\S+)$", cfg, re.M)
    assert sorted(connects) == sorted(
        [(f"pl.{n}", f"ai_engine_0.{n}") for n in a + b + rtp]
        + [(f"ai_engine_0.{n}", f"pl.{n}") for n in c]
    )
    kernel = (root / "hls" / "codesign_pl.cpp").read_text()
    for n in a + b + c + rtp:
        assert re.search(rf"hls::stream<[^>]+>+& {n}[,)]", kernel), n
        assert f"mode=axis port={n})" in kernel
    assert "sp=pl.arena:" in cfg


def test_every_stream_connect_endpoint_exists_on_both_sides(saved):
    """system.cfg against the generated ADF graph and the PL kernel: each stream_connect names
    a PL kernel port of the right direction and width and a PLIO the graph declares, of the
    same direction and width; every PLIO of the graph is connected."""
    from tests.aie.test_graph import parse_graph

    for name in ("qdq", "dynamic"):
        root, build = saved(name)
        cfg = (root / "system.cfg").read_text()
        graph = parse_graph((root / "aie" / "graph.h").read_text())
        plios = {pname: (var, int(bits)) for var, pname, bits, _ in graph["plio_create"]}
        ins = {pname for pname, (var, _) in plios.items() if var in graph["plio_in"]}
        outs = {pname for pname, (var, _) in plios.items() if var in graph["plio_out"]}
        kernel = (root / "hls" / "codesign_pl.cpp").read_text()
        beat = pl.beat_bits(build.plan)
        ports = {}
        for typ, port in re.findall(r"hls::stream<(beat_t|ap_uint<32>)>& (\w+)[,)]", kernel):
            ports[port] = beat if typ == "beat_t" else 32
        connected = set()
        for src, dst in re.findall(r"^stream_connect=(\S+):(\S+)$", cfg, re.M):
            if src.startswith("pl."):
                port, plio = src[3:], dst.removeprefix("ai_engine_0.")
                assert dst.startswith("ai_engine_0.") and plio in ins, (name, src, dst)
            else:
                port, plio = dst.removeprefix("pl."), src.removeprefix("ai_engine_0.")
                assert src.startswith("ai_engine_0.") and plio in outs, (name, src, dst)
            assert port in ports, (name, port)
            assert ports[port] == plios[plio][1], (name, port, ports[port], plios[plio])
            connected.add(plio)
        assert connected == set(plios), (name, set(plios) - connected)


def test_golden_is_the_simulators_run(saved):
    root, build = saved("dynamic")
    index = json.loads((root / "golden" / "golden.json").read_text())
    assert index["seed"] == vitis.GOLDEN_SEED
    x = {}
    for spec, t in zip(index["inputs"], build.plan.inputs, strict=True):
        assert spec["name"] == t.name and spec["shape"] == list(t.shape)
        x[t.name] = np.frombuffer((root / spec["file"]).read_bytes(), dtype=t.dtype).reshape(
            t.shape
        )
    y = Simulator(build.plan).run(x)
    for spec, t in zip(index["outputs"], build.plan.outputs, strict=True):
        assert (root / spec["file"]).read_bytes() == stored_bytes(y[t.name], t.dtype)


def test_arena_regions_are_aligned_and_disjoint(saved):
    root, build = saved("reshape")
    arena = json.loads((root / "hls" / "arena.json").read_text())
    spans = sorted({(r["offset"], r["bytes"]) for r in arena["regions"].values()})
    for (o1, n1), (o2, _) in zip(spans, spans[1:], strict=False):
        assert o1 + n1 <= o2
    assert all(o % pl.ARENA_ALIGN == 0 for o, _ in spans)
    assert spans[-1][0] + spans[-1][1] <= arena["bytes"]
    # a reshape's output is its input's bytes
    from codesign.ir.plan import ReshapeLayer

    (r,) = [layer for layer in build.plan.layers if isinstance(layer, ReshapeLayer)]
    assert arena["regions"][r.outputs[0]] == arena["regions"][r.inputs[0]]
