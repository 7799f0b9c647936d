"""Customs post edge controller: lanes of cameras and scales, plate reading, durable delivery to HQ."""

__version__ = "0.1.0"
