"""Reading and writing files that strangers may have tampered with.

Builds and models arrive from CI artifacts, colleagues and model hubs, so a file we read may be
a symlink to a secret, a FIFO that blocks forever or a device, and a file we write into a build
may be a symlink out of it. Every file codesign reads or writes goes through these primitives:

- :func:`read_in` reads ``root/rel`` opening every component below ``root`` with ``O_NOFOLLOW``
  relative to a directory descriptor, checks the opened handle with ``fstat`` (a regular file of
  the expected size; never a FIFO, socket or device) and reads from that one handle;
- :func:`read_npz` reads an ``--inputs`` file the user names (the path itself may be a
  symlink: the user chose it; the opened file must still be a regular file), checking each
  member's headers against the plan before decompressing it;
- :func:`write_in` writes ``root/rel`` through a fresh temporary name created with
  ``O_CREAT | O_EXCL | O_NOFOLLOW`` in the same directory, then renames it over the target; a
  target that is a symlink or not a regular file is refused, and no parent directory is created;
- :func:`make_dir_in` creates one directory level inside ``root`` (never ``root`` itself, never
  through a symlink);
- :func:`atomic_write` writes a file the user names (outside any build) through a temporary file
  and a rename.

Failures raise the caller's :class:`~codesign.errors.CodesignError` subclass (``error``) with one
line naming the file and saying what was expected.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import secrets
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from codesign.errors import BuildError, CodesignError

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def _parts(rel: str | os.PathLike[str]) -> tuple[str, ...]:
    parts = PurePosixPath(os.fspath(rel)).parts
    if not parts or parts[0] == "/" or any(p in ("..", ".") for p in parts) or "\0" in str(rel):
        raise ValueError(f"{rel!r} must be a relative path without '..'")
    return parts


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symlink"
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a special file"


def _why(e: OSError) -> str:
    return e.strerror or str(e)


@contextlib.contextmanager
def open_dir(
    root: str | os.PathLike[str],
    parents: tuple[str, ...] = (),
    *,
    error: type[CodesignError] = BuildError,
) -> Iterator[int]:
    """A descriptor of the directory ``root/parents...``: ``root`` itself may be a symlink (the
    user named it), every component below it is opened with ``O_NOFOLLOW`` and must be a real
    directory. Closed on exit."""
    where = Path(root)
    try:
        fd = os.open(root, _DIR_FLAGS)
    except OSError as e:
        raise error(f"{where}: cannot open the directory: {_why(e)}") from None
    try:
        for part in parents:
            where = where / part
            try:
                nfd = os.open(part, _DIR_FLAGS | os.O_NOFOLLOW, dir_fd=fd)
            except OSError as e:
                raise error(f"{where}: {_not_a_dir(fd, part, e)}") from None
            os.close(fd)
            fd = nfd
        yield fd
    finally:
        os.close(fd)


def _not_a_dir(dir_fd: int, name: str, e: OSError) -> str:
    try:
        st = os.lstat(name, dir_fd=dir_fd)
    except OSError:
        return f"cannot open the directory: {_why(e)}"
    if stat.S_ISDIR(st.st_mode):
        return f"cannot open the directory: {_why(e)}"
    return f"must be a directory, not {_kind(st.st_mode)}"


def _read_fd(
    fd: int, where: object, size: int | None, max_bytes: int | None, error: type[CodesignError]
) -> bytes:
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        raise error(f"{where}: must be a regular file, not {_kind(st.st_mode)}")
    if size is not None and st.st_size != size:
        raise error(f"{where}: must hold {size} bytes, not {st.st_size}")
    if max_bytes is not None and st.st_size > max_bytes:
        raise error(f"{where}: must be at most {max_bytes} bytes, not {st.st_size}")
    limit = size if size is not None else max_bytes
    chunks, got = [], 0
    # what fstat promised (bounded by the limit), plus one byte to notice a growing file; read
    # in pieces of at most 1 MiB so a small file never costs a large buffer
    want = (st.st_size if limit is None else min(limit, st.st_size)) + 1
    while got < want:
        chunk = os.read(fd, min(want - got, 1 << 20))
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    data = b"".join(chunks)
    if len(data) > st.st_size:
        raise error(f"{where}: grew while it was read; it must not change")
    if size is not None and len(data) != size:
        raise error(f"{where}: must hold {size} bytes, but ended after {len(data)}")
    return data


def open_in(dir_fd: int, name: str, where: object, error: type[CodesignError] = BuildError) -> int:
    """Open ``name`` in the directory ``dir_fd`` for reading: no symlink followed, no blocking
    on a FIFO; the handle is a regular file (checked with fstat). The caller closes it."""
    try:
        fd = os.open(name, _READ_FLAGS, dir_fd=dir_fd)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise error(f"{where}: must be a regular file, not a symlink") from None
        if e.errno == errno.ENOENT:
            raise error(f"{where}: no such file") from None
        raise error(f"{where}: cannot be read: {_why(e)}") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise error(f"{where}: must be a regular file, not {_kind(st.st_mode)}")
    return fd


def read_in(
    root: str | os.PathLike[str],
    rel: str | os.PathLike[str],
    *,
    size: int | None = None,
    max_bytes: int | None = None,
    error: type[CodesignError] = BuildError,
) -> bytes:
    """The bytes of the regular file ``root/rel``, no component below ``root`` followed through
    a symlink; exactly ``size`` bytes when given, at most ``max_bytes`` when given."""
    where = Path(root) / rel
    try:
        parts = _parts(rel)
    except ValueError as e:
        raise error(f"{where}: {e}") from None
    with open_dir(root, parts[:-1], error=error) as dfd:
        fd = open_in(dfd, parts[-1], where, error)
        try:
            return _read_fd(fd, where, size, max_bytes, error)
        except OSError as e:
            raise error(f"{where}: cannot be read: {_why(e)}") from None
        finally:
            os.close(fd)


def write_in(
    root: str | os.PathLike[str],
    rel: str | os.PathLike[str],
    data: bytes | str,
    *,
    error: type[CodesignError] = BuildError,
) -> str:
    """Write ``data`` to ``root/rel`` without following any symlink; return its sha256.

    The parent directory must already exist (writers never create a build's parents: a build
    removed under a running compile fails instead of being re-created half empty). The data
    goes to a fresh name made with ``O_CREAT | O_EXCL | O_NOFOLLOW`` beside the target and is
    renamed over it, so a reader sees the old file or the new one. A target that is a symlink or
    not a regular file is refused, naming it.
    """
    raw = data.encode() if isinstance(data, str) else bytes(data)
    where = Path(root) / rel
    try:
        parts = _parts(rel)
    except ValueError as e:
        raise error(f"{where}: {e}") from None
    name = parts[-1]
    with open_dir(root, parts[:-1], error=error) as dfd:
        try:
            st = os.lstat(name, dir_fd=dfd)
        except FileNotFoundError:
            st = None
        except OSError as e:
            raise error(f"{where}: cannot be written: {_why(e)}") from None
        if st is not None and not stat.S_ISREG(st.st_mode):
            raise error(
                f"{where}: must be a regular file, not {_kind(st.st_mode)}; refusing to write "
                "through it (a build's files are never symlinks)"
            )
        tmp = f".{name[:200]}.{secrets.token_hex(6)}.tmp"
        try:
            fd = os.open(tmp, _CREATE_FLAGS, 0o666, dir_fd=dfd)
        except OSError as e:
            raise error(f"{where}: cannot be written: {_why(e)}") from None
        try:
            try:
                view = memoryview(raw)
                while view:
                    view = view[os.write(fd, view) :]
            finally:
                os.close(fd)
            os.rename(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
        except OSError as e:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=dfd)
            raise error(f"{where}: cannot be written: {_why(e)}") from None
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=dfd)
            raise
    return hashlib.sha256(raw).hexdigest()


def make_dir_in(
    root: str | os.PathLike[str],
    rel: str | os.PathLike[str],
    *,
    error: type[CodesignError] = BuildError,
) -> Path:
    """Create the directory ``root/rel`` (its parent must exist; ``root`` is never created), or
    accept it if it is already a real directory; refuse a symlink or a file in its place."""
    where = Path(root) / rel
    try:
        parts = _parts(rel)
    except ValueError as e:
        raise error(f"{where}: {e}") from None
    with open_dir(root, parts[:-1], error=error) as dfd:
        try:
            os.mkdir(parts[-1], 0o777, dir_fd=dfd)
        except FileExistsError:
            pass
        except OSError as e:
            raise error(f"{where}: cannot create the directory: {_why(e)}") from None
        with open_dir(root, parts, error=error):  # a real directory, not a symlink or file
            pass
    return where


def check_tree(root: str | os.PathLike[str], *, error: type[CodesignError] = BuildError) -> None:
    """Refuse a build holding a symlink, FIFO, socket or device anywhere below ``root``."""
    base = Path(root)
    for dirpath, dirnames, filenames in os.walk(base, followlinks=False):
        for name in [*dirnames, *filenames]:
            p = Path(dirpath) / name
            try:
                mode = os.lstat(p).st_mode
            except OSError:
                continue
            if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                raise error(
                    f"{p}: a build's files must be regular files or directories, not "
                    f"{_kind(mode)}; refusing this build"
                )


def atomic_write(path: Path, data: bytes | str) -> Path:
    """Write ``data`` to ``path`` (a path the user or a cache names, outside any build) so
    readers see the old file or the new one, never a part.

    The file gets the usual permissions (0666 minus the umask), not mkstemp's private 0600. The
    rename replaces a symlink at ``path`` instead of writing through it.
    """
    raw = data.encode() if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name[:200]}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_npz(
    path: str | os.PathLike[str],
    expected: dict[str, tuple[tuple[int, ...], object]],
    *,
    error: type[CodesignError] = BuildError,
    what: str = "",
) -> dict:
    """The arrays of the ``.npz`` file ``path`` named in ``expected`` (name -> (shape, dtype)),
    each checked before it is decompressed.

    The file is read once from one handle (a regular file, never a FIFO). For each wanted
    member, the zip header's uncompressed size and the ``.npy`` header's shape and dtype must
    match the plan (shape equal; itemsize at most 16 bytes, no object dtype) before its data is
    read, so a small zip bomb cannot claim gigabytes. Members not in ``expected`` are not
    loaded. Members missing from the file are simply absent from the result (the caller names
    them).
    """
    import zipfile

    import numpy as np

    where = f"{what} {path}".strip()
    try:
        fd = os.open(path, _READ_FLAGS & ~os.O_NOFOLLOW)
    except FileNotFoundError:
        raise error(f"{where}: no such file") from None
    except OSError as e:
        raise error(f"{where}: cannot be read: {_why(e)}") from None
    out = {}
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise error(f"{where}: must be a regular .npz file, not {_kind(st.st_mode)}")
        with os.fdopen(os.dup(fd), "rb") as f, zipfile.ZipFile(f) as zf:
            members = {i.filename.removesuffix(".npy"): i for i in zf.infolist()}
            for name, (shape, _dtype) in expected.items():
                info = members.get(name)
                if info is None:
                    continue
                limit = 16 * int(np.prod(shape, dtype=np.int64)) + 65536 + 16
                if info.file_size > limit:
                    raise error(
                        f"{where}: member {name!r} declares {info.file_size} bytes, more than "
                        f"an array of shape {tuple(shape)} needs"
                    )
                with zf.open(info) as m:
                    version = np.lib.format.read_magic(m)
                    if version == (1, 0):
                        hshape, fortran, dtype = np.lib.format.read_array_header_1_0(m)
                    else:
                        hshape, fortran, dtype = np.lib.format.read_array_header_2_0(m)
                    if tuple(hshape) != tuple(shape):
                        raise error(
                            f"{where}: input {name!r} must have shape {tuple(shape)}, "
                            f"not {tuple(hshape)}"
                        )
                    if dtype.hasobject or dtype.itemsize > 16 or dtype.kind not in "biuf":
                        raise error(f"{where}: input {name!r} must be numeric, not {dtype}")
                    nbytes = dtype.itemsize * int(np.prod(hshape, dtype=np.int64))
                    raw = m.read(nbytes + 1)
                if len(raw) != nbytes:
                    raise error(
                        f"{where}: input {name!r} must hold {nbytes} bytes of data, not {len(raw)}"
                    )
                arr = np.frombuffer(raw, dtype=dtype)
                arr = arr.reshape(hshape, order="F" if fortran else "C")
                out[name] = np.array(arr)
    except (zipfile.BadZipFile, ValueError, EOFError, OSError, NotImplementedError) as e:
        raise error(
            f"{where}: must be a .npz file of arrays ({' '.join(str(e).split())[:200]})"
        ) from None
    finally:
        os.close(fd)
    return out


@contextlib.contextmanager
def scratch_environment(cache_home: str | os.PathLike[str] | None = None) -> Iterator[dict]:
    """Run a tool (yosys, onnxruntime) with HOME, TMPDIR and XDG_CACHE_HOME in a temporary
    directory that is removed on exit, so its history, temp and telemetry files never land in
    the user's home, cache or the system temp directory.

    ``cache_home``, when given, is used as XDG_CACHE_HOME instead (a cache codesign documents).
    The variables are set in ``os.environ`` for the block (libraries read them at import or
    spawn time) and restored afterwards; the yielded dict is the environment for a subprocess.
    Main-thread use only: the environment is process-wide.
    """
    with tempfile.TemporaryDirectory(prefix="codesign-tool-") as tmp:
        cache = os.fspath(cache_home) if cache_home is not None else tmp
        changes = {"HOME": tmp, "TMPDIR": tmp, "TEMP": tmp, "TMP": tmp, "XDG_CACHE_HOME": cache}
        saved = {k: os.environ.get(k) for k in changes}
        os.environ.update(changes)
        try:
            yield dict(os.environ)
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
