"""`codesign estimate` through the real CLI entry point (error mapping included)."""

import json

import pytest

TEMPUS_ARGS = [
    "--board",
    "ve2302",
    "--gemm",
    "1024x1024x1024",
    "--dtype",
    "int16",
    "--block",
    "2x8",
    "--tile",
    "64x128x64",
    "--dataflow",
    "tempus",
    "--json",
]


def test_json_on_the_tempus_configuration(cli):
    r = cli("estimate", *TEMPUS_ARGS)
    assert r.code == 0, r.err
    d = json.loads(r.out)
    assert d["modelled"] is True and d["label"] == "modelled"
    for key in ("time_ms", "gops", "power_w", "ddr_bytes", "bound"):
        assert key in d
    assert d["bound"] == "ddr"
    assert d["ddr_bytes"] == 50 << 20
    assert d["time_ms"] == pytest.approx(3.537, rel=0.10)
    assert d["chosen_by_model"] == []
    assert d["gain_over_tempus"] == pytest.approx(1.0)


def test_missing_flags_are_chosen_by_the_model(cli):
    r = cli("estimate", "--gemm", "1024x1024x1024", "--json")
    assert r.code == 0, r.err
    d = json.loads(r.out)
    assert set(d["chosen_by_model"]) == {"block", "tile", "dataflow"}
    assert d["gain_over_tempus"] > 1


def test_table_output_says_modelled(cli):
    r = cli("estimate", "--gemm", "512x512x512", "--block", "2x8")
    assert r.code == 0, r.err
    assert "modelled" in r.out and "time ms" in r.out


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--gemm", "1024x1024"], "--gemm must be MxKxN"),
        (["--gemm", "8x8x8", "--block", "two"], "--block must be CHAINSxCASCADE"),
        (["--gemm", "8x8x8", "--tile", "0x1x1"], "--tile must be MxKxN"),
        (["--gemm", "8x8x8", "--dataflow", "magic"], "--dataflow must be one of"),
        (["--gemm", "8x8x8", "--dtype", "int4"], "dtype must be one of"),
        (["--gemm", "8x8x8", "--board", "zcu104"], "board must be one of"),
        (["--gemm", "8x8x8", "--plio-bits", "96"], "--plio-bits must be one of"),
        (
            ["--gemm", "1024x1024x1024", "--block", "8x8", "--board", "ve2302"],
            "does not fit ve2302",
        ),
    ],
)
def test_bad_options_are_one_line_errors(cli, args, needle):
    r = cli("estimate", *args)
    assert r.code == 2
    lines = r.err.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], r.err
    assert "Traceback" not in r.err
