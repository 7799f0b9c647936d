"""Scale diagnostics: which ports exist, which protocol an indicator speaks, and is its weight sound.

These read the port themselves with the lane's own protocol parsers instead of going through the
lane's driver: a diagnosis needs the raw bytes too (to say "these bytes are ascii, not Mettler"), and
it must give up after a fixed window instead of reconnecting forever.
"""

from __future__ import annotations

import glob
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import serial
import serial.tools.list_ports

from drivers.scale.base import FrameFault, Reading
from drivers.scale.protocols import available_protocols, get_protocol
from edge.config import PostConfig, ScaleSection
from edge.diag.result import CheckResult
from edge.errors import ConfigError, ScaleError

BAUD_RATES = (9600, 4800, 19200, 2400, 38400)
FRAMINGS = ((8, "N", 1), (7, "E", 1))
"""8N1 and 7E1 cover nearly every truck-scale indicator's serial output."""

_PARITY = {"N": serial.PARITY_NONE, "E": serial.PARITY_EVEN, "O": serial.PARITY_ODD,
           "M": serial.PARITY_MARK, "S": serial.PARITY_SPACE}


def list_serial_ports(cfg: PostConfig | None = None) -> list[dict[str, Any]]:
    """Serial ports with their USB ids and stable /dev/serial/by-id names; which lane uses each."""
    by_id: dict[str, str] = {}
    for link in glob.glob("/dev/serial/by-id/*"):
        by_id[os.path.realpath(link)] = link
    used: dict[str, str] = {}
    if cfg is not None:
        for lane in cfg.lanes:
            if lane.scale is not None and lane.scale.url.startswith("/"):
                used[os.path.realpath(lane.scale.url)] = lane.id
    out = []
    for p in sorted(serial.tools.list_ports.comports(), key=lambda p: p.device):
        real = os.path.realpath(p.device)
        out.append({
            "device": p.device,
            "by_id": by_id.get(real),
            "usb_id": f"{p.vid:04x}:{p.pid:04x}" if p.vid is not None and p.pid is not None else None,
            "serial_number": p.serial_number,
            "manufacturer": p.manufacturer,
            "description": p.description if p.description and p.description != "n/a" else None,
            "lane": used.get(real),
        })
    return out


def open_port(url: str, baudrate: int = 9600, bytesize: int = 8, parity: str = "N", stopbits: int = 1,
              timeout: float = 0.05) -> serial.SerialBase:
    kwargs: dict[str, Any] = {}
    if not url.startswith("rfc2217://"):
        kwargs["write_timeout"] = 1.0
    try:
        return serial.serial_for_url(url, baudrate=baudrate, bytesize=bytesize, parity=_PARITY[parity],
                                     stopbits=stopbits, timeout=timeout, **kwargs)
    except (serial.SerialException, OSError, ValueError) as err:
        raise ScaleError(f"cannot open {url}: {_why(err)}") from err


def _why(err: BaseException) -> str:
    text = str(err)
    if "No such file" in text or "Errno 2" in text:
        return f"{text} (no such device: unplugged, or the udev name is wrong; see `edgectl scale list`)"
    if "Permission denied" in text:
        return f"{text} (add the service user to the 'dialout' group)"
    if "Connection refused" in text:
        return f"{text} (nothing listens there: device server off, or wrong host/port)"
    return text


@dataclass
class Sample:
    """What came off the wire in one window: parsed readings, broken frames and the raw bytes."""

    readings: list[Reading] = field(default_factory=list)
    faults: list[FrameFault] = field(default_factory=list)
    raw: bytes = b""
    seconds: float = 0.0

    @property
    def valid(self) -> list[Reading]:
        return [r for r in self.readings if r.valid]


