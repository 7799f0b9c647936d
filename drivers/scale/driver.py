"""A scale indicator on any transport pyserial can open, read by one thread, reconnecting forever.

The lane must keep running while a scale is unplugged or its device server reboots, so the driver
never raises from its thread: it records the cause in :class:`ScaleHealth`, logs the loss once and
the return once, and retries with exponential backoff capped at ``backoff_max_s`` (so a device that
comes back is read again within a few seconds). Bytes buffered before a loss are dropped with the
link, so a frame cut by the loss can never be completed by bytes from after it.
"""

from __future__ import annotations

import logging
import threading
import time

import serial

from drivers.scale.base import FrameFault, Reading, ReadingCallback, ScaleDriver, ScaleHealth
from drivers.scale.protocols import ScaleProtocol, get_protocol
from edge.config import ScaleSection
from edge.errors import ScaleError

log = logging.getLogger(__name__)

_PARITY = {"N": serial.PARITY_NONE, "E": serial.PARITY_EVEN, "O": serial.PARITY_ODD,
           "M": serial.PARITY_MARK, "S": serial.PARITY_SPACE}


class _Silent(Exception):
    """The link is open but the indicator has said nothing for too long: treat as lost."""


class SerialScaleDriver(ScaleDriver):
    """Reads ``cfg.url`` with ``cfg.protocol``; calls ``on_reading`` for every decoded frame.

    Readings with ``overload``/``underload`` or without a weight are delivered too (the weighing
    detector turns them into alarms); use :attr:`Reading.valid` before using ``weight``. Broken
    frames are counted in health, never delivered.
    """

    def __init__(
        self,
        cfg: ScaleSection,
        name: str,
        *,
        silence_timeout_s: float | None = None,
        poll_interval_s: float = 0.1,
        backoff_initial_s: float = 0.1,
        backoff_max_s: float = 2.0,
        read_timeout_s: float = 0.05,
    ) -> None:
        self.cfg = cfg
        self.name = name
        self.url = cfg.url
        self.protocol = cfg.protocol
        self._proto: ScaleProtocol = get_protocol(cfg.protocol, address=cfg.address, unit=cfg.unit)
        self.silence_timeout_s = cfg.silence_timeout_s if silence_timeout_s is None else silence_timeout_s
        self.poll_interval_s = poll_interval_s
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.read_timeout_s = read_timeout_s
        self._on_reading: ReadingCallback | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._port: serial.SerialBase | None = None
        self._connected = False
        self._down_logged = False
        self._readings = 0
        self._faults = 0
        self._reconnects = 0
        self._last_reading_mono: float | None = None
        self._last_error: str | None = None
        self._outbox: list[bytes] = []
        self._got_data = False

    # ------------------------------------------------------------------ ScaleDriver

    def start(self, on_reading: ReadingCallback) -> None:
        if self._thread is not None:
            raise ScaleError(f"scale {self.name}: already started")
        self._on_reading = on_reading
        self._thread = threading.Thread(target=self._run, name=f"scale-{self.name}", daemon=True)
        self._thread.start()

    def health(self) -> ScaleHealth:
        with self._lock:
            age = None if self._last_reading_mono is None else time.monotonic() - self._last_reading_mono
            return ScaleHealth(
                url=self.url, protocol=self.protocol, connected=self._connected, readings=self._readings,
                faults=self._faults, reconnects=self._reconnects, last_reading_age_s=age,
                last_error=self._last_error,
            )

    def close(self) -> None:
        self._stop.set()
        port = self._port
        if port is not None and hasattr(port, "cancel_read"):
            try:
                port.cancel_read()
            except (OSError, serial.SerialException):
                pass
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            if self._thread.is_alive():
                log.error("scale %s: reader thread did not stop", self.name)
            self._thread = None

    def send(self, request: bytes) -> None:
        """Send a command to the indicator (e.g. b"Z\\r\\n" to zero an MT-SICS scale) while connected.

        Commands given while the link is down are dropped at the next connect, not sent late.
        """
        with self._lock:
            self._outbox.append(request)

    # ------------------------------------------------------------------ thread

    def _open(self) -> serial.SerialBase:
        cfg = self.cfg
        kwargs: dict[str, object] = {}
        if not cfg.url.startswith("rfc2217://"):
            kwargs["write_timeout"] = 1.0  # pyserial's RFC 2217 client refuses a write timeout
        try:
            return serial.serial_for_url(
                cfg.url, baudrate=cfg.baudrate, bytesize=cfg.bytesize, parity=_PARITY[cfg.parity],
                stopbits=cfg.stopbits, timeout=self.read_timeout_s, **kwargs,
            )
        except (serial.SerialException, OSError, ValueError, NotImplementedError) as err:
            raise ScaleError(f"cannot open {cfg.url}: {err}") from err

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._loop()
            except Exception as err:  # a bug or an odd transport: keep the lane's scale alive
                log.exception("scale %s: reader failed unexpectedly; restarting it", self.name)
                self._down(f"reader failed: {err!r}")
                self._stop.wait(self.backoff_max_s)

    def _loop(self) -> None:
        backoff = self.backoff_initial_s
        while not self._stop.is_set():
            try:
                port = self._open()
            except ScaleError as err:
                self._down(str(err))
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self.backoff_max_s)
                continue
            with self._lock:
                if self._outbox:  # a tare or zero asked for while the scale was away is not done later
                    log.warning("scale %s: dropped %d command(s) queued while disconnected", self.name,
                                len(self._outbox))
                    self._outbox = []
            self._port = port
            try:
                self._pump(port)
            except _Silent as err:
                self._down(str(err))
            except (serial.SerialException, OSError) as err:
                self._down(f"link failed: {err}")
            finally:
                self._port = None
                try:
                    port.close()
                except (serial.SerialException, OSError):
                    pass
            if self._got_data:
                backoff = self.backoff_initial_s  # it worked a while: retry quickly, then back off
            self._stop.wait(backoff)
            backoff = min(backoff * 2, self.backoff_max_s)

    def _pump(self, port: serial.SerialBase) -> None:
        self._got_data = False
        port.reset_input_buffer()  # bytes from before (re)connecting carry stale times
        for req in self._proto.startup_requests():
            port.write(req)
        poll = self._proto.poll_request()
        buf = b""
        last_data = time.monotonic()
        next_poll = 0.0
        while not self._stop.is_set():
            now = time.monotonic()
            with self._lock:
                pending, self._outbox = self._outbox, []
            for req in pending:
                port.write(req)
            if poll is not None and now >= next_poll:
                port.write(poll)
                next_poll = now + self.poll_interval_s
            chunk = port.read(max(1, port.in_waiting))
            now = time.monotonic()
            if not chunk:
                if now - last_data > self.silence_timeout_s:
                    raise _Silent(f"no data for {self.silence_timeout_s:.1f} s")
                continue
            last_data = now
            if not self._got_data:
                self._got_data = True
                self._up()
            items, buf = self._proto.parse(buf + chunk, time.time())
            for item in items:
                self._deliver(item)

    def _deliver(self, item: Reading | FrameFault) -> None:
        if isinstance(item, FrameFault):
            with self._lock:
                self._faults += 1
                self._last_error = f"bad frame: {item.reason}"
            log.debug("scale %s: dropped %r: %s", self.name, item.raw[:40], item.reason)
            return
        with self._lock:
            self._readings += 1
            self._last_reading_mono = time.monotonic()
        callback = self._on_reading
        if callback is None:
            return
        try:
            callback(item)
        except Exception:
            log.exception("scale %s: reading handler failed (reading dropped, driver continues)", self.name)

    def _down(self, reason: str) -> None:
        with self._lock:
            was_up = self._connected
            self._connected = False
            self._last_error = reason
            first = not self._down_logged
            self._down_logged = True
        if was_up or first:
            log.warning("scale %s (%s) lost: %s; reconnecting", self.name, self.url, reason)
        else:
            log.debug("scale %s still down: %s", self.name, reason)

    def _up(self) -> None:
        with self._lock:
            was_down = self._down_logged
            self._connected = True
            self._down_logged = False
            if was_down:
                self._reconnects += 1
        if was_down:
            log.warning("scale %s (%s) is back", self.name, self.url)
        else:
            log.info("scale %s (%s) connected, protocol %s", self.name, self.url, self.protocol)
