"""The camera edge of a lane: a ``FrameSource`` hands out the newest frame, never a queue of old ones."""

from __future__ import annotations

import abc
import enum
from dataclasses import dataclass, field
from typing import Any

import numpy as np


class CameraState(enum.StrEnum):
    CONNECTING = "connecting"
    STREAMING = "streaming"
    STALLED = "stalled"
    FAILED = "failed"
    CLOSED = "closed"


@dataclass(frozen=True)
class Frame:
    """One decoded picture with when it was captured and its place in the source's sequence.

    ``truth`` is filled only by the synthetic source: what it drew, so tests and the demo can check
    what the reader made of it.
    """

    image: np.ndarray
    seq: int
    timestamp: float
    camera: str
    truth: tuple[dict[str, Any], ...] = ()


@dataclass
class CameraHealth:
    name: str
    url: str
    state: CameraState
    fps: float = 0.0
    width: int = 0
    height: int = 0
    frames: int = 0
    dropped: int = 0
    reconnects: int = 0
    last_frame_age_s: float | None = None
    last_error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["state"] = str(self.state)
        return d


class FrameSource(abc.ABC):
    """A camera. ``start`` begins capture in the background; ``latest`` returns the newest frame.

    A consumer that is slower than the camera skips frames (counted as dropped) instead of
    working through a backlog: a plate reader must see the vehicle where it is now.
    """

    name: str
    url: str

    @abc.abstractmethod
    def start(self) -> None: ...

    @abc.abstractmethod
    def latest(self, after_seq: int = -1, timeout: float = 1.0) -> Frame | None:
        """The newest frame with ``seq > after_seq``, waiting up to ``timeout``; None if none came."""

    @abc.abstractmethod
    def health(self) -> CameraHealth: ...

    @abc.abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> FrameSource:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
