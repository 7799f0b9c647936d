"""Mettler Toledo standard continuous output (also sent by many other brands as "Toledo" format).

Frame, 17 bytes plus an optional checksum byte::

    STX SWA SWB SWC w w w w w w t t t t t t CR [CHK]

- SWA bits 0-2: decimal point / dummy zeros (0: XXXX00, 1: XXXXX0, 2: XXXXXX, 3: XXXXX.X, ...,
  7: X.XXXXX); bits 3-4: increment size (01: x1, 10: x2, 11: x5); bit 5 always 1, bit 6 always 0.
- SWB bit 0 net, 1 negative, 2 out of range, 3 motion, 4 kg (else lb), 5 always 1, 6 not zeroed at
  power-up.
- SWC bits 0-2 unit override (0: lb/kg as SWB, 1: g, 2: t, 3: oz, 4: ozt, 5: dwt, 6: ton,
  7: custom), bit 3 print request, bit 4 expanded display (x10, not for trade), bit 5 always 1,
  bit 6 always 0.
- Weight and tare: six ASCII digits each, no sign or decimal point.
- CHK: two's complement of the low seven bits of the sum of all preceding bytes, STX and CR included.

Bit 7 of every byte may carry parity (7E1 wiring read as 8 bits), so it is ignored when decoding.
The constant bits and the digit fields give a check even without the checksum byte. With
``checksum=None`` (the default) the parser learns from the stream whether the indicator sends the
checksum byte and then holds every frame to that (see :meth:`MettlerContinuousProtocol._judge`).
"""

from __future__ import annotations

from drivers.scale.base import FrameFault, Reading
from drivers.scale.protocols.base import ParseResult, ScaleProtocol

STX = 0x02
CR = 0x0D
FRAME = 17
_UNITS = {1: "g", 2: "t", 3: "oz", 4: "ozt", 5: "dwt", 6: "ton", 7: "custom"}
_UNIT_CODES = {"g": 1, "t": 2, "oz": 3}
_INCREMENTS = {1: 1, 2: 2, 3: 5}


def checksum(frame: bytes) -> int:
    return -sum(frame) & 0x7F


def _digits(field: bytes) -> int | None:
    """Six digits; leading spaces allowed (some 'Toledo compatible' indicators blank leading zeros)."""
    text = field.lstrip(b" ")
    if not text:
        return 0
    if not text.isdigit():
        return None
    return int(text)