def read_window(
    port: serial.SerialBase,
    protocol: str,
    seconds: float,
    *,
    address: int | None = None,
    unit: str = "kg",
    on_item: Callable[[Reading | FrameFault], None] | None = None,
    stop: Callable[[], bool] | None = None,
    poll_interval_s: float = 0.1,
) -> Sample:
    """Read ``port`` for ``seconds`` with ``protocol`` (asking for readings when it is polled)."""
    proto = get_protocol(protocol, address=address, unit=unit)
    out = Sample()
    buf = b""
    raw = bytearray()
    with_reset = getattr(port, "reset_input_buffer", None)
    if with_reset is not None:
        try:
            with_reset()
        except (serial.SerialException, OSError):
            pass
    try:
        for req in proto.startup_requests():
            port.write(req)
        poll = proto.poll_request()
        t0 = time.monotonic()
        next_poll = 0.0
        while (now := time.monotonic()) - t0 < seconds and not (stop is not None and stop()):
            if poll is not None and now >= next_poll:
                port.write(poll)
                next_poll = now + poll_interval_s
            chunk = port.read(max(1, port.in_waiting))
            if not chunk:
                continue
            if len(raw) < 65536:
                raw += chunk
            items, buf = proto.parse(buf + chunk, time.time())
            for item in items:
                (out.faults if isinstance(item, FrameFault) else out.readings).append(item)  # type: ignore[arg-type]
                if on_item is not None:
                    on_item(item)
    except (serial.SerialException, OSError) as err:
        raise ScaleError(f"{getattr(port, 'port', '') or 'port'}: link failed while reading: {err}") from err
    out.raw = bytes(raw)
    out.seconds = seconds
    return out


def _score(protocol: str, data: bytes) -> tuple[int, int]:
    items, _ = get_protocol(protocol).parse(data, 0.0)
    good = sum(1 for i in items if isinstance(i, Reading) and i.weight is not None)
    return good, len(items) - good


def parses_as(data: bytes, exclude: str | None = None) -> list[str]:
    """The continuous protocols that decode ``data`` cleanly (for "it speaks X, not Y" hints)."""
    found = []
    for name in available_protocols():
        if name == exclude or get_protocol(name).polled:
            continue
        good, bad = _score(name, data)
        if good >= 2 and bad <= good // 4:
            found.append(name)
    return found


def _is_serial_device(url: str) -> bool:
    """Baud rate and framing only matter on a real UART (not a device server's socket or a pty)."""
    if "://" in url:
        return False
    try:
        real = os.path.realpath(url)
        return not real.startswith("/dev/pts/")
    except OSError:
        return True


