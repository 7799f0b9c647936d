"""Generic ASCII continuous output, as sent by most Chinese and many European truck-scale indicators.

Line format (one frame a line, CR LF, CR or LF terminated)::

    [addr,]ST,GS,+0012340kg
    |      |  |  |       '- unit (kg, t, lb, g; may be absent or preceded by spaces/comma)
    |      |  |  '- sign and weight field: fixed width, zeros or spaces, optional decimal point
    |      |  '- GS gross, NT net, TR tare (also GW/NW/TW); some indicators omit this field
    |      '- ST stable, US unstable (motion), OL overload (OL with '-' or UL: underload)
    '- optional RS-485 address ('01,' or '@01,'), when several indicators share a bus

The "reversed" variant (XK3190 family "=" output) sends ``=`` followed by eight characters: the
displayed digits with decimal point, least significant first, and last the sign position ('0' or
'-'). ``=000.3000`` is 3.000, ``=00.1000-`` is -1.00. It has no motion flag and no terminator.

Neither format has a checksum, so the parser guards against dropped bytes another way: the weight
field has a fixed width on any one indicator; a line whose field is shorter or longer than the
first good frames' is rejected instead of read as a different number.
"""

from __future__ import annotations

import logging
import re

from drivers.scale.base import FrameFault, Reading
from drivers.scale.protocols.base import MAX_PENDING, ParseResult, ScaleProtocol

log = logging.getLogger(__name__)

_LINE = re.compile(
    rb"^(?:@?(?P<addr>\d{1,3})\s*[,:;]\s*)?"
    rb"(?P<st>ST|US|OL|UL)\s*,\s*"
    rb"(?:(?P<mode>GS|NT|TR|GW|NW|TW)\s*,?)?"
    rb"(?P<field>[^A-Za-z,]*?)"
    rb"\s*,?\s*(?P<unit>kg|KG|Kg|lb|LB|lbs|t|T|g|G|oz)?\s*$"
)
_NUMBER = re.compile(rb"^\s*(?P<sign>[+-])?\s*(?P<num>\d+(?:\.\d+)?|\.\d+)$")
_UNITS = {b"kg": "kg", b"KG": "kg", b"Kg": "kg", b"lb": "lb", b"LB": "lb", b"lbs": "lb",
          b"t": "t", b"T": "t", b"g": "g", b"G": "g", b"oz": "oz"}
_NET = {b"NT", b"NW"}
_TARE = {b"TR", b"TW"}


def format_weight(weight: float, width: int, decimals: int) -> str:
    """Zero-padded sign-less digits of ``weight`` in exactly ``width`` characters (point included)."""
    text = f"{abs(weight):0{width}.{decimals}f}"
    if len(text) > width:
        raise ValueError(f"{weight} does not fit in {width} characters")
    return text


