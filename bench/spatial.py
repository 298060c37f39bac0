"""Print the spatial baseline against the published VCK190 designs (REFERENCES.md s4), and the
temporal block side by side with a spatial mapping on the AIE-ML boards.

    python bench/spatial.py [--fit]
"""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table

from codesign.boards import load
from codesign.cost import GemmWorkload, choose_temporal_config
from codesign.schedulers.spatial import (
    PUBLISHED_SIZE,
    fit_system_efficiency,
    map_spatial,
    published_rows,
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fit", action="store_true", help="refit the per-dtype system efficiency")
    args = ap.parse_args()
    con = Console(width=200)
    t = Table(title=f"spatial baseline vs published VCK190 designs ({PUBLISHED_SIZE}^3, modelled)")
    for col in (
        "work",
        "dtype",
        "cores",
        "published TOPS",
        "modelled TOPS",
        "error",
        "array a x b x c",
        "tile",
        "I/O ratio",
        "published W",
        "GOPS/W (published)",
    ):
        t.add_column(col, justify="left" if col in ("work", "dtype") else "right")
    for r in published_rows():
        e, c = r.estimate, r.estimate.config
        t.add_row(
            r.point.work,
            r.point.dtype,
            str(e.cores),
            f"{r.point.tops:.2f}",
            f"{r.modelled_tops:.2f}",
            f"{r.error:+.1%}",
            f"{c.a}x{c.b}x{c.c}",
            f"{c.tile_i}x{c.tile_k}x{c.tile_j}",
            f"{e.io_ratio:.2f}",
            f"{r.point.power_w}",
            f"{r.point.tops * 1e3 / r.point.power_w:.0f}" if r.point.power_w else "-",
        )
    con.print(t)
    side = Table(title="temporal (chosen) vs spatial on the same board (modelled)")
    for col in ("board", "GEMM", "design", "cores", "PLIOs", "GOPS", "W", "GOPS/W", "GOPS/core"):
        side.add_column(col, justify="left" if col in ("board", "GEMM", "design") else "right")
    for bname, (M, K, N, dt) in (
        ("ve2302", (1024, 1024, 1024, "int16")),
        ("vek280", (2048, 2048, 2048, "int8")),
    ):
        board = load(bname)
        w = GemmWorkload(M, K, N, dt)
        tc = choose_temporal_config(board, w).estimate
        sp = map_spatial(board, w)
        for name, cores, plios, gops, pw in (
            (
                "temporal " + ("tempus" if tc.plan.name == "tempus" else "reuse/" + tc.plan.name),
                tc.config.cores,
                tc.resources.plio_in + tc.resources.plio_out,
                tc.gops,
                tc.power_w,
            ),
            ("spatial", sp.cores, sp.config.plio_in + sp.config.plio_out, sp.gops, sp.power_w),
        ):
            side.add_row(
                bname,
                w.label(),
                name,
                str(cores),
                str(plios),
                f"{gops:.0f}",
                f"{pw:.2f}" if pw else "-",
                f"{gops / pw:.0f}" if pw else "-",
                f"{gops / cores:.1f}",
            )
    con.print(side)
    con.print(
        "Spatial PLIO counts are the board's limits (upper bound) unless published; VEK280 power "
        "is a lower bound (static power not gathered)."
    )
    if args.fit:
        con.print(f"fresh fit: system_efficiency={fit_system_efficiency()}")


if __name__ == "__main__":
    main()
