"""The files a plan's kinds emit into a build, and the PL blocks' synthesis figures.

Every registered kind's emitter (:mod:`codesign.kinds`, its ``emit`` entry) is given all the
plan's layers of that kind; what they return is collected here: RTL block specs (written as
Verilog with ``rtl/manifest.json``) and other files. The synthesis figures that the report adds
to the PL resources are computed the same way in memory (:func:`synthesized_figures`) and from a
build (:func:`synthesized_pl`), so a build's report equals the one made before it was saved.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from codesign.ir.plan import Plan
from codesign.kinds.registry import emitted, rtl_specs_for
from codesign.rtl import write_blocks

RTL_DIR = "rtl"


def write_emitted_files(root: Path, plan: Plan) -> None:
    """Write the non-RTL files the kinds emit (paths relative to ``root``, inside it)."""
    for e in emitted(plan):
        for rel, data in e.files:
            path = Path(rel)
            if path.is_absolute() or ".." in path.parts:
                raise ValueError(f"emitted file path must stay inside the build, not {rel!r}")
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            (root / path).write_bytes(data)


def _run_synth(synth: bool) -> bool:
    return synth and shutil.which("yosys") is not None


def write_rtl(root: Path, plan: Plan, synth: bool) -> dict[str, Any]:
    """Write the plan's blocks into ``root/rtl`` (with yosys figures when ``synth`` and yosys is
    installed); the manifest carries no wall times so builds stay byte-identical."""
    specs = rtl_specs_for(plan)
    if not specs:
        return {}
    run_synth = _run_synth(synth)
    manifest = write_blocks(root / RTL_DIR, specs, synth=run_synth)
    for entry in manifest["blocks"]:
        entry.get("synth", {}).pop("seconds", None)
    if synth and not run_synth:
        manifest["synth_note"] = "yosys not found on PATH: no synthesis figures"
    (root / RTL_DIR / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def _sum_figures(blocks: list[tuple[str, dict[str, Any]]]) -> dict[str, Any] | None:
    """{lut, ff, bram, dsp, uram, blocks, note} summed over (module, synth figures) pairs."""
    if not blocks:
        return None
    total: dict[str, Any] = {"lut": 0, "ff": 0, "bram": 0.0, "dsp": 0, "uram": 0}
    for _, s in blocks:
        total["lut"] += s["lut"]
        total["ff"] += s["ff"]
        total["bram"] += s["bram36"]
        total["dsp"] += s["dsp"]
        total["uram"] += s["uram"]
    total["blocks"] = [module for module, _ in blocks]
    total["note"] = blocks[0][1].get("note", "")
    return total


def synthesized_figures(plan: Plan, synth: bool) -> dict[str, Any] | None:
    """The summed yosys figures of the blocks ``plan`` needs, without writing a build (yosys
    results are cached by block parameters), or None without ``synth``, yosys or blocks."""
    if not _run_synth(synth):
        return None
    from codesign.rtl.synth import synthesize

    return _sum_figures(
        [(spec.module_name, synthesize(spec).to_json()) for spec in rtl_specs_for(plan)]
    )


def synthesized_pl(root: Path) -> dict[str, Any] | None:
    """Summed yosys figures of the build's RTL blocks: {lut, ff, bram, dsp, uram, blocks}, or
    None when the build has no synthesised blocks."""
    path = root / RTL_DIR / "manifest.json"
    if not path.is_file():
        return None
    blocks = [b for b in json.loads(path.read_text()).get("blocks", []) if "synth" in b]
    return _sum_figures([(b["module"], b["synth"]) for b in blocks])
