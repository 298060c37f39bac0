"""Block registry and :class:`BlockSpec`, the frozen (block name, parameters) pair.

A spec names one of :data:`BLOCKS` and the build-time parameters of that block. Parameters not
given take the block's defaults, and a spec always stores the complete, sorted parameter set, so
two specs that build the same hardware are equal (and hash alike: the Verilog and synthesis caches
are keyed by them).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from amaranth.lib import wiring

from codesign.errors import OptionError
from codesign.rtl.broadcaster import Broadcaster, BroadcasterParams
from codesign.rtl.mwq_decoder import MWQDecoder, MWQDecoderParams
from codesign.rtl.requantizer import Requantizer, RequantizerParams
from codesign.rtl.sparse_expander import SparseExpander, SparseExpanderParams

__all__ = ["BLOCKS", "BlockInfo", "BlockSpec", "block_info"]

ParamValue = int | str | bool


@dataclass(frozen=True)
class BlockInfo:
    """What codesign knows about one block kind."""

    name: str
    params_type: type
    component: Callable[[Any], wiring.Component]
    bench_module: str  # the cocotb test module (codesign.rtl.bench.<...>)
    summary: str


BLOCKS: dict[str, BlockInfo] = {
    info.name: info
    for info in (
        BlockInfo(
            "requantizer",
            RequantizerParams,
            Requantizer,
            "codesign.rtl.bench.requantizer",
            "int32 accumulators -> int8/int16, AIE-ML SRS rounding, per-tensor/per-channel",
        ),
        BlockInfo(
            "broadcaster",
            BroadcasterParams,
            Broadcaster,
            "codesign.rtl.bench.broadcaster",
            "take a tile stream once, replay it R times to N outputs",
        ),
        BlockInfo(
            "mwq_decoder",
            MWQDecoderParams,
            MWQDecoder,
            "codesign.rtl.bench.mwq_decoder",
            "D2MoE MWQ: base code + k residual planes -> integer weights",
        ),
        BlockInfo(
            "sparse_expander",
            SparseExpanderParams,
            SparseExpander,
            "codesign.rtl.bench.sparse_expander",
            "N:M compressed values + indices -> dense lanes",
        ),
    )
}


def block_info(name: str) -> BlockInfo:
    """The registry entry of block ``name``; OptionError listing the known blocks otherwise."""
    try:
        return BLOCKS[name]
    except KeyError:
        raise OptionError(
            f"block must be one of {', '.join(sorted(BLOCKS))}, not {name!r}"
        ) from None


@dataclass(frozen=True)
class BlockSpec:
    """One block with its build-time parameters.

    ``params`` is normalised to the full sorted ``(name, value)`` tuple of the block's parameter
    dataclass; build one with :meth:`of`. Invalid names or values raise OptionError.
    """

    block: str
    params: tuple[tuple[str, ParamValue], ...] = ()

    def __post_init__(self) -> None:
        info = block_info(self.block)
        given = dict(self.params)
        fields = {f.name for f in dataclasses.fields(info.params_type)}
        unknown = sorted(set(given) - fields)
        if unknown:
            raise OptionError(
                f"{self.block} parameter must be one of {', '.join(sorted(fields))}, "
                f"not {unknown[0]!r}"
            )
        for key, value in given.items():
            default = next(f for f in dataclasses.fields(info.params_type) if f.name == key)
            expected = type(default.default)
            if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
                raise OptionError(
                    f"{self.block} parameter {key} must be {expected.__name__}, "
                    f"not {type(value).__name__} {value!r}"
                )
        config = info.params_type(**given)
        object.__setattr__(self, "params", tuple(sorted(dataclasses.asdict(config).items())))

    @classmethod
    def of(cls, block: str, **params: ParamValue) -> BlockSpec:
        """``BlockSpec.of("requantizer", lanes=8)``."""
        return cls(block, tuple(params.items()))

    @property
    def config(self) -> Any:
        """The block's parameter dataclass instance."""
        return block_info(self.block).params_type(**dict(self.params))

    def component(self) -> wiring.Component:
        """A fresh Amaranth component for this spec."""
        return block_info(self.block).component(self.config)

    @property
    def key(self) -> str:
        """A short stable hash of block and parameters (used in module and file names)."""
        text = json.dumps(self.to_json(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:10]

    @property
    def module_name(self) -> str:
        """The Verilog module name: ``codesign_<block>_<key>``."""
        return f"codesign_{self.block}_{self.key}"

    def to_json(self) -> dict[str, Any]:
        """``{"block": name, "params": {...}}`` (the manifest entry's identity)."""
        return {"block": self.block, "params": dict(self.params)}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> BlockSpec:
        """Inverse of :meth:`to_json`; OptionError on a malformed entry."""
        if not isinstance(obj, Mapping) or "block" not in obj:
            raise OptionError(f"a block spec must be an object with a 'block' key, not {obj!r}")
        params = obj.get("params", {})
        if not isinstance(params, Mapping):
            raise OptionError(f"block spec params must be an object, not {params!r}")
        return cls(str(obj["block"]), tuple(params.items()))

    def __str__(self) -> str:
        defaults = dataclasses.asdict(block_info(self.block).params_type())
        changed = [f"{k}={v}" for k, v in self.params if defaults.get(k) != v]
        return f"{self.block}({', '.join(changed)})"
