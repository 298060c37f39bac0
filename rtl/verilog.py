"""Verilog for the blocks (amaranth.back.verilog), and the build's ``rtl/`` directory.

:func:`to_verilog` converts one :class:`~codesign.rtl.spec.BlockSpec`, cached per spec within the
process and on disk (beside the synthesis cache, keyed by the spec, the Amaranth version and the
source of this package, so a changed block never reads stale Verilog). :func:`write_blocks` writes the Verilog of the blocks a build needs plus
``manifest.json`` describing them; ``codesign compile`` calls it with ``build/rtl``.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import amaranth
from amaranth.back import verilog
from amaranth.hdl import Value
from amaranth.lib import wiring

from codesign.errors import BuildError
from codesign.fileio import atomic_write, scratch_environment
from codesign.rtl.spec import BlockSpec, block_info

__all__ = ["MANIFEST_NAME", "MANIFEST_VERSION", "read_manifest", "to_verilog", "write_blocks"]

MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1


@functools.lru_cache(maxsize=64)
def to_verilog(spec: BlockSpec) -> str:
    """The Verilog text of ``spec`` as module :attr:`BlockSpec.module_name` (cached by spec).

    Ports: ``clk``, ``rst`` (synchronous, active high) and the block's stream ports (see
    :mod:`codesign.rtl.stream`). A conversion takes seconds (Amaranth runs its bundled Yosys);
    the disk cache makes later compiles of the same block instant.
    """
    path = _verilog_cache_path(spec) if cache_enabled() else None
    if path is not None:
        try:
            return path.read_text()
        except OSError:
            pass
    with tool_environment():  # Amaranth runs yosys (system or its wasm build) as a subprocess
        text = verilog.convert(spec.component(), name=spec.module_name, emit_src=False)
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            _atomic_write(path, text)
        except OSError:
            pass  # an unwritable cache only costs time
    return text


def cache_root() -> Path:
    """codesign's cache directory: ``$CODESIGN_CACHE_DIR``, else ``$XDG_CACHE_HOME/codesign``,
    else ``~/.cache/codesign``. It holds ``verilog/`` (generated Verilog), ``synth/`` (yosys
    figures) and ``tools/`` (wasmtime's compiled copy of Amaranth's bundled yosys)."""
    if os.environ.get("CODESIGN_CACHE_DIR"):
        return Path(os.environ["CODESIGN_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "codesign"


def cache_enabled() -> bool:
    """False when ``CODESIGN_NO_CACHE`` is set (to anything but ``0``): then nothing is read
    from or written to :func:`cache_root`, and every block is converted and synthesised anew."""
    return os.environ.get("CODESIGN_NO_CACHE", "0") in ("", "0")


@contextlib.contextmanager
def tool_environment() -> Iterator[dict[str, str]]:
    """The environment yosys runs in, applied to ``os.environ`` for the block (Amaranth starts
    its yosys from it) and yielded for ``subprocess`` calls.

    HOME and TMPDIR point to a temporary directory removed on exit, so yosys's
    ``.yosys_history`` and ABC's ``yosys-abc-*`` files never land in the user's home or the
    system temp directory; XDG_CACHE_HOME (where wasmtime caches the compiled wasm yosys) points
    to ``tools/`` in codesign's cache, or to the temporary directory when the cache is off.
    """
    with scratch_environment(cache_root() / "tools" if cache_enabled() else None) as env:
        yield env


@functools.cache
def _source_hash() -> str:
    """sha256 of this package's block sources (benches excluded)."""
    h = hashlib.sha256(amaranth.__version__.encode())
    for f in sorted(Path(__file__).parent.glob("*.py")):
        h.update(f.name.encode() + b"\0" + f.read_bytes())
    return h.hexdigest()[:16]


def _verilog_cache_path(spec: BlockSpec) -> Path:
    key = hashlib.sha256(
        (json.dumps(spec.to_json(), sort_keys=True) + _source_hash()).encode()
    ).hexdigest()[:24]
    return cache_root() / "verilog" / f"{spec.module_name}-{key}.v"


def _ports(spec: BlockSpec) -> dict[str, dict[str, Any]]:
    """Port name -> {direction, width} of the generated module (for the manifest)."""
    out: dict[str, dict[str, Any]] = {
        "clk": {"direction": "in", "width": 1},
        "rst": {"direction": "in", "width": 1},
    }
    comp = spec.component()
    comp._MustUse__silence = True  # only its signature is read here
    for path, member, value in comp.signature.flatten(comp):
        name = "__".join(str(part) for part in path)
        direction = "out" if member.flow == wiring.Out else "in"
        out[name] = {"direction": direction, "width": Value.cast(value).shape().width}
    return out


