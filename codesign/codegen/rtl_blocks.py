"""Which PL blocks (codesign.rtl) a plan needs, and their synthesis figures for the report.

A temporal-block build needs a requantiser per output dtype (int32 accumulators leave the
cascade into the PL) and a broadcaster that replays A tiles to every chain (Tempus's PL
replication without DDR re-reads). Parameters are rounded up to a few sizes (powers of two) so
that many models share the same Verilog and synthesis cache entries.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from codesign.boards import load as load_board
from codesign.ir.plan import Plan
from codesign.rtl import BlockSpec, write_blocks
from codesign.schedulers.tempus import OPERAND_BYTES

RTL_DIR = "rtl"
#: smallest sizes generated (rounded up in powers of two from here, to share cached Verilog)
MIN_CHANNELS = 1024
MIN_DEPTH = 512


def _pow2_at_least(x: int, floor: int) -> int:
    v = floor
    while v < x:
        v *= 2
    return v


def rtl_specs_for(plan: Plan) -> list[BlockSpec]:
    """The RTL blocks ``plan`` uses, in a fixed order."""
    gemms = plan.gemms()
    beat_bits = max(load_board(plan.board).plio.widths_bits)  # the blocks stream whole PLIO beats
    specs: list[BlockSpec] = []
    by_dtype: dict[str, int] = {}
    for g in gemms:
        if g.requant is not None:
            n = g.schedule.N
            by_dtype[g.requant.dtype] = max(by_dtype.get(g.requant.dtype, 0), n)
    for dtype, channels in sorted(by_dtype.items()):
        specs.append(
            BlockSpec.of(
                "requantizer",
                lanes=beat_bits // 32,
                out_dtype=dtype,
                max_channels=_pow2_at_least(channels, MIN_CHANNELS),
            )
        )
    if gemms:
        beats = max(
            g.schedule.tile.m * g.schedule.tile.k * OPERAND_BYTES[g.dtype][0] * 8 // beat_bits
            for g in gemms
        )
        specs.append(
            BlockSpec.of(
                "broadcaster",
                width=beat_bits,
                outputs=plan.block.chains,
                depth=_pow2_at_least(beats, MIN_DEPTH),
            )
        )
    return specs


def write_rtl(root: Path, plan: Plan, synth: bool) -> dict[str, Any]:
    """Write the plan's blocks into ``root/rtl`` (with yosys figures when ``synth`` and yosys is
    installed); the manifest carries no wall times so builds stay byte-identical."""
    specs = rtl_specs_for(plan)
    if not specs:
        return {}
    run_synth = synth and shutil.which("yosys") is not None
    manifest = write_blocks(root / RTL_DIR, specs, synth=run_synth, parents=False)
    for entry in manifest["blocks"]:
        entry.get("synth", {}).pop("seconds", None)
    if synth and not run_synth:
        manifest["synth_note"] = "yosys not found on PATH: no synthesis figures"
    (root / RTL_DIR / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def synthesized_pl(root: Path) -> dict[str, Any] | None:
    """Summed yosys figures of the build's RTL blocks: {lut, ff, bram, dsp, uram, blocks}, or
    None when the build has no synthesised blocks."""
    path = root / RTL_DIR / "manifest.json"
    if not path.is_file():
        return None
    blocks = [b for b in json.loads(path.read_text()).get("blocks", []) if "synth" in b]
    if not blocks:
        return None
    total = {"lut": 0, "ff": 0, "bram": 0.0, "dsp": 0, "uram": 0}
    for b in blocks:
        s = b["synth"]
        total["lut"] += s["lut"]
        total["ff"] += s["ff"]
        total["bram"] += s["bram36"]
        total["dsp"] += s["dsp"]
        total["uram"] += s["uram"]
    total["blocks"] = [b["module"] for b in blocks]
    total["note"] = blocks[0]["synth"].get("note", "")
    return total
