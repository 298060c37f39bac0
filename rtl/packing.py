"""Pack and unpack Python values into the flat bit vectors of the blocks' stream ports.

The port layouts are Amaranth layouts (:mod:`amaranth.lib.data`); these helpers turn nested
Python values (dicts for structs, sequences for arrays, ints for fields) into the unsigned integer
a simulator or a driver writes on the port, and back. Used by the cocotb benches and usable by a
host driver that prepares a parameter packet.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from amaranth.hdl import Shape, ShapeLike
from amaranth.lib import data

__all__ = ["pack", "pack_many", "unpack", "width_of"]


def width_of(layout: ShapeLike | data.Layout) -> int:
    """Bits of a shape or layout."""
    if isinstance(layout, data.Layout):
        return layout.size
    return Shape.cast(layout).width


def pack(layout: ShapeLike | data.Layout, value: Any) -> int:
    """Pack ``value`` into an unsigned int laid out as ``layout``.

    A struct takes a mapping of its field names, an array a sequence of its length, a plain shape
    an int (masked to its width: negative ints are written two's complement).
    """
    if isinstance(layout, data.StructLayout):
        if not isinstance(value, Mapping):
            raise TypeError(f"a struct value must be a mapping, not {type(value).__name__}")
        out = 0
        for name, field in layout:
            out |= pack(field.shape, value[name]) << field.offset
        return out
    if isinstance(layout, data.ArrayLayout):
        if not isinstance(value, Sequence) and not hasattr(value, "__len__"):
            raise TypeError(f"an array value must be a sequence, not {type(value).__name__}")
        if len(value) != layout.length:
            raise ValueError(f"array value must have {layout.length} elements, not {len(value)}")
        w = width_of(layout.elem_shape)
        out = 0
        for i in range(layout.length):
            out |= pack(layout.elem_shape, value[i]) << (i * w)
        return out
    shape = Shape.cast(layout)
    return int(value) & ((1 << shape.width) - 1)


def unpack(layout: ShapeLike | data.Layout, bits: int) -> Any:
    """Inverse of :func:`pack`: dicts for structs, lists for arrays, ints (signed where the shape
    is signed) for fields."""
    if isinstance(layout, data.StructLayout):
        return {
            name: unpack(field.shape, (bits >> field.offset) & ((1 << field.width) - 1))
            for name, field in layout
        }
    if isinstance(layout, data.ArrayLayout):
        w = width_of(layout.elem_shape)
        mask = (1 << w) - 1
        return [unpack(layout.elem_shape, (bits >> (i * w)) & mask) for i in range(layout.length)]
    shape = Shape.cast(layout)
    v = bits & ((1 << shape.width) - 1)
    if shape.signed and shape.width and v >> (shape.width - 1):
        v -= 1 << shape.width
    return v


def _bits(layout: ShapeLike | data.Layout, value: Any, beats: int) -> np.ndarray:
    """The bits of ``beats`` values of ``layout`` as a (beats, width) uint8 matrix, LSB first."""
    if isinstance(layout, data.StructLayout):
        out = np.zeros((beats, layout.size), dtype=np.uint8)
        for name, field in layout:
            out[:, field.offset : field.offset + field.width] = _bits(
                field.shape, value[name], beats
            )
        return out
    if isinstance(layout, data.ArrayLayout):
        w = width_of(layout.elem_shape)
        if isinstance(layout.elem_shape, data.Layout) or w > 62:
            parts = [
                _bits(layout.elem_shape, _column(value, i), beats) for i in range(layout.length)
            ]
            return np.concatenate(parts, axis=1) if parts else np.zeros((beats, 0), np.uint8)
        v = np.asarray(value, dtype=np.int64).reshape(beats, layout.length)
        v = v & np.int64((1 << w) - 1)
        bits = (v[..., None] >> np.arange(w, dtype=np.int64)) & 1
        return bits.reshape(beats, layout.length * w).astype(np.uint8)
    w = Shape.cast(layout).width
    if w <= 62:
        v = np.asarray(value, dtype=np.int64).reshape(beats) & np.int64((1 << w) - 1)
        return ((v[:, None] >> np.arange(w, dtype=np.int64)) & 1).astype(np.uint8)
    nbytes = (w + 7) // 8
    mask = (1 << w) - 1
    items = value.reshape(beats).tolist() if isinstance(value, np.ndarray) else list(value)
    raw = b"".join((int(x) & mask).to_bytes(nbytes, "little") for x in items)
    bits = np.unpackbits(
        np.frombuffer(raw, dtype=np.uint8).reshape(beats, nbytes), axis=1, bitorder="little"
    )
    return bits[:, :w]


def _column(value: Any, i: int) -> Any:
    if isinstance(value, np.ndarray):
        return value[:, i]  # int64 or object arrays keep exact values
    return [row[i] for row in value]


def pack_many(layout: ShapeLike | data.Layout, value: Any, beats: int) -> list[int]:
    """Vectorised :func:`pack` of ``beats`` values at once.

    ``value`` is shaped like one value with a leading beats axis: a struct takes a mapping of
    per-field arrays, an array of scalar fields a (beats, length) array, a scalar field a (beats,)
    array (Python ints for fields wider than 62 bits).
    """
    bits = _bits(layout, value, beats)
    raw = np.packbits(bits, axis=1, bitorder="little")
    return [int.from_bytes(row.tobytes(), "little") for row in raw]