class MettlerContinuousProtocol(ScaleProtocol):
    default_name = "mettler-continuous"

    def __init__(
        self,
        address: int | None = None,
        unit: str = "kg",
        name: str | None = None,
        checksum: bool | None = None,
        decimals: int = 0,
        send_checksum: bool = True,
    ) -> None:
        super().__init__(address, unit, name)
        self.checksum = checksum
        self.decimals = decimals
        self.send_checksum = send_checksum if checksum is None else checksum
        self._mode: bool | None = checksum
        """Whether frames carry a checksum: fixed by the config, or learned from the stream."""
        self._no_checksum_streak = 0
        self._missing_streak = 0

    def _judge(self, body: bytes, after: int, next_after: int | None) -> tuple[int, bool] | str | None:
        """Size and checksum status of the frame ``body`` followed by byte ``after``, or why it is refused.

        None: one more byte is needed to decide.

        Auto mode must not take a frame on trust while it does not know whether the indicator sends
        checksums: a checksummed frame whose checksum byte happens to be STX, with a corrupted body,
        would otherwise pass as a frame without checksum. So it learns first: one frame whose byte
        after CR is its (non-STX) checksum proves checksums; two frames in a row followed directly
        by STX (whose checksum is not STX) prove there are none.
        """
        calc = checksum(body)
        if self._mode is True:
            if after == calc:
                self._missing_streak = 0
                return FRAME + 1, True
            if after == STX and self.checksum is None:
                self._missing_streak += 1
                if self._missing_streak >= 5:  # the indicator was reconfigured: learn again
                    self._mode, self._missing_streak, self._no_checksum_streak = None, 0, 0
                return "checksum missing (STX right after CR)"
            return f"checksum mismatch: got 0x{after:02x}, frame sums to 0x{calc:02x}"
        # learning
        if after == calc and after != STX:
            self._mode = True
            return FRAME + 1, True
        if after == STX and calc != STX:
            self._no_checksum_streak += 1
            if self._no_checksum_streak >= 2:
                self._mode = False
                return FRAME, False
            return "not yet known whether this indicator sends checksums; frame not trusted"
        self._no_checksum_streak = 0
        if after == STX:
            # Its checksum would be STX too. After a checksum comes the next STX; without one, the
            # STX is followed by a status byte, which never looks like STX.
            if next_after is None:
                return None
            if next_after == STX:
                self._mode = True
                return FRAME + 1, True
            return "not yet known whether this indicator sends checksums; frame not trusted"
        return f"checksum mismatch: got 0x{after:02x}, frame sums to 0x{calc:02x}"

    def parse(self, data: bytes, t: float = 0.0) -> ParseResult:
        out: list[Reading | FrameFault] = []
        m = bytes(b & 0x7F for b in data)
        i = 0
        n = len(data)
        while True:
            j = m.find(b"\x02", i)
            if j < 0:
                if i < n:
                    out.append(FrameFault(data[i:], "bytes outside a frame (no STX)"))
                return out, b""
            if j > i:
                out.append(FrameFault(data[i:j], "bytes outside a frame (no STX)"))
            end = j + FRAME
            if n < end:
                # Incomplete, unless a CR or another STX already shows it was cut short.
                stop = min((k for k in (m.find(b"\r", j + 1), m.find(b"\x02", j + 1)) if k >= 0), default=-1)
                if stop < 0:
                    return out, data[j:]
                cut = stop + 1 if m[stop] == CR else stop
                out.append(FrameFault(data[j:cut], "truncated frame (CR or STX before byte 17)"))
                i = cut
                continue
            if m[end - 1] != CR:
                nxt = m.find(b"\x02", j + 1)
                cut = nxt if 0 <= nxt < end else end
                out.append(FrameFault(data[j:cut], "no CR at byte 17: truncated or merged frame"))
                i = cut
                continue
            body = m[j:end]
            if self._mode is False:
                size, verified = FRAME, False
            else:
                if n == end:
                    return out, data[j:]  # the checksum byte (or next STX) is still on its way
                verdict = self._judge(body, m[end], m[end + 1] if n > end + 1 else None)
                if verdict is None:
                    return out, data[j:]
                if isinstance(verdict, str):
                    size = FRAME if m[end] == STX else FRAME + 1
                    out.append(FrameFault(data[j : j + size], verdict))
                    i = j + size
                    continue
                size, verified = verdict
            out.append(self._decode(body, data[j : j + size], t, verified))
            i = j + size

    def _decode(self, body: bytes, raw: bytes, t: float, verified: bool) -> Reading | FrameFault:
        swa, swb, swc = body[1], body[2], body[3]
        if swa & 0x60 != 0x20 or swb & 0x20 != 0x20 or swc & 0x60 != 0x20:
            return FrameFault(raw, f"status bytes {body[1:4]!r} break the fixed bits (bit 5 set, bit 6 clear)")
        weight_digits = _digits(body[4:10])
        tare_digits = _digits(body[10:16])
        if weight_digits is None or tare_digits is None:
            return FrameFault(raw, f"non-digit in weight/tare field {body[4:16]!r}")
        dp = swa & 0x07
        scale = 10.0 ** (2 - dp)
        increment = _INCREMENTS.get((swa >> 3) & 0x03)
        if increment is None:
            return FrameFault(raw, "status byte A has increment code 0 (undefined)")
        unit_code = swc & 0x07
        unit = _UNITS.get(unit_code, "kg" if swb & 0x10 else "lb")
        negative = bool(swb & 0x02)
        out_of_range = bool(swb & 0x04)
        motion = bool(swb & 0x08)
        not_zeroed = bool(swb & 0x40)
        decimals = max(0, dp - 2)
        weight: float | None = round(weight_digits * scale * (-1 if negative else 1), decimals)
        tare = round(tare_digits * scale, decimals)
        extra: dict[str, object] = {
            "increment": increment * scale,
            "checksum": verified,
            "print_request": bool(swc & 0x08),
            "expanded": bool(swc & 0x10),
        }
        if not_zeroed:
            extra["not_zeroed"] = True
            weight = None
        if out_of_range:
            weight = None
        return self._reading(
            raw, t,
            weight=weight, unit=unit, stable=not motion, net=bool(swb & 0x01), tare=tare,
            overload=out_of_range and not negative, underload=out_of_range and negative,
            zero=weight == 0, extra=extra,
        )

    def encode(self, reading: Reading) -> bytes:
        dp = 2 + self.decimals
        scale = 10.0 ** (2 - dp)
        swa = 0x20 | dp | (1 << 3)
        unit = reading.unit or self.unit
        swb = 0x20
        swb |= 0x01 if reading.net else 0
        swb |= 0x10 if unit != "lb" else 0
        weight = reading.weight if reading.weight is not None else 0.0
        if reading.underload or weight < 0:
            swb |= 0x02
        if reading.overload or reading.underload or reading.weight is None:
            swb |= 0x04
        swb |= 0x08 if not reading.stable else 0
        swc = 0x20 | _UNIT_CODES.get(unit, 0)
        w = min(round(abs(weight) / scale), 999999)
        tw = min(round(abs(reading.tare or 0.0) / scale), 999999)
        body = bytes([STX, swa, swb, swc]) + f"{w:06d}{tw:06d}".encode() + b"\r"
        return body + (bytes([checksum(body)]) if self.send_checksum else b"")
