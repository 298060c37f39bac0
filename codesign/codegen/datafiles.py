"""Writing the raw data files of a build and reading them back, with their hashes."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np

from codesign.errors import BuildError
from codesign.fileio import make_dir_in, read_in, write_in
from codesign.ir.graph import numpy_dtype
from codesign.ir.plan import DataFile


def _stored(arr: np.ndarray, dtype: str) -> np.ndarray:
    if dtype == "bf16":
        return (np.asarray(arr, dtype=np.float32).view(np.uint32) >> 16).astype("<u2")
    return np.ascontiguousarray(arr, dtype=numpy_dtype(dtype).newbyteorder("<"))


#: longest file-name stem of a data file (the name gets ``_<n>.bin`` and the writer's temporary
#: ``.<name>.<random>.tmp``, all within the usual 255-byte limit)
MAX_STEM = 120


class DataWriter:
    """Writes arrays under ``root/weights/`` with unique, readable file names."""

    def __init__(self, root: Path) -> None:
        self.root = root
        make_dir_in(root, "weights")  # never the build's parents (see codesign.fileio)
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
        if len(stem) > MAX_STEM:  # file names are at most 255 bytes: keep a readable head + hash
            digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:16]
            stem = f"{stem[: MAX_STEM - 17]}-{digest}"
        fname, i = f"{stem}.bin", 0
        while fname in self._used:
            i += 1
            fname = f"{stem}_{i}.bin"
        self._used.add(fname)
        data = _stored(arr, dtype).tobytes()
        rel = f"weights/{fname}"
        self.hashes[rel] = write_in(self.root, rel, data)
        return DataFile(
            path=rel,
            dtype=dtype,
            shape=tuple(int(d) for d in (shape if shape is not None else np.shape(arr))),
            sha256=self.hashes[rel],
            layout=layout,
        )


#: bound on a data file whose size its layout does not fix (packed layouts)
MAX_DATA_BYTES = 4 * 1024**3


def read(build: Path, f: DataFile, verify: bool = True) -> np.ndarray:
    """Read a DataFile back (bf16 widened to float32); BuildError if missing, corrupt, of the
    wrong size, or not a regular file inside the build (a symlink, FIFO or device is refused
    before anything is read: see :func:`codesign.fileio.read_in`)."""
    path = build / f.path
    size = None
    if f.layout == "row-major":
        count = int(np.prod(f.shape, dtype=np.int64))
        size = count * (2 if f.dtype == "bf16" else numpy_dtype(f.dtype).itemsize)
    try:
        data = read_in(build, f.path, size=size, max_bytes=None if size else MAX_DATA_BYTES)
    except BuildError as e:
        raise BuildError(f"data file named in schedule.json: {e}") from None
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
