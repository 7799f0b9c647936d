"""A local Prometheus endpoint: lanes, devices, fps, read rate, backlog, CPU and disk.

Off by default and loopback only: the post computer sits on the customs network, and figures about
lanes and cameras are nobody's business but the post's own node exporter or a technician with SSH.
Binding any other address is refused, not warned about.

The controller supplies figures through a ``provider`` callable returning a plain dict, so this
module never imports controller code and a broken provider cannot break a scrape: the process
figures (CPU, disk) are still served with ``customs_edge_provider_up 0``.

Provider format (short names; ``customs_edge_`` is prepended)::

    {
        "lane_fps": [({"lane": "1", "camera": "front"}, 4.9), ...],   # labelled samples
        "camera_up": [({"lane": "1", "camera": "front"}, True), ...], # bools become 1/0
        "backlog_events": 12,                                         # one unlabelled sample
        "events_total": [({"lane": "1"}, 1042)],                      # *_total is a counter
    }

Names in :data:`KNOWN` get their help text; others are exported as gauges with a generic one.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import os
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

from edge.errors import ConfigError

log = logging.getLogger(__name__)

PREFIX = "customs_edge_"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
DEFAULT_PORT = 9464

Provider = Callable[[], Mapping[str, Any]]

KNOWN: dict[str, str] = {
    "lane_up": "1 while the lane's loop runs",
    "lane_fps": "Frames a second the camera delivers",
    "lane_read_rate": "Fraction of frames read that held a plate, since start",
    "lane_read_ms_last": "Milliseconds the last plate reading took",
    "lane_frames_read_total": "Frames handed to the plate reader since start",
    "lane_frames_skipped_total": "Frames skipped because the reader was busy",
    "lane_plates_total": "Plate reads since start",
    "lane_events_total": "Vehicle events since start",
    "lane_weighings_total": "Stable weighings since start",
    "lane_alarms_total": "Alarms raised since start",
    "camera_up": "1 while the camera delivers frames",
    "camera_frames_total": "Frames the camera delivered since start",
    "camera_dropped_total": "Frames the camera dropped since start",
    "camera_reconnects_total": "Camera reconnects since start",
    "scale_up": "1 while the scale's transport is connected",
    "scale_readings_total": "Valid indicator frames since start",
    "scale_faults_total": "Garbled indicator frames since start",
    "backlog_events": "Events journaled but not yet acknowledged by HQ",
    "oldest_unacked_age_seconds": "Age of the oldest event HQ has not acknowledged",
    "unsaved_events": "Events waiting in memory because the journal could not be written",
    "broker_connected": "1 while connected to the MQTT broker",
    "uplink_refusals_total": "Events the broker refused (not authorised); they stay in the journal",
    "uplink_resends_total": "Events sent again because HQ's ack did not come",
    "uplink_reconnects_total": "Reconnections to the broker",
    "uptime_seconds": "Seconds since the controller started",
}


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _format_value(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 2**53:
        return str(int(value))
    return repr(float(value))


def _sanitize_name(name: str) -> str:
    out = "".join(c if c.isalnum() or c == "_" else "_" for c in name)
    return out if out and not out[0].isdigit() else "_" + out


def _samples(value: Any) -> list[tuple[Mapping[str, Any], float]]:
    """Normalise one provider value into labelled samples; None and unusable values are dropped."""
    if value is None:
        return []
    if isinstance(value, (bool, int, float)):
        return [({}, float(value))]
    out: list[tuple[Mapping[str, Any], float]] = []
    if isinstance(value, Iterable) and not isinstance(value, (str, bytes, Mapping)):
        for item in value:
            try:
                labels, v = item
            except (TypeError, ValueError):
                continue
            if v is None or not isinstance(v, (bool, int, float)) or not isinstance(labels, Mapping):
                continue
            out.append((labels, float(v)))
    return out


def render(families: Mapping[str, Any]) -> str:
    """Prometheus text exposition format 0.0.4 for ``{short_name: value}``."""
    lines: list[str] = []
    for short, value in families.items():
        samples = _samples(value)
        if not samples:
            continue
        name = PREFIX + _sanitize_name(short)
        kind = "counter" if short.endswith("_total") else "gauge"
        lines.append(f"# HELP {name} {KNOWN.get(short, 'Customs Post Edge figure ' + short)}")
        lines.append(f"# TYPE {name} {kind}")
        for labels, v in samples:
            if labels:
                body = ",".join(f'{_sanitize_name(str(k))}="{_escape_label(str(lv))}"' for k, lv in labels.items())
                lines.append(f"{name}{{{body}}} {_format_value(v)}")
            else:
                lines.append(f"{name} {_format_value(v)}")
    return "\n".join(lines) + "\n"


def _num(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value)
    return None


def figures_from_status(status: Mapping[str, Any]) -> dict[str, Any]:
    """Turn ``PostController.status()`` into provider figures; missing parts are simply left out.

    Usage: ``MetricsServer(port, lambda: figures_from_status(controller.status()), disk_paths=[data_dir])``.
    """
    out: dict[str, list[tuple[Mapping[str, Any], float]]] = {}

    def add(name: str, labels: Mapping[str, Any], value: Any) -> None:
        v = _num(value)
        if v is not None:
            out.setdefault(name, []).append((labels, v))

    for lane in status.get("lanes") or []:
        if not isinstance(lane, Mapping):
            continue
        lid = {"lane": str(lane.get("lane", "?"))}
        add("lane_up", lid, lane.get("alive"))
        stats = lane.get("stats") or {}
        for key in ("frames_read", "frames_skipped", "plates", "events", "weighings", "alarms"):
            add(f"lane_{key}_total", lid, stats.get(key))
        add("lane_read_ms_last", lid, stats.get("read_ms_last"))
        frames, plates = _num(stats.get("frames_read")), _num(stats.get("plates"))
        if frames and plates is not None:
            add("lane_read_rate", lid, plates / frames)
        for cam in lane.get("cameras") or []:
            if not isinstance(cam, Mapping):
                continue
            cl = {**lid, "camera": str(cam.get("name", "?"))}
            add("lane_fps", cl, cam.get("fps"))
            add("camera_up", cl, str(cam.get("state")) == "streaming")
            add("camera_frames_total", cl, cam.get("frames"))
            add("camera_dropped_total", cl, cam.get("dropped"))
            add("camera_reconnects_total", cl, cam.get("reconnects"))
        scale = lane.get("scale")
        if isinstance(scale, Mapping):
            add("scale_up", lid, scale.get("connected"))
            add("scale_readings_total", lid, scale.get("readings"))
            add("scale_faults_total", lid, scale.get("faults"))
    backlog = status.get("backlog") or {}
    add("backlog_events", {}, backlog.get("events"))
    add("oldest_unacked_age_seconds", {}, backlog.get("oldest_age_s"))
    add("unsaved_events", {}, backlog.get("unsaved"))
    uplink = status.get("uplink")
    if isinstance(uplink, Mapping):
        add("broker_connected", {}, uplink.get("connected"))
        add("uplink_refusals_total", {}, uplink.get("refusals"))
        add("uplink_resends_total", {}, uplink.get("resends"))
        add("uplink_reconnects_total", {}, uplink.get("reconnects"))
    add("uptime_seconds", {}, status.get("uptime_s"))
    return dict(out)


def process_figures(disk_paths: Sequence[Path] = ()) -> dict[str, Any]:
    """CPU and disk from the standard library alone (no psutil on the post)."""
    times = os.times()
    load1, load5, _ = os.getloadavg()
    out: dict[str, Any] = {
        "process_cpu_seconds_total": times.user + times.system,
        "cpu_count": os.cpu_count() or 1,
        "cpu_load1": load1,
        "cpu_load5": load5,
    }
    free: list[tuple[Mapping[str, Any], float]] = []
    total: list[tuple[Mapping[str, Any], float]] = []
    for p in disk_paths:
        try:
            usage = shutil.disk_usage(p)
        except OSError:
            continue
        free.append(({"path": str(p)}, usage.free))
        total.append(({"path": str(p)}, usage.total))
    out["disk_free_bytes"] = free
    out["disk_total_bytes"] = total
    return out


def check_loopback(host: str) -> None:
    """Refuse anything that is not a loopback address, including names resolving elsewhere."""
    try:
        addrs = {ipaddress.ip_address(host)}
    except ValueError:
        try:
            infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        except OSError as err:
            raise ConfigError("metrics", [("host", f"cannot resolve {host!r}: {err}")]) from err
        addrs = {ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos}
    bad = sorted(str(a) for a in addrs if not a.is_loopback)
    if bad or not addrs:
        raise ConfigError(
            "metrics",
            [("host", f"the metrics endpoint listens on loopback only; {host!r} is {', '.join(bad) or '?'}")],
        )


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            body = self.server.owner.scrape().encode("utf-8")
            self._send(200, CONTENT_TYPE, body)
        elif path == "/":
            self._send(200, "text/plain; charset=utf-8", b"customs-edge metrics: see /metrics\n")
        else:
            self._send(404, "text/plain; charset=utf-8", b"not found\n")

    def do_HEAD(self) -> None:
        self._send(200 if self.path.split("?", 1)[0] in ("/", "/metrics") else 404, CONTENT_TYPE, b"")

    def _send(self, code: int, ctype: str, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("metrics %s - " + format, self.address_string(), *args)


class _Server(HTTPServer):
    owner: MetricsServer


class _Server6(_Server):
    address_family = socket.AF_INET6


class MetricsServer:
    """``GET /metrics`` on ``host:port`` served from a daemon thread; ``port=0`` picks a free port."""

    def __init__(
        self,
        port: int,
        provider: Provider,
        host: str = "127.0.0.1",
        *,
        disk_paths: Sequence[str | os.PathLike[str]] = (),
    ) -> None:
        check_loopback(host)
        if not 0 <= port <= 65535:
            raise ConfigError("metrics", [("port", f"port {port} is outside 0..65535")])
        self.host = host
        self.port = port
        self.provider = provider
        self.disk_paths = [Path(p) for p in disk_paths]
        self.scrapes = 0
        self._started = time.time()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def scrape(self) -> str:
        """The page body; also usable without HTTP (``edgectl metrics`` could print it)."""
        with self._lock:
            self.scrapes += 1
            try:
                figures = dict(self.provider())
                provider_up = 1
            except Exception:
                log.exception("metrics provider failed; serving process figures only")
                figures = {}
                provider_up = 0
        figures["provider_up"] = provider_up
        figures["start_time_seconds"] = self._started
        figures.update(process_figures(self.disk_paths))
        return render(figures)

    def start(self) -> MetricsServer:
        if self._httpd is not None:
            return self
        cls: type[_Server] = _Server6 if ":" in self.host else _Server
        try:
            httpd = cls((self.host, self.port), _Handler)
        except OSError as err:
            raise ConfigError(
                "metrics", [("port", f"cannot listen on {self.host}:{self.port}: {err.strerror or err}")]
            ) from err
        httpd.owner = self
        self._httpd = httpd
        self.port = int(httpd.server_address[1])
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.1}, name="metrics-http", daemon=True
        )
        self._thread.start()
        log.info("metrics endpoint on http://%s:%d/metrics", self.host, self.port)
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def __enter__(self) -> MetricsServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