def _atomic_write(path: Path, text: str) -> None:
    atomic_write(path, text)


def write_blocks(
    out_dir: str | os.PathLike[str],
    specs: Iterable[BlockSpec],
    *,
    synth: bool = False,
    parents: bool = True,
) -> dict[str, Any]:
    """Write ``<module>.v`` for each distinct spec and ``manifest.json`` into ``out_dir``.

    Every Verilog text is generated before anything is written, and every file is written through
    a temporary file and renamed, so an error leaves no half-written file. With ``synth`` the
    manifest also carries each block's synthesis figures (:func:`codesign.rtl.synth.synthesize`,
    cached; needs Debian's yosys).

    Returns the manifest::

        {"version": 1, "generator": "codesign.rtl", "amaranth": "0.5.10",
         "blocks": [{"block": ..., "params": {...}, "module": ..., "file": "<module>.v",
                     "sha256": ..., "latency_cycles": n, "beats_per_cycle": 1,
                     "ports": {name: {"direction", "width"}},
                     "synth": {...}  # only with synth=True
                    }, ...]}

    With ``parents=False`` the parent of ``out_dir`` must exist (the build writer uses it).
    Duplicate specs are written once; the order of first appearance is kept. Block files of an
    earlier call (``codesign_*.v``) that the new manifest does not list are removed.
    """
    unique: list[BlockSpec] = []
    for spec in specs:
        if not isinstance(spec, BlockSpec):
            raise TypeError(f"specs must be BlockSpec instances, not {type(spec).__name__}")
        if spec not in unique:
            unique.append(spec)
    texts = {spec: to_verilog(spec) for spec in unique}
    entries: list[dict[str, Any]] = []
    for spec in unique:
        entry: dict[str, Any] = {
            **spec.to_json(),
            "module": spec.module_name,
            "file": f"{spec.module_name}.v",
            "sha256": hashlib.sha256(texts[spec].encode()).hexdigest(),
            "latency_cycles": block_info(spec.block).component.LATENCY,
            "beats_per_cycle": 1,
            "ports": _ports(spec),
        }
        if synth:
            from codesign.rtl.synth import synthesize

            entry["synth"] = synthesize(spec).to_json()
        entries.append(entry)
    manifest = {
        "version": MANIFEST_VERSION,
        "generator": "codesign.rtl",
        "amaranth": amaranth.__version__,
        "blocks": entries,
    }
    out = Path(out_dir)
    try:
        # parents=False inside a build: a build removed mid-compile must not be re-created
        # half empty by its RTL writer
        out.mkdir(parents=parents, exist_ok=True)
    except OSError as e:
        raise BuildError(f"RTL output directory {out} cannot be created: {e.strerror}") from None
    for spec in unique:
        _atomic_write(out / f"{spec.module_name}.v", texts[spec])
    _atomic_write(out / MANIFEST_NAME, json.dumps(manifest, indent=2) + "\n")
    keep = {e["file"] for e in entries}
    for stale in out.glob("codesign_*.v"):
        if stale.name not in keep:
            stale.unlink(missing_ok=True)
    return manifest


def read_manifest(path: str | os.PathLike[str]) -> tuple[BlockSpec, ...]:
    """The block specs listed in a ``manifest.json`` (or a build directory holding
    ``rtl/manifest.json``, or an ``rtl`` directory holding ``manifest.json``)."""
    p = Path(path)
    candidates = [p] if p.suffix == ".json" else [p / "rtl" / MANIFEST_NAME, p / MANIFEST_NAME]
    for c in candidates:
        if c.is_file():
            break
    else:
        raise BuildError(f"build directory {p} must contain rtl/{MANIFEST_NAME}; none found")
    try:
        manifest = json.loads(c.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise BuildError(f"{c} must be a readable JSON manifest: {e}") from None
    if not isinstance(manifest, dict) or manifest.get("version") != MANIFEST_VERSION:
        raise BuildError(
            f"{c} must be an RTL manifest of version {MANIFEST_VERSION}, "
            f"not {manifest.get('version') if isinstance(manifest, dict) else type(manifest).__name__}"
        )
    blocks = manifest.get("blocks")
    if not isinstance(blocks, list):
        raise BuildError(f"{c} must have a 'blocks' list")
    return tuple(BlockSpec.from_json(b) for b in blocks)
