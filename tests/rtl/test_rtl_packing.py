"""Packing of port values into the flat bit vectors of the stream ports."""

from __future__ import annotations

import numpy as np
from amaranth.hdl import signed, unsigned
from amaranth.lib import data
from hypothesis import given, settings
from hypothesis import strategies as st

from codesign.rtl import BlockSpec
from codesign.rtl.packing import pack, pack_many, unpack

LAYOUT = data.StructLayout(
    {
        "a": data.ArrayLayout(signed(5), 3),
        "wide": unsigned(70),
        "words": data.ArrayLayout(unsigned(64), 2),
        "flag": unsigned(1),
    }
)


def test_pack_layout_order_is_lsb_first() -> None:
    layout = data.StructLayout({"x": unsigned(4), "y": data.ArrayLayout(signed(4), 2)})
    bits = pack(layout, {"x": 0xA, "y": [-1, 3]})
    assert bits == 0xA | (0xF << 4) | (0x3 << 8)
    assert unpack(layout, bits) == {"x": 0xA, "y": [-1, 3]}


@settings(max_examples=50, deadline=None)
@given(st.integers(min_value=1, max_value=20), st.integers(min_value=0, max_value=2**32 - 1))
def test_pack_many_matches_pack(beats: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    r = np.random.default_rng(seed + 1)
    a = rng.integers(-16, 16, size=(beats, 3))
    wide = [int(r.integers(0, 2**62)) << 8 | int(r.integers(0, 256)) for _ in range(beats)]
    words = np.array(
        [
            [int(r.integers(0, 2**63)) * 2 + int(r.integers(0, 2)) for _ in range(2)]
            for _ in range(beats)
        ],
        dtype=object,
    )
    flag = rng.integers(0, 2, size=beats)
    got = pack_many(LAYOUT, {"a": a, "wide": wide, "words": words, "flag": flag}, beats)
    want = [
        pack(LAYOUT, {"a": list(a[i]), "wide": wide[i], "words": list(words[i]), "flag": flag[i]})
        for i in range(beats)
    ]
    assert got == want
    assert [unpack(LAYOUT, g)["a"] for g in got] == [list(map(int, row)) for row in a]


def test_block_layouts_have_the_documented_widths() -> None:
    rq = BlockSpec.of("requantizer").config
    assert rq.word_layout().size == 4 * 32 + 4 * 6 + 9 + 1 + 3
    assert rq.acc_layout().size == 128 and rq.out_layout().size == 32
    sp = BlockSpec.of("sparse_expander").config
    assert sp.packed_layout().size == 16 * 2 * 8 + 16 * 2 * 2  # 160 bits
    assert sp.dense_layout().size == 512
    mwq = BlockSpec.of("mwq_decoder").config
    assert mwq.codes_layout().size == 16 * 4 + 4 * 16
    assert mwq.group_layout().size == 3 + 4 + 5 * 16
