"""What every indicator protocol provides: framing and decoding, encoding for the simulator, polling.

Parsers are pure with respect to I/O: they take the bytes received so far and return the frames
they could decode plus the bytes that may still become a frame. The driver owns the port, the clock
and the threads; the simulator reuses the same classes to *produce* the bytes, so a test that passes
through both ends checks the encoder against the decoder, and the byte-exact tests pin both to the
manufacturers' published formats.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import ClassVar

from drivers.scale.base import FrameFault, Reading

ParseResult = tuple[list[Reading | FrameFault], bytes]

MAX_PENDING = 256
"""No protocol here has a frame longer than this; a longer unterminated run is garbage, not a frame."""


class ScaleProtocol(abc.ABC):
    """One indicator output format. Instances may keep a little framing state (learned field widths).

    ``address`` filters an RS-485 bus shared by several indicators; ``unit`` is used when a frame
    carries no unit of its own.
    """

    default_name: ClassVar[str] = ""
    polled: ClassVar[bool] = False
    """True when the indicator only talks when asked (request/response protocols)."""

    def __init__(self, address: int | None = None, unit: str = "kg", name: str | None = None) -> None:
        self.address = address
        self.unit = unit
        self.name = name or self.default_name

    @abc.abstractmethod
    def parse(self, data: bytes, t: float = 0.0) -> ParseResult:
        """Decode ``data`` (leftover from the previous call + new bytes); readings get timestamp ``t``."""

    @abc.abstractmethod
    def encode(self, reading: Reading) -> bytes:
        """The bytes an indicator of this kind sends for ``reading`` (simulator side)."""

    def poll_request(self) -> bytes | None:
        """What to send to get one reading, for polled protocols; None for continuous ones."""
        return None

    def startup_requests(self) -> list[bytes]:
        """Sent once after every (re)connect, e.g. to switch an indicator into streaming mode."""
        return []

    def serve(self, data: bytes, current: Callable[[], Reading]) -> tuple[bytes, bytes, bool | None]:
        """Simulator side of a request/response protocol: answer the complete requests in ``data``.

        Returns (reply bytes, leftover request bytes, streaming): ``streaming`` is True/False when a
        request switched repeated output on/off, None when unchanged. Continuous protocols ignore input.
        """
        return b"", b"", None

    def _reading(self, raw: bytes, t: float, **kw: object) -> Reading:
        kw.setdefault("unit", self.unit)
        return Reading(raw=raw, timestamp=t, protocol=self.name, **kw)  # type: ignore[arg-type]


_REGISTRY: dict[str, tuple[type[ScaleProtocol], dict[str, object]]] = {}


def register(name: str, cls: type[ScaleProtocol], **defaults: object) -> None:
    """Make a protocol selectable by ``name`` in the config; ``defaults`` fix variant options."""
    if name in _REGISTRY:
        raise ValueError(f"scale protocol {name!r} is already registered")
    _REGISTRY[name] = (cls, defaults)


def registered(name: str) -> tuple[type[ScaleProtocol], dict[str, object]] | None:
    return _REGISTRY.get(name)


def names() -> list[str]:
    return sorted(_REGISTRY)
