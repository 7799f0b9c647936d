"""The project's exception hierarchy.

Library errors (OpenCV, pyserial, paho, sqlite3, onnxruntime) are translated into these at the
boundary with ``raise ... from err`` so that callers handle one small set of causes and the original
traceback is kept for the log.
"""

from __future__ import annotations


class EdgeError(Exception):
    """Base of every error this project raises on purpose."""


class ConfigError(EdgeError):
    """A configuration file is missing, unreadable or invalid.

    ``problems`` holds one ``(key_path, message)`` pair per finding so that a CLI can print all of
    them at once instead of making the technician fix one error per run.
    """

    def __init__(self, source: str, problems: list[tuple[str, str]]) -> None:
        self.source = source
        self.problems = problems
        lines = [f"{source}: {path}: {msg}" if path else f"{source}: {msg}" for path, msg in problems]
        super().__init__("\n".join(lines))


class DeviceError(EdgeError):
    """A camera or scale could not be opened or stopped answering."""


class CameraError(DeviceError):
    """A frame source failed (bad URL, stream ended, decoder error)."""


class ScaleError(DeviceError):
    """A scale transport failed (port missing, device server gone)."""


class ProtocolError(EdgeError):
    """Bytes from an indicator do not form a valid frame of the configured protocol."""


class ModelError(EdgeError):
    """A model file is missing, does not match the manifest's sha256, or cannot be loaded."""


class StorageError(EdgeError):
    """The journal or another durable store could not be written or read."""


class IntegrityError(StorageError):
    """A record's hash chain or signature does not verify: something was changed, inserted or removed."""


class DeliveryError(EdgeError):
    """The uplink to HQ failed in a way the caller must see (refused credentials, refused publish)."""


class CommandError(EdgeError):
    """A command from HQ was refused: bad signature, expired, replayed or malformed."""
