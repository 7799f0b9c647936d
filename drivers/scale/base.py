"""The scale edge of a lane: readings parsed from an indicator's bytes, and the driver that reads them."""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Reading:
    """One indicator frame, decoded. Weights are in ``unit`` with the indicator's own resolution.

    A reading with ``overload`` or ``underload`` set carries no usable weight (``weight`` is None):
    it must never be published as one.
    """

    weight: float | None
    unit: str
    stable: bool
    net: bool = False
    tare: float | None = None
    overload: bool = False
    underload: bool = False
    zero: bool = False
    raw: bytes = b""
    timestamp: float = 0.0
    protocol: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def valid(self) -> bool:
        return self.weight is not None and not (self.overload or self.underload)


@dataclass(frozen=True)
class FrameFault:
    """Bytes that looked like a frame but did not parse (checksum, garbage, truncation)."""

    raw: bytes
    reason: str


@dataclass
class ScaleHealth:
    url: str
    protocol: str
    connected: bool
    readings: int = 0
    faults: int = 0
    reconnects: int = 0
    last_reading_age_s: float | None = None
    last_error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


ReadingCallback = Callable[[Reading], None]


class ScaleDriver(abc.ABC):
    """A scale indicator on some serial transport; calls ``on_reading`` for each validly framed reading.

    That includes overload/underload readings and replies without a weight (``weight`` None), so a
    weighing detector can raise alarms; check :attr:`Reading.valid` before using ``weight``. Broken
    frames are never delivered, only counted in :meth:`health`.
    """

    url: str
    protocol: str

    @abc.abstractmethod
    def start(self, on_reading: ReadingCallback) -> None: ...

    @abc.abstractmethod
    def health(self) -> ScaleHealth: ...

    @abc.abstractmethod
    def close(self) -> None: ...
