"""Power: device static, AIE per active core at its clock, PL dynamic per resource and toggle rate,
DDR/NoC fixed plus per GB/s, and the platform (PS, I/O, clocking).

Calibrated on Tempus's Vivado report (REFERENCES.md s3): coefficients and their sources are in the
board file's ``power`` section. Assumptions: AIE power is linear in active cores and clock at the
voltage of the calibration build (vectorless core load 0.6); PL dynamic power is linear in
resources, clock and toggle rate (Vivado's default 12.5% is the reference); the NoC term is linear
in achieved DDR traffic; the PS, I/O and clocking are constant. A coefficient that is null in the
board file leaves its component out and lists it in :attr:`PowerEstimate.missing`: the total is
then a lower bound and says so.
"""

from __future__ import annotations

from dataclasses import dataclass

from codesign.boards import Board
from codesign.cost.params import optional
from codesign.cost.resources import PlUsage

#: component -> group used when comparing with Vivado's summary (memory = BRAM + NoC-DDRMC + XRAM)
GROUPS = {
    "static": "static",
    "aie": "aie",
    "pl_logic": "pl",
    "pl_memory": "memory",
    "ddr_noc": "memory",
    "ps": "platform",
    "platform_other": "platform",
}


@dataclass(frozen=True)
class PowerEstimate:
    """Modelled power by component, in watts."""

    components: dict[str, float]
    missing: tuple[str, ...] = ()
    assumptions: tuple[str, ...] = ()

    @property
    def total_w(self) -> float:
        return sum(self.components.values())

    @property
    def complete(self) -> bool:
        return not self.missing

    def group(self, name: str) -> float:
        return sum(v for k, v in self.components.items() if GROUPS.get(k) == name)


def estimate_power(
    board: Board,
    *,
    active_cores: int,
    aie_clock_mhz: float | None = None,
    ddr_bytes_s: float = 0.0,
    pl: PlUsage | None = None,
    pl_clock_mhz: float | None = None,
    toggle: float | None = None,
) -> PowerEstimate:
    """Power of a design with ``active_cores`` busy cores streaming ``ddr_bytes_s`` from DDR."""

    def coef(key: str) -> float | None:
        v = optional(board, "power", key)
        return None if v is None else float(v)

    comps: dict[str, float] = {}
    missing: list[str] = []
    f_aie = (aie_clock_mhz or board.aie.clock_mhz) / 1000.0
    f_pl = pl_clock_mhz or board.pl.default_clock_mhz
    ref_toggle = coef("reference_toggle") or 0.125
    scale = (toggle if toggle is not None else ref_toggle) / ref_toggle

    for key, name in (
        ("static_w", "static"),
        ("ps_w", "ps"),
        ("platform_other_w", "platform_other"),
    ):
        v = coef(key)
        if v is None:
            missing.append(name)
        else:
            comps[name] = v
    k_core = coef("aie_core_w_per_ghz")
    if k_core is None:
        missing.append("aie")
    else:
        comps["aie"] = k_core * active_cores * f_aie
    fixed, per_gbs = coef("ddr_fixed_w"), coef("noc_w_per_gbs")
    if fixed is None or per_gbs is None:
        missing.append(
            "ddr_noc"
            if fixed is None and per_gbs is None
            else ("ddr_fixed" if fixed is None else "noc")
        )
    ddr = (fixed or 0.0) + (per_gbs or 0.0) * ddr_bytes_s / 1e9
    if fixed is not None or per_gbs is not None:
        comps["ddr_noc"] = ddr
    if pl is not None:
        logic = memory = 0.0
        for attr, key, bucket in (
            ("lut", "lut_w_per_mhz", "logic"),
            ("ff", "ff_w_per_mhz", "logic"),
            ("bram", "bram_w_per_mhz", "memory"),
            ("uram", "uram_w_per_mhz", "memory"),
            ("dsp", "dsp_w_per_mhz", "logic"),
        ):
            n = getattr(pl, attr)
            if not n:
                continue
            k = coef(key)
            if k is None:
                missing.append(f"pl_{attr}")
                continue
            w = k * n * f_pl * scale
            if bucket == "logic":
                logic += w
            else:
                memory += w
        comps["pl_logic"] = logic
        comps["pl_memory"] = memory
    assumptions = (
        "AIE power linear in active cores and clock (calibration: Tempus, 16 INT16 cores, 1 GHz, core load 0.6)",
        f"PL dynamic linear in resources, clock and toggle rate (toggle {scale * ref_toggle:.3f})",
        "NoC power linear in achieved DDR traffic; PS, I/O and clocking constant",
        "Vivado vectorless estimates (low confidence) are the calibration reference",
    )
    return PowerEstimate(comps, tuple(missing), assumptions)
