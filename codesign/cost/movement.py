"""The cost of data movement (slice, concat, gather, expand): which bytes move, and how long.

Modelled, like every figure of :mod:`codesign.cost`:

- A **view** moves nothing: a slice with unit steps whose result is one contiguous run of its
  input (every axis before the first sliced one has extent 1, every axis after it is whole) is
  the same bytes at an offset. It has no stage in the report.
- A **copy** goes through a PL data mover that reads from and writes to DDR
  (:func:`codesign.cost.estimate_stream_layer`: time = max(stream, DDR)):
  - slice: reads the selected elements, or the whole span of each innermost run when the
    innermost axis is strided (DDR bursts fetch the elements skipped in between); writes the
    result;
  - concat: reads every input, writes the result;
  - gather (embedding lookup): reads the indices and the selected rows of the table (each row
    is one contiguous burst; the rows not selected are not read), writes the result;
  - expand: reads the input once, writes the broadcast result.
"""

from __future__ import annotations

from dataclasses import dataclass

from codesign.boards import Board
from codesign.cost.layers import LayerEstimate, estimate_stream_layer


@dataclass(frozen=True)
class Traffic:
    """Bytes a movement reads and writes; ``view``: it moves nothing."""

    bytes_read: int
    bytes_written: int
    view: bool = False


def is_view_slice(in_shape: tuple[int, ...], out_shape: tuple[int, ...], steps) -> bool:
    """A slice of ``in_shape`` to ``out_shape`` with ``steps`` is one contiguous run."""
    if any(s != 1 for s in steps):
        return False
    sliced = [i for i, (a, b) in enumerate(zip(in_shape, out_shape, strict=True)) if a != b]
    if not sliced:
        return True
    first = sliced[0]
    return all(d == 1 for d in in_shape[:first]) and sliced == [first]


def movement_traffic(
    fn: str,
    in_shapes: list[tuple[int, ...]],
    in_bytes: list[int],
    out_shape: tuple[int, ...],
    out_bytes: int,
    *,
    axis: int = 0,
    steps: tuple[int, ...] = (),
) -> Traffic:
    """The bytes a movement ``fn`` moves (see the module docstring)."""
    if fn == "slice":
        if is_view_slice(in_shapes[0], out_shape, steps):
            return Traffic(0, 0, view=True)
        stride = steps[-1] if steps else 1
        read = min(in_bytes[0], out_bytes * stride)
        return Traffic(read, out_bytes)
    if fn == "concat":
        return Traffic(sum(in_bytes), out_bytes)
    if fn == "gather":
        return Traffic(in_bytes[1] + out_bytes, out_bytes)
    if fn == "expand":
        return Traffic(in_bytes[0], out_bytes)
    raise ValueError(f"no traffic model for movement {fn!r}")


def estimate_movement(
    board: Board, name: str, fn: str, traffic: Traffic, **kwargs
) -> LayerEstimate:
    """A copying movement as a PL stream stage from and to DDR (modelled)."""
    return estimate_stream_layer(
        board, name, traffic.bytes_read, traffic.bytes_written, kind=f"movement:{fn}", **kwargs
    )


__all__ = ["Traffic", "estimate_movement", "is_view_slice", "movement_traffic"]