class AsciiProtocol(ScaleProtocol):
    default_name = "ascii"

    def __init__(
        self,
        address: int | None = None,
        unit: str = "kg",
        name: str | None = None,
        width: int | None = None,
        decimals: int = 0,
    ) -> None:
        super().__init__(address, unit, name)
        self.width = width
        """Weight field width (sign excluded); learned from the first good frame when None."""
        self.decimals = decimals
        self._other = (0, 0)  # (width, consecutive frames) of a width other than the learned one

    def parse(self, data: bytes, t: float = 0.0) -> ParseResult:
        out: list[Reading | FrameFault] = []
        start = 0
        for m in re.finditer(rb"\r\n|\r|\n", data):
            line = data[start : m.start()]
            raw = data[start : m.end()]
            start = m.end()
            if not line.strip():
                continue
            item = self._decode(line, raw, t)
            if item is not None:
                out.append(item)
        rest = data[start:]
        if len(rest) > MAX_PENDING:
            out.append(FrameFault(rest, f"no line end in {len(rest)} bytes: not this protocol or garbage"))
            rest = b""
        return out, rest

    def _decode(self, line: bytes, raw: bytes, t: float) -> Reading | FrameFault | None:
        m = _LINE.match(line)
        if m is None:
            return FrameFault(raw, "not a ST/US/OL weight line (truncated, garbled or wrong protocol)")
        addr = int(m["addr"]) if m["addr"] is not None else None
        if self.address is not None and addr != self.address:
            # Another indicator on the same RS-485 bus: not ours, and not a fault either.
            return None
        unit = _UNITS.get(m["unit"] or b"", self.unit)
        mode = m["mode"] or b"GS"
        extra: dict[str, object] = {"mode": mode.decode()}
        if addr is not None:
            extra["address"] = addr
        st = m["st"]
        field = m["field"]
        if st == b"UL" or (st == b"OL" and field.strip().startswith(b"-")):
            return self._reading(raw, t, weight=None, unit=unit, stable=False, underload=True, extra=extra)
        if st == b"OL":
            return self._reading(raw, t, weight=None, unit=unit, stable=False, overload=True, extra=extra)
        num = _NUMBER.match(field)
        if num is None:
            return FrameFault(raw, f"weight field {field!r} is not a number")
        width = len(field) - (num["sign"] is not None)
        if self.width is None:
            self.width = width
        elif width != self.width:
            # Five frames in a row of one other width: the indicator was reconfigured or swapped.
            self._other = (width, self._other[1] + 1) if self._other[0] == width else (width, 1)
            if self._other[1] < 5:
                return FrameFault(raw, f"weight field is {width} characters, the indicator sends "
                                       f"{self.width}: bytes lost?")
            log.warning("ascii scale protocol: weight field width changed from %d to %d characters",
                        self.width, width)
            self.width = width
        self._other = (0, 0)
        value = float(num["num"])
        if num["sign"] == b"-":
            value = -value
        if mode in _TARE:
            return self._reading(raw, t, weight=None, tare=value, unit=unit, stable=st == b"ST", extra=extra)
        return self._reading(
            raw, t, weight=value, unit=unit, stable=st == b"ST", net=mode in _NET, zero=value == 0, extra=extra
        )

    def encode(self, reading: Reading) -> bytes:
        width = self.width or 7
        prefix = f"{self.address:02d}," if self.address is not None else ""
        mode = "NT" if reading.net else "GS"
        unit = reading.unit or self.unit
        if reading.overload or reading.underload or reading.weight is None:
            sign = "-" if reading.underload else "+"
            return f"{prefix}OL,{mode},{sign}{'9' * width}{unit}\r\n".encode()
        st = "ST" if reading.stable else "US"
        sign = "-" if reading.weight < 0 else "+"
        return f"{prefix}{st},{mode},{sign}{format_weight(reading.weight, width, self.decimals)}{unit}\r\n".encode()


class ReversedAsciiProtocol(ScaleProtocol):
    """XK3190-style ``=`` frames with digits least significant first; see the module docstring."""

    default_name = "ascii-reversed"
    FRAME = 9

    def __init__(self, address: int | None = None, unit: str = "kg", name: str | None = None,
                 decimals: int = 0) -> None:
        super().__init__(address, unit, name)
        self.decimals = decimals

    def parse(self, data: bytes, t: float = 0.0) -> ParseResult:
        out: list[Reading | FrameFault] = []
        i = 0
        while True:
            j = data.find(b"=", i)
            if j < 0:
                if i < len(data):
                    out.append(FrameFault(data[i:], "bytes outside a '=' frame"))
                return out, b""
            if j > i:
                out.append(FrameFault(data[i:j], "bytes outside a '=' frame"))
            if len(data) - j < self.FRAME:
                nxt = data.find(b"=", j + 1)
                if nxt < 0:
                    return out, data[j:]
                out.append(FrameFault(data[j:nxt], "truncated '=' frame"))
                i = nxt
                continue
            raw = data[j : j + self.FRAME]
            item = self._decode(raw, t)
            if isinstance(item, FrameFault) and b"=" in raw[1:]:
                # A lost byte pulled the next frame's '=' in: report the stump, resync on that '='.
                k = raw.index(b"=", 1)
                out.append(FrameFault(raw[:k], "truncated '=' frame"))
                i = j + k
                continue
            out.append(item)
            i = j + self.FRAME

    def _decode(self, raw: bytes, t: float) -> Reading | FrameFault:
        body = raw[1:][::-1]  # most significant first: sign position, then the digits
        sign, digits = body[:1], body[1:]
        if sign not in (b"0", b"-") or not re.fullmatch(rb"\d+(?:\.\d+)?|\.\d+", digits):
            return FrameFault(raw, f"'=' frame {raw!r} is not a reversed weight")
        value = float(digits) * (-1 if sign == b"-" else 1)
        return self._reading(raw, t, weight=value, stable=True, zero=value == 0,
                             extra={"motion_flag": False})

    def encode(self, reading: Reading) -> bytes:
        w = reading.weight or 0.0
        digits = format_weight(w, self.FRAME - 2, self.decimals)
        sign = "-" if w < 0 else "0"
        return ("=" + (sign + digits)[::-1]).encode()
