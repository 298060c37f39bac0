"""Writing the raw data files of a build and reading them back, with their hashes."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np

from codesign.errors import BuildError
from codesign.ir.graph import numpy_dtype
from codesign.ir.plan import DataFile


def _stored(arr: np.ndarray, dtype: str) -> np.ndarray:
    if dtype == "bf16":
        return (np.asarray(arr, dtype=np.float32).view(np.uint32) >> 16).astype("<u2")
    return np.ascontiguousarray(arr, dtype=numpy_dtype(dtype).newbyteorder("<"))


class DataWriter:
    """Writes arrays under ``root/weights/`` with unique, readable file names."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "weights").mkdir(parents=True, exist_ok=True)
        self._used: set[str] = set()
        #: sha256 of every file written, by path relative to the build root
        self.hashes: dict[str, str] = {}

    def write(
        self,
        name: str,
        arr: np.ndarray,
        dtype: str,
        layout: str = "row-major",
        shape: tuple[int, ...] | None = None,
    ) -> DataFile:
        """Store ``arr`` as ``dtype`` (little-endian raw) and describe it as a DataFile."""
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_.") or "tensor"
        fname, i = f"{stem}.bin", 0
        while fname in self._used:
            i += 1
            fname = f"{stem}_{i}.bin"
        self._used.add(fname)
        data = _stored(arr, dtype).tobytes()
        rel = f"weights/{fname}"
        (self.root / rel).write_bytes(data)
        self.hashes[rel] = hashlib.sha256(data).hexdigest()
        return DataFile(
            path=rel,
            dtype=dtype,
            shape=tuple(int(d) for d in (shape if shape is not None else np.shape(arr))),
            sha256=self.hashes[rel],
            layout=layout,
        )


def read(build: Path, f: DataFile, verify: bool = True) -> np.ndarray:
    """Read a DataFile back (bf16 widened to float32); BuildError if missing or corrupt."""
    path = build / f.path
    try:
        data = path.read_bytes()
    except OSError:
        raise BuildError(f"{path}: data file named in schedule.json is missing") from None
    if verify and hashlib.sha256(data).hexdigest() != f.sha256:
        raise BuildError(f"{path}: contents do not match the sha256 in schedule.json")
    if f.dtype == "bf16":
        raw = np.frombuffer(data, dtype="<u2").astype(np.uint32) << 16
        arr = raw.view(np.float32)
    else:
        arr = np.frombuffer(data, dtype=numpy_dtype(f.dtype).newbyteorder("<")).astype(
            numpy_dtype(f.dtype)
        )
    size = int(np.prod(f.shape, dtype=np.int64))
    if f.layout == "row-major":
        if arr.size != size:
            raise BuildError(
                f"{path}: holds {arr.size} elements, schedule.json says shape {f.shape}"
            )
        return arr.reshape(f.shape)
    return arr
