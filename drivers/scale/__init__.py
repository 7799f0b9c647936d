"""Truck scales: indicator protocols, the serial driver, the weighing detector and a simulator."""

from __future__ import annotations

from drivers.scale.base import FrameFault, Reading, ScaleDriver, ScaleHealth
from edge.config import ScaleSection


def open_scale(cfg: ScaleSection, name: str) -> ScaleDriver:
    """The driver for ``cfg`` (not yet started). Raises ConfigError for an unknown protocol.

    The port is opened by ``start()`` in the driver's own thread and reopened whenever it fails, so
    a missing device does not stop a lane from starting.
    """
    from drivers.scale.driver import SerialScaleDriver

    return SerialScaleDriver(cfg, name)


__all__ = ["FrameFault", "Reading", "ScaleDriver", "ScaleHealth", "open_scale"]
