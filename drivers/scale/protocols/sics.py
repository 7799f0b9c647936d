"""MT-SICS (Mettler Toledo Standard Interface Command Set), level 0 subset, request/response.

Commands end with CR LF: ``S`` (stable weight), ``SI`` (weight now, stable or not), ``SIR`` (weight
now and repeat), ``Z`` (zero), ``T`` (tare), ``@`` (reset, cancels ``SIR``). Replies::

    S S     12340 kg     stable weight           S D     12310 kg   dynamic (in motion)
    S I                  not executable now      S + / S -          over / under range
    Z A / Z I / Z + / Z -                        T S   tare unit / T I / T + / T -
    I4 A "serial"        reply to @              ES / ET / EL       syntax / transmission / logic error

The weight field is right-aligned in ten characters with sign and decimal point.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from drivers.scale.base import FrameFault, Reading
from drivers.scale.protocols.base import MAX_PENDING, ParseResult, ScaleProtocol

_WEIGHT = re.compile(rb"^(?P<id>S|T) (?P<st>[SD]) +(?P<w>[+-]?\d+(?:\.\d+)?) +(?P<unit>[A-Za-z%]+)$")
_STATUS = re.compile(rb"^(?P<id>S|Z|T) (?P<st>[IA+-])$")
_RESET = re.compile(rb'^I4 A "(?P<snr>[^"]*)"$')
_ERRORS = {
    b"ES": "syntax error: the indicator did not recognise the command",
    b"ET": "transmission error: the indicator received a garbled command",
    b"EL": "logical error: the indicator cannot execute the command",
}
_COMMAND = re.compile(rb"^(S|SI|SIR|Z|T|@)$")


class SicsProtocol(ScaleProtocol):
    default_name = "mt-sics"
    polled = True

    def __init__(
        self,
        address: int | None = None,
        unit: str = "kg",
        name: str | None = None,
        stream: bool = False,
        decimals: int = 0,
    ) -> None:
        super().__init__(address, unit, name)
        self.stream = stream
        """True: ask once for SIR (repeated output) instead of polling SI."""
        self.decimals = decimals
        self.serial_number = "SIM00001"
        self.tare_value = 0.0

    def poll_request(self) -> bytes | None:
        return None if self.stream else b"SI\r\n"

    def startup_requests(self) -> list[bytes]:
        return [b"SIR\r\n"] if self.stream else []

    def parse(self, data: bytes, t: float = 0.0) -> ParseResult:
        out: list[Reading | FrameFault] = []
        start = 0
        for m in re.finditer(rb"\r?\n", data):
            line = data[start : m.start()]
            raw = data[start : m.end()]
            start = m.end()
            if line.strip():
                out.append(self._decode(line, raw, t))
        rest = data[start:]
        if len(rest) > MAX_PENDING:
            out.append(FrameFault(rest, f"no CR LF in {len(rest)} bytes: not MT-SICS or garbage"))
            rest = b""
        return out, rest

    def _decode(self, line: bytes, raw: bytes, t: float) -> Reading | FrameFault:
        if line in _ERRORS:
            return FrameFault(raw, f"indicator replied {line.decode()}: {_ERRORS[line]}")
        m = _WEIGHT.match(line)
        if m is not None:
            value = float(m["w"])
            unit = m["unit"].decode()
            reply = line[:3].decode()
            if m["id"] == b"T":
                return self._reading(raw, t, weight=None, tare=value, unit=unit, stable=True,
                                     extra={"reply": reply})
            return self._reading(raw, t, weight=value, unit=unit, stable=m["st"] == b"S", zero=value == 0,
                                 extra={"reply": reply})
        m = _STATUS.match(line)
        if m is not None:
            reply = line.decode()
            over = line == b"S +"
            under = line == b"S -"
            return self._reading(raw, t, weight=None, stable=False, overload=over, underload=under,
                                 extra={"reply": reply})
        m = _RESET.match(line)
        if m is not None:
            return self._reading(raw, t, weight=None, stable=False,
                                 extra={"reply": "I4 A", "serial_number": m["snr"].decode(errors="replace")})
        return FrameFault(raw, f"unrecognised MT-SICS reply {line[:40]!r}")

    def _weight_field(self, w: float) -> str:
        return f"{w:.{self.decimals}f}".rjust(10)

    def encode(self, reading: Reading) -> bytes:
        if reading.overload or (reading.weight is None and not reading.underload):
            return b"S +\r\n"
        if reading.underload or reading.weight is None:
            return b"S -\r\n"
        st = "S" if reading.stable else "D"
        return f"S {st} {self._weight_field(reading.weight)} {reading.unit or self.unit}\r\n".encode()

    def serve(self, data: bytes, current: Callable[[], Reading]) -> tuple[bytes, bytes, bool | None]:
        replies: list[bytes] = []
        streaming: bool | None = None
        start = 0
        for m in re.finditer(rb"\r?\n", data):
            cmd = data[start : m.start()].strip()
            start = m.end()
            if not _COMMAND.match(cmd):
                replies.append(b"ES\r\n")
                continue
            r = current()
            if cmd == b"@":
                streaming = False
                replies.append(f'I4 A "{self.serial_number}"\r\n'.encode())
            elif cmd == b"SI":
                replies.append(self.encode(r))
            elif cmd == b"SIR":
                streaming = True
                replies.append(self.encode(r))
            elif cmd == b"S":
                replies.append(self.encode(r) if not r.valid or r.stable else b"S I\r\n")
            elif cmd == b"Z":
                replies.append(b"Z A\r\n" if r.valid and r.stable else b"Z I\r\n")
            elif cmd == b"T":
                if r.valid and r.stable and r.weight is not None:
                    self.tare_value = r.weight
                    replies.append(f"T S {self._weight_field(r.weight)} {r.unit}\r\n".encode())
                else:
                    replies.append(b"T I\r\n")
        rest = data[start:]
        if len(rest) > MAX_PENDING:
            replies.append(b"ES\r\n")
            rest = b""
        return b"".join(replies), rest, streaming
