"""Shared helpers for the scale tests: waiting on conditions, collecting readings, free ports."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable

from drivers.scale.base import Reading
from edge.config import ScaleSection


def scale_cfg(**kw: object) -> ScaleSection:
    """A validated [scale] section (through the validator, like a config file's)."""
    kw.setdefault("url", "loop://")
    return ScaleSection.model_validate(kw)


def wait_for(cond: Callable[[], bool], timeout: float, step: float = 0.02) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(step)
    return cond()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Collector:
    """Thread-safe list of (arrival wall time, reading)."""

    def __init__(self) -> None:
        self.items: list[tuple[float, Reading]] = []
        self._lock = threading.Lock()

    def __call__(self, r: Reading) -> None:
        with self._lock:
            self.items.append((time.time(), r))

    def since(self, t: float) -> list[Reading]:
        with self._lock:
            return [r for at, r in self.items if at >= t]

    def all(self) -> list[Reading]:
        with self._lock:
            return [r for _, r in self.items]