def detect(url: str, *, protocols: list[str] | None = None, bauds: tuple[int, ...] = BAUD_RATES,
           listen_s: float = 1.0, all_matches: bool = False,
           progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Try the protocols at each baud rate and framing; say which one the indicator speaks.

    Continuous protocols are judged from one passive listen per setting; polled ones (MT-SICS) are
    asked only when the line is silent, since asking a talking indicator garbles its output.
    """
    names = protocols or available_protocols()
    unknown = [n for n in names if n not in available_protocols()]
    if unknown:
        raise ConfigError("scale", [("protocol", f"unknown protocol(s) {', '.join(unknown)}; "
                                                 f"available: {', '.join(available_protocols())}")])
    uart = _is_serial_device(url)
    settings = [(b, *f) for b in bauds for f in FRAMINGS] if uart else [(9600, 8, "N", 1)]
    tried: list[dict[str, Any]] = []
    matches: list[dict[str, Any]] = []
    for baud, bytesize, parity, stopbits in settings:
        label = f"{baud} {bytesize}{parity}{stopbits}" if uart else "(baud rate not applicable)"
        if progress is not None:
            progress(f"listening at {label}")
        port = open_port(url, baud, bytesize, parity, stopbits)
        try:
            data = _listen_raw(port, listen_s)
            entry: dict[str, Any] = {"baudrate": baud, "framing": f"{bytesize}{parity}{stopbits}",
                                     "bytes": len(data), "parsed": {}}
            for name in names:
                proto = get_protocol(name)
                if proto.polled:
                    if data:
                        continue  # a talking line is not a polled indicator waiting to be asked
                    s = read_window(port, name, min(listen_s, 0.8))
                    good, bad = len(s.valid), len(s.faults)
                else:
                    good, bad = _score(name, data)
                entry["parsed"][name] = {"readings": good, "faults": bad}
                if good >= 2 and bad <= good // 4:
                    matches.append({"protocol": name, "baudrate": baud, "bytesize": bytesize, "parity": parity,
                                    "stopbits": stopbits, "readings": good, "faults": bad})
        finally:
            port.close()
        tried.append(entry)
        if matches and not all_matches:
            break
    matches.sort(key=lambda m: (-m["readings"], m["faults"]))
    best = matches[0] if matches else None
    return {"port": url, "baud_applies": uart, "detected": best, "matches": matches, "tried": tried}


def _listen_raw(port: serial.SerialBase, seconds: float) -> bytes:
    data = bytearray()
    t0 = time.monotonic()
    try:
        port.reset_input_buffer()
        while time.monotonic() - t0 < seconds:
            data += port.read(max(1, port.in_waiting))
    except (serial.SerialException, OSError) as err:
        raise ScaleError(f"{port.port}: link failed while listening: {err}") from err
    return bytes(data)


def flags(r: Reading) -> str:
    """The indicator's status as short flags: ST/US stable or in motion, NET, ZERO, OL, UL."""
    out = ["ST" if r.stable else "US"]
    if r.net:
        out.append("NET")
    if r.zero:
        out.append("ZERO")
    if r.overload:
        out.append("OL")
    if r.underload:
        out.append("UL")
    return ",".join(out)


def reading_dict(r: Reading) -> dict[str, Any]:
    return {"t": round(r.timestamp, 3), "weight": r.weight, "unit": r.unit, "stable": r.stable, "net": r.net,
            "tare": r.tare, "zero": r.zero, "overload": r.overload, "underload": r.underload,
            "flags": flags(r), "raw": r.raw.decode("latin-1")}


def find_scale(cfg: PostConfig, lane: str | None) -> tuple[str, ScaleSection]:
    """The scale of ``lane`` (or the only one configured)."""
    scales = [(ln.id, ln.scale) for ln in cfg.lanes if ln.scale is not None]
    if lane is not None:
        scales = [s for s in scales if s[0] == lane]
        if not scales:
            raise ConfigError("scale", [("", f"lane {lane!r} has no scale in the config")])
    if len(scales) != 1:
        names = ", ".join(s[0] for s in scales) or "none"
        raise ConfigError("scale", [("", f"say which lane's scale with --lane (lanes with a scale: {names})")])
    return scales[0]


def sample_scale(cfg: ScaleSection, seconds: float, **kw: Any) -> Sample:
    port = open_port(cfg.url, cfg.baudrate, cfg.bytesize, cfg.parity, cfg.stopbits)
    try:
        return read_window(port, cfg.protocol, seconds, address=cfg.address, unit=cfg.unit, **kw)
    finally:
        port.close()


def wire_problem(cfg: ScaleSection, s: Sample) -> tuple[str, str] | None:
    """(reason, fix) when the window shows a dead or misconfigured line; None when readings came."""
    if s.valid:
        return None
    if not s.raw:
        if s.readings:
            return ("the indicator answers but never with a weight (overload/underload only)",
                    "unload the platform; check the load cells' junction box")
        return (f"silent: no bytes from {cfg.url} in {s.seconds:g} s",
                "check the cable and that the indicator's serial output is switched on (continuous mode)")
    others = parses_as(s.raw, exclude=cfg.protocol)
    speaks = f"; the bytes parse as {', '.join(others)}" if others else ""
    return (f"received {len(s.raw)} bytes but no valid {cfg.protocol} frame ({len(s.faults)} bad frame(s))"
            f"{speaks}",
            (f"set protocol = \"{others[0]}\" in the lane's [scale]" if others else
             f"run `edgectl scale detect {cfg.url}` to find the protocol, baud rate and parity"))


def scale_check(cfg: ScaleSection, seconds: float = 30.0,
                progress: Callable[[float], None] | None = None) -> dict[str, Any]:
    """Zero, stability and drift over ``seconds`` of readings (the platform should be empty).

    Raises :class:`ScaleError` when the port cannot be opened.
    """
    t0 = time.monotonic()

    def tick(_item: Reading | FrameFault) -> None:
        if progress is not None:
            progress(min(1.0, (time.monotonic() - t0) / seconds))

    s = sample_scale(cfg, seconds, on_item=tick)
    if progress is not None:
        progress(1.0)
    valid = s.valid
    out: dict[str, Any] = {
        "url": cfg.url, "protocol": cfg.protocol, "seconds": seconds, "unit": cfg.unit,
        "readings": len(s.readings), "valid": len(valid), "faults": len(s.faults), "bytes": len(s.raw),
        "overload": sum(1 for r in s.readings if r.overload), "underload": sum(1 for r in s.readings if r.underload),
        "zero": None, "stable_fraction": None, "spread": None, "drift_per_min": None, "findings": [],
    }
    findings: list[dict[str, Any]] = out["findings"]
    problem = wire_problem(cfg, s)
    if problem is not None:
        findings.append({"status": "fail", "reason": problem[0], "fix": problem[1]})
        out["status"] = "fail"
        return out
    weights = [float(r.weight) for r in valid if r.weight is not None]
    times = [r.timestamp for r in valid]
    out["stable_fraction"] = round(sum(1 for r in valid if r.stable) / len(valid), 3)
    out["spread"] = round(max(weights) - min(weights), 3)
    mean = sum(weights) / len(weights)
    if len(weights) >= 3 and times[-1] > times[0] and max(weights) < cfg.min_vehicle_weight:
        tm = sum(times) / len(times)
        var = sum((t - tm) ** 2 for t in times)
        slope = sum((t - tm) * (w - mean) for t, w in zip(times, weights, strict=True)) / var if var else 0.0
        out["drift_per_min"] = round(slope * 60.0, 3)
    if s.faults and len(s.faults) > len(s.readings) // 10:
        findings.append({"status": "warn", "reason": f"{len(s.faults)} bad frame(s) among {len(s.readings)} readings",
                         "fix": "check the cable's shield and length, and baud rate/parity"})
    if max(weights) >= cfg.min_vehicle_weight:
        findings.append({"status": "warn",
                         "reason": f"a load is on the platform (up to {max(weights):g} {cfg.unit}): zero not judged",
                         "fix": "run the check with the platform empty"})
    else:
        out["zero"] = round(mean, 3)
        if abs(mean) > cfg.zero_tolerance:
            findings.append({"status": "fail",
                             "reason": f"zero is off by {mean:+.0f} {cfg.unit} (tolerance {cfg.zero_tolerance:g})",
                             "fix": "zero the indicator with the platform empty; clear debris under the platform"})
        if out["spread"] > cfg.stable_tolerance:
            findings.append({"status": "warn",
                             "reason": f"empty platform wanders over {out['spread']:g} {cfg.unit} "
                                       f"(stable tolerance {cfg.stable_tolerance:g})",
                             "fix": "look for wind load, a rubbing platform or a damp junction box"})
        drift = out["drift_per_min"]
        if drift is not None and abs(drift) * 10 > cfg.zero_tolerance:
            findings.append({"status": "warn", "reason": f"zero drifts {drift:+.1f} {cfg.unit}/min",
                             "fix": "let the indicator warm up; check load cell cables and the junction box"})
    if out["overload"]:
        findings.append({"status": "warn", "reason": f"{out['overload']} overload reading(s)",
                         "fix": "check max_capacity and the indicator's calibration"})
    if not findings:
        findings.append({"status": "pass", "reason": "zero, stability and drift within tolerance", "fix": ""})
    order = {"fail": 0, "warn": 1, "pass": 2}
    findings.sort(key=lambda f: order[f["status"]])
    out["status"] = findings[0]["status"]
    return out


def scale_doctor_check(name: str, cfg: ScaleSection, *, seconds: float = 2.0,
                       live: dict[str, Any] | None = None) -> CheckResult:
    """Doctor's check of a lane's scale: live health while the controller runs, else a short read."""
    if live is not None:
        if live.get("connected"):
            return CheckResult(name, "pass", f"connected (controller): {live.get('readings')} readings, "
                                             f"{live.get('faults')} bad frames", details={"live": live})
        return CheckResult(name, "fail", f"disconnected (controller): {live.get('last_error') or 'no data'}",
                           f"stop the service and run `edgectl scale detect {cfg.url}`", details={"live": live})
    try:
        s = sample_scale(cfg, seconds)
    except ScaleError as err:
        fix = ("check the device server's address and port, its power and network" if "://" in cfg.url else
               "check the port name (`edgectl scale list`), the cable and the indicator's power")
        return CheckResult(name, "fail", str(err), fix)
    details = {"url": cfg.url, "protocol": cfg.protocol, "readings": len(s.readings), "valid": len(s.valid),
               "faults": len(s.faults), "bytes": len(s.raw)}
    problem = wire_problem(cfg, s)
    if problem is not None:
        return CheckResult(name, "fail", problem[0], problem[1], details=details)
    last = s.valid[-1]
    details["last"] = reading_dict(last)
    text = f"{cfg.protocol}: {len(s.valid)} readings in {seconds:g} s, now {last.weight:g} {last.unit} {flags(last)}"
    if len(s.faults) > len(s.readings) // 10:
        return CheckResult(name, "warn", f"{text}; {len(s.faults)} bad frames",
                           "check the cable's shield and length, baud rate and parity", details=details)
    return CheckResult(name, "pass", text, details=details)
