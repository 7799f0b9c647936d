"""Indicator protocols, selected by the name in ``[lanes.scale] protocol``.

A new protocol is a :class:`ScaleProtocol` subclass registered here under a name (and, for a
variant of an existing one, the options that make it that variant).
"""

from __future__ import annotations

from drivers.scale.protocols.ascii import AsciiProtocol, ReversedAsciiProtocol
from drivers.scale.protocols.base import MAX_PENDING, ParseResult, ScaleProtocol, names, register, registered
from drivers.scale.protocols.mettler import MettlerContinuousProtocol
from drivers.scale.protocols.sics import SicsProtocol
from edge.errors import ConfigError

register("ascii", AsciiProtocol)
register("ascii-reversed", ReversedAsciiProtocol)
register("mettler-continuous", MettlerContinuousProtocol)
register("mettler-continuous-checksum", MettlerContinuousProtocol, checksum=True)
register("mt-sics", SicsProtocol)
register("mt-sics-stream", SicsProtocol, stream=True)


def available_protocols() -> list[str]:
    return names()


def get_protocol(name: str, address: int | None = None, unit: str = "kg", **options: object) -> ScaleProtocol:
    """A fresh parser for ``name`` (each driver needs its own: parsers keep framing state)."""
    entry = registered(name)
    if entry is None:
        raise ConfigError(
            "scale", [("protocol", f"unknown scale protocol {name!r}; available: {', '.join(names())}")]
        )
    cls, defaults = entry
    kwargs = {**defaults, **options}
    return cls(address=address, unit=unit, name=name, **kwargs)


__all__ = [
    "MAX_PENDING",
    "AsciiProtocol",
    "MettlerContinuousProtocol",
    "ParseResult",
    "ReversedAsciiProtocol",
    "ScaleProtocol",
    "SicsProtocol",
    "available_protocols",
    "get_protocol",
    "register",
]
