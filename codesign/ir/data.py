"""Plan data held in memory: arrays packed to their stored bytes and addressed by content.

The planner packs every constant and weight it needs through a :class:`DataPacker`: the array is
converted to the bytes a build stores (raw little-endian; bf16 as its upper 16 bits), its sha256
is taken, and a :class:`~codesign.ir.plan.DataFile` names it. The bytes stay in memory, keyed by
their sha256, in :attr:`~codesign.ir.plan.Plan.data`; nothing is written until the build writer
(:mod:`codesign.codegen.build`) stores them under the DataFiles' paths. The names a packer gives
are the file names a build has always used (a sanitised tensor name, ``_<n>`` on a clash), in
the order the planner asks for them, so builds stay byte-identical.

Pure (numpy and the rest of ``codesign.ir`` only): the simulator decodes these bytes whether
they came from memory or from a build's files.
"""

from __future__ import annotations

import hashlib
import re

import numpy as np

from codesign.ir.graph import numpy_dtype
from codesign.ir.plan import DataFile

#: longest file-name stem of a data file (file names are at most 255 bytes: the rest is a hash)
MAX_STEM = 120


def stored_bytes(arr: np.ndarray, dtype: str) -> bytes:
    """The bytes a build stores for ``arr`` as KernelGraph dtype ``dtype``."""
    if dtype == "bf16":
        raw = (np.asarray(arr, dtype=np.float32).view(np.uint32) >> 16).astype("<u2")
        return raw.tobytes()
    return np.ascontiguousarray(arr, dtype=numpy_dtype(dtype).newbyteorder("<")).tobytes()


def itemsize(dtype: str) -> int:
    """Bytes per stored element of ``dtype``."""
    return 2 if dtype == "bf16" else numpy_dtype(dtype).itemsize


def decode(data: bytes, f: DataFile) -> np.ndarray:
    """The array ``f`` describes, from its stored bytes (bf16 widened to float32).

    Row-major data is reshaped to ``f.shape``; a stream layout is returned flat (its scheduler
    knows the order). Raises ValueError when the byte count does not fit the dtype or the shape.
    """
    size = itemsize(f.dtype)
    if len(data) % size:
        raise ValueError(f"{len(data)} bytes is not a whole number of {f.dtype} elements")
    if f.dtype == "bf16":
        arr = (np.frombuffer(data, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
    else:
        arr = np.frombuffer(data, dtype=numpy_dtype(f.dtype).newbyteorder("<")).astype(
            numpy_dtype(f.dtype)
        )
    if f.layout == "row-major":
        count = int(np.prod(f.shape, dtype=np.int64))
        if arr.size != count:
            raise ValueError(f"holds {arr.size} elements, the plan says shape {tuple(f.shape)}")
        return arr.reshape(f.shape)
    return arr


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class DataPacker:
    """Packs arrays into content-addressed bytes and names them as build files (``weights/``)."""

    def __init__(self) -> None:
        self._used: set[str] = set()
        #: stored bytes by sha256 (what :attr:`Plan.data` holds)
        self.blobs: dict[str, bytes] = {}

    def pack(
        self,
        name: str,
        arr: np.ndarray,
        dtype: str,
        layout: str = "row-major",
        shape: tuple[int, ...] | None = None,
    ) -> DataFile:
        """Store ``arr`` as ``dtype`` in memory and describe it as a DataFile named after
        ``name`` (``shape`` defaults to the array's; a stream layout gives the logical shape)."""
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_.") or "tensor"
        if len(stem) > MAX_STEM:  # keep a readable head and a hash of the full name
            digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:16]
            stem = f"{stem[: MAX_STEM - 17]}-{digest}"
        fname, i = f"{stem}.bin", 0
        while fname in self._used:
            i += 1
            fname = f"{stem}_{i}.bin"
        self._used.add(fname)
        data = stored_bytes(arr, dtype)
        digest = sha256(data)
        self.blobs.setdefault(digest, data)
        return DataFile(
            path=f"weights/{fname}",
            dtype=dtype,
            shape=tuple(int(d) for d in (shape if shape is not None else np.shape(arr))),
            sha256=digest,
            layout=layout,
        )
