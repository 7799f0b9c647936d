"""``edgectl``: the technician's tool to commission and fix a lane on site.

In the style of ``python -m serial.tools.list_ports``: data on stdout, progress and chatter on
stderr, ``--json`` for machines. Exit codes: 0 healthy, 1 a check failed, 2 could not run.

The checks themselves live in :mod:`edge.diag` as functions returning data, so HQ can ask a post
for the same diagnostics over MQTT and get the same JSON; this module only parses arguments, prints
and picks the exit code.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from edge import __version__
from edge.errors import ConfigError, EdgeError

EXIT_OK, EXIT_FAILED, EXIT_CANNOT_RUN = 0, 1, 2
DEFAULT_CONFIG = Path("/etc/customs-edge/post.toml")
CONFIG_ENV = "CUSTOMS_EDGE_CONFIG"


class CannotRun(Exception):
    """The command could not do its work at all (bad arguments, unreadable config): exit 2."""


def default_config() -> Path:
    return Path(os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG)


def _emit(data: Any, as_json: bool, human: str) -> None:
    if as_json:
        json.dump(data, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(human if human.endswith("\n") else human + "\n")
    sys.stdout.flush()


def _line(data: dict[str, Any]) -> None:
    """One JSON object per line, for the streaming commands (watch, tail)."""
    sys.stdout.write(json.dumps(data, default=str, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def _say(msg: str) -> None:
    sys.stderr.write(msg + "\n")
    sys.stderr.flush()


def _load(args: argparse.Namespace) -> Any:
    from edge.config import load_config

    path = Path(args.config)
    try:
        return load_config(path)
    except ConfigError as err:
        hint = "" if path.exists() else f" (give --config or set ${CONFIG_ENV})"
        raise CannotRun(f"{err}{hint}") from err


def _clock(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%H:%M:%S.%f")[:-3]


# ---------------------------------------------------------------------------------------- config


def cmd_config_validate(args: argparse.Namespace) -> int:
    from edge.config import load_config

    try:
        cfg = load_config(args.file)
    except ConfigError as err:
        problems = [{"path": p, "message": m} for p, m in err.problems]
        _emit(
            {"file": str(args.file), "valid": False, "problems": problems},
            args.json,
            "\n".join(f"{args.file}: {p['path'] or '(file)'}: {p['message']}" for p in problems),
        )
        return EXIT_FAILED
    summary: dict[str, Any] = {
        "file": str(args.file),
        "valid": True,
        "post_id": cfg.post.id,
        "lanes": [
            {"id": lane.id, "cameras": [c.name for c in lane.cameras],
             "scale": lane.scale.protocol if lane.scale else None}
            for lane in cfg.lanes
        ],
    }
    lanes = ", ".join(f"{lane['id']} ({len(lane['cameras'])} camera(s), scale: {lane['scale'] or 'none'})"
                      for lane in summary["lanes"])
    _emit(summary, args.json, f"{args.file}: valid; post {cfg.post.id}; lanes: {lanes}")
    return EXIT_OK


# ---------------------------------------------------------------------------------------- doctor


def cmd_doctor(args: argparse.Namespace) -> int:
    from edge.config import load_config
    from edge.diag import CheckResult, render_table, results_of, run_diagnostics

    path = Path(args.config)
    if not path.exists():
        raise CannotRun(f"no config at {path} (give --config or set ${CONFIG_ENV})")
    if not os.access(path, os.R_OK):
        raise CannotRun(f"cannot read {path}: permission denied (run as root or the service user)")
    try:
        cfg = load_config(path)
    except ConfigError as err:
        # An invalid config is the first failed check, not a reason to print nothing useful.
        first = err.problems[0] if err.problems else ("", str(err))
        res = CheckResult("config", "fail", f"{path}: {first[0] or '(file)'}: {first[1]}"
                          + (f" (+{len(err.problems) - 1} more)" if len(err.problems) > 1 else ""),
                          f"edgectl config validate {path}",
                          details={"problems": [{"path": p, "message": m} for p, m in err.problems]})
        rep = {"schema": "customs.diag_report/1", "post_id": None, "started_at": None, "duration_s": 0.0,
               "status": "fail", "ok": False, "summary": {"pass": 0, "warn": 0, "fail": 1, "skip": 0},
               "checks": [res.as_dict()]}
        _emit(rep, args.json, render_table([res]))
        return EXIT_FAILED

    def done(r: CheckResult) -> None:
        _say(f"  {r.status:<4} {r.name} ({r.duration_s:.1f} s)")

    try:
        rep = run_diagnostics(cfg, args.check or None, config_source=str(path), device_seconds=args.seconds,
                              on_done=None if args.quiet else done)
    except ConfigError as err:
        raise CannotRun(str(err)) from err
    _emit(rep, args.json, render_table(results_of(rep)))
    return EXIT_FAILED if rep["status"] == "fail" else EXIT_OK


# ---------------------------------------------------------------------------------------- camera


def _looks_like_url(target: str) -> bool:
    return "://" in target or bool(re.fullmatch(r"\d+|/dev/video\d+", target))


def cmd_camera_probe(args: argparse.Namespace) -> int:
    from edge.diag.camera import probe_camera
    from edge.diag.result import render_kv
    from edge.errors import CameraError

    target: str = args.target
    name, url, expect, roi, stall = "probe", target, None, None, None
    cfg = None
    if not _looks_like_url(target):
        from edge.diag.camera import find_camera

        cfg = _load(args)
        try:
            name, cam = find_camera(cfg, target)
        except ConfigError as err:
            raise CannotRun(str(err)) from err
        url, expect, roi = cam.url, cam.read_fps, cam.roi
        _guard_device(args, url, cfg)
        stall = min(cam.stall_timeout_s, max(1.0, args.seconds / 2))
    else:
        from drivers.camera import _classify

        try:
            _classify(url)
        except CameraError as err:
            raise CannotRun(str(err)) from err
    reader = None
    if not args.no_read:
        _say("loading the plate reader...")
        from edge.config import RecognitionSection
        from edge.recognition.reader import PlateReader

        try:
            reader = PlateReader(cfg.recognition if cfg is not None else RecognitionSection.model_validate({}))
        except EdgeError as err:
            _say(f"edgectl: no plate reading: {err}")
    snapshot = None if args.no_snapshot else (
        args.snapshot or Path(f"snapshot-{re.sub(r'[^A-Za-z0-9_-]+', '-', name)}.jpg"))
    _say(f"probing {name} for {args.seconds:g} s...")
    try:
        p = probe_camera(url, name=name, seconds=args.seconds, snapshot=snapshot, open_timeout_s=args.open_timeout,
                         stall_after_s=stall, expect_fps=expect, reader=reader, roi=roi)
    except CameraError as err:
        from edge.diag.camera import no_picture_fix

        fail = {"name": name, "status": "fail", "state": "failed", "reason": str(err), "fix": no_picture_fix(url)}
        _emit(fail, args.json, f"FAIL  {name}: no picture: {err}\n      fix: {fail['fix']}")
        return EXIT_FAILED
    plate = p["plate"]
    rows: list[tuple[str, Any]] = [
        ("camera", name), ("url", p["url"]), ("state", p["state"]),
        ("resolution", f"{p['width']}x{p['height']}"), ("codec", p["codec"] or "-"), ("fps", f"{p['fps']:.1f}"),
        ("nominal fps", p["nominal_fps"]), ("frames", p["frames"]), ("dropped", p["dropped"]),
        ("sharpness", p["sharpness"]), ("exposure", f"mean {p['exposure_mean']:.0f}/255, dark "
                                                    f"{p['clipped_dark']:.1%}, bright {p['clipped_bright']:.1%}"),
        ("plate", "not read (--no-read)" if reader is None else
         (f"{plate['display'] or plate['text']} ({plate['country'] or '?'}), {plate['width_px']}x"
          f"{plate['height_px']} px" if plate else "none seen")),
        ("snapshot", p["snapshot"]),
    ]
    lines = render_kv(rows)
    for f in p["findings"]:
        lines += f"{f['status'].upper():<5} {f['reason']}\n"
        if f["fix"]:
            lines += f"      fix: {f['fix']}\n"
    _emit(p, args.json, lines)
    return EXIT_FAILED if p["status"] == "fail" else EXIT_OK


def cmd_camera_list(args: argparse.Namespace) -> int:
    from edge.diag.camera import list_usb_cameras
    from edge.diag.result import render_columns

    cams = list_usb_cameras()
    if not cams and not args.json:
        _say("no /dev/video* devices (is the camera plugged in? `lsusb`, `dmesg | tail`)")
    _emit({"cameras": cams}, args.json,
          render_columns(["DEVICE", "INDEX", "ACCESS", "NAME"],
                         [[c["device"], c["index"], "ok" if c["accessible"] else "denied", c["name"]] for c in cams])
          if cams else "")
    return EXIT_OK


# ---------------------------------------------------------------------------------------- scale


def _maybe_config(args: argparse.Namespace) -> Any:
    """The config when it can be read; None when the command can do without it."""
    try:
        return _load(args)
    except CannotRun:
        return None


def _guard_device(args: argparse.Namespace, url: str, cfg: Any = None) -> None:
    """Refuse to open a scale port or USB camera that the running controller is reading.

    Two readers of one serial line steal each other's bytes, many device servers take one client,
    and V4L2 gives a camera to one process: the lane would lose readings while a technician looks.
    """
    if getattr(args, "force", False):
        return
    from edge.diag.stores import read_status

    cfg = cfg if cfg is not None else _maybe_config(args)
    if cfg is None:
        return
    used = {lane.scale.url for lane in cfg.lanes if lane.scale is not None}
    used |= {c.url for lane in cfg.lanes for c in lane.cameras
             if c.url.startswith(("usb:", "/dev/video")) or c.url.isdigit()}
    if url in used and read_status(cfg)["running"]:
        raise CannotRun(f"the running controller is reading {url}; a second reader would take data from the "
                        "lane. Use `edgectl status`, stop the service (systemctl stop customs-edge), or add --force")


def cmd_scale_list(args: argparse.Namespace) -> int:
    from edge.diag.result import render_columns
    from edge.diag.scale import list_serial_ports

    ports = list_serial_ports(_maybe_config(args))
    if not ports and not args.json:
        _say("no serial ports found (USB adapter plugged in? `dmesg | tail`)")
    _emit({"ports": ports}, args.json,
          render_columns(["DEVICE", "USB ID", "SERIAL", "LANE", "DESCRIPTION"],
                         [[p["device"], p["usb_id"], p["serial_number"], p["lane"],
                           " ".join(x for x in (p["manufacturer"], p["description"], p["by_id"]) if x) or "-"]
                          for p in ports]) if ports else "")
    return EXIT_OK


def cmd_scale_detect(args: argparse.Namespace) -> int:
    from edge.diag.result import render_columns
    from edge.diag.scale import detect
    from edge.errors import ScaleError

    _guard_device(args, args.port)
    try:
        r = detect(args.port, protocols=args.protocol or None, listen_s=args.listen, all_matches=args.all,
                   progress=None if args.json else _say)
    except ConfigError as err:
        raise CannotRun(str(err)) from err
    except ScaleError as err:
        _emit({"port": args.port, "detected": None, "matches": [], "tried": [], "error": str(err)}, args.json,
              f"FAIL  {err}")
        return EXIT_FAILED
    best = r["detected"]
    if best is None:
        heard = sum(t["bytes"] for t in r["tried"])
        why = (f"{heard} bytes heard but no supported protocol parses them" if heard else
               "the line stayed silent at every setting (cable, indicator's serial output switched off?)")
        _emit(r, args.json, f"FAIL  no protocol detected on {args.port}: {why}")
        return EXIT_FAILED
    setting = (f"baudrate = {best['baudrate']}, bytesize = {best['bytesize']}, parity = \"{best['parity']}\", "
               f"stopbits = {best['stopbits']}" if r["baud_applies"] else "(baud rate does not apply to this port)")
    human = (f"{args.port} speaks {best['protocol']} ({best['readings']} readings, {best['faults']} bad frames)\n"
             f"[scale] protocol = \"{best['protocol']}\"; {setting}\n")
    if len(r["matches"]) > 1:
        human += "\nalso parses as:\n" + render_columns(
            ["PROTOCOL", "BAUD", "FRAMING", "READINGS", "FAULTS"],
            [[m["protocol"], m["baudrate"], f"{m['bytesize']}{m['parity']}{m['stopbits']}", m["readings"],
              m["faults"]] for m in r["matches"][1:]])
    _emit(r, args.json, human)
    return EXIT_OK


def _scale_target(args: argparse.Namespace) -> tuple[str, Any]:
    """(label, ScaleSection) from --url/--protocol, or from the config's lane."""
    from edge.config import ScaleSection
    from edge.diag.scale import find_scale

    if getattr(args, "url", None):
        try:
            sc = ScaleSection.model_validate({"url": args.url, "protocol": args.protocol or "ascii",
                                              "baudrate": args.baudrate})
        except ValueError as err:
            raise CannotRun(f"bad --url/--protocol: {err}") from err
        _guard_device(args, sc.url)
        return args.url, sc
    cfg = _load(args)
    try:
        lane, sc = find_scale(cfg, args.lane)
    except ConfigError as err:
        raise CannotRun(str(err)) from err
    if args.protocol:
        sc = sc.model_copy(update={"protocol": args.protocol})
    _guard_device(args, sc.url, cfg)
    return f"scale:{lane}", sc


def cmd_scale_watch(args: argparse.Namespace) -> int:
    from drivers.scale.base import FrameFault, Reading
    from drivers.scale.protocols import registered
    from edge.diag.scale import flags, open_port, read_window, reading_dict, wire_problem
    from edge.errors import ScaleError

    label, sc = _scale_target(args)
    if registered(sc.protocol) is None:
        raise CannotRun(f"unknown scale protocol {sc.protocol!r}")
    count = 0
    faults: list[FrameFault] = []

    def flush_faults() -> None:
        # Garbage arrives a byte at a time: one line per burst, not one per byte.
        if not faults:
            return
        first, n = faults[0], len(faults)
        faults.clear()
        if args.json:
            _line({"type": "faults", "t": round(time.time(), 3), "count": n, "reason": first.reason,
                   "raw": first.raw[:40].decode("latin-1")})
        else:
            print(f"{_clock(time.time())}  {n} bad frame(s): {first.reason} {first.raw[:40]!r}", flush=True)

    burst_at = [0.0]

    def show(item: Reading | FrameFault) -> None:
        nonlocal count
        if isinstance(item, FrameFault):
            if not faults:
                burst_at[0] = time.monotonic()
            faults.append(item)
            if time.monotonic() - burst_at[0] >= 1.0:
                flush_faults()
            return
        flush_faults()
        count += 1
        if args.json:
            _line({"type": "reading", **reading_dict(item)})
        else:
            w = "------" if item.weight is None else f"{item.weight:>10g}"
            print(f"{_clock(item.timestamp)}  {w} {item.unit:<2}  {flags(item)}", flush=True)

    _say(f"watching {label} ({sc.url}, {sc.protocol}); Ctrl-C to stop")
    try:
        port = open_port(sc.url, sc.baudrate, sc.bytesize, sc.parity, sc.stopbits)
    except ScaleError as err:
        _say(f"edgectl: {err}")
        if args.json:
            _line({"type": "error", "reason": str(err)})
        return EXIT_FAILED
    try:
        s = read_window(port, sc.protocol, args.seconds or 1e9, address=sc.address, unit=sc.unit, on_item=show,
                        stop=lambda: bool(args.count) and count >= args.count)
    except ScaleError as err:
        _say(f"edgectl: {err}")
        return EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_OK
    finally:
        port.close()
        flush_faults()
    problem = wire_problem(sc, s)
    if problem is not None:
        _say(f"edgectl: {problem[0]}\n  fix: {problem[1]}")
        if args.json:
            _line({"type": "error", "reason": problem[0], "fix": problem[1]})
        return EXIT_FAILED
    return EXIT_OK


def cmd_scale_check(args: argparse.Namespace) -> int:
    from edge.diag.result import render_kv
    from edge.diag.scale import scale_check
    from edge.errors import ScaleError

    label, sc = _scale_target(args)
    tty = sys.stderr.isatty()
    last = [-1]

    def bar(frac: float) -> None:
        step = int(frac * 40)
        if step == last[0]:
            return
        last[0] = step
        text = f"\r[{'#' * step}{'.' * (40 - step)}] {frac * args.seconds:4.0f}/{args.seconds:g} s"
        if tty:
            sys.stderr.write(text)
        elif step in (0, 10, 20, 30, 40):
            sys.stderr.write(text.lstrip("\r") + "\n")
        sys.stderr.flush()

    _say(f"checking {label} ({sc.url}, {sc.protocol}) for {args.seconds:g} s; keep the platform empty")
    try:
        r = scale_check(sc, args.seconds, progress=bar)
    except ScaleError as err:
        if tty:
            sys.stderr.write("\n")
        _emit({"url": sc.url, "protocol": sc.protocol, "status": "fail",
               "findings": [{"status": "fail", "reason": str(err), "fix": "check the port name, cable and power"}]},
              args.json, f"FAIL  {err}\n      fix: check the port name (`edgectl scale list`), cable and power")
        return EXIT_FAILED
    if tty:
        sys.stderr.write("\n")
    u = r["unit"]
    rows: list[tuple[str, Any]] = [
        ("scale", label), ("url", r["url"]), ("protocol", r["protocol"]),
        ("readings", f"{r['valid']} valid, {r['faults']} bad frames, {r['overload']} overload"),
        ("zero", None if r["zero"] is None else f"{r['zero']:+.1f} {u}"),
        ("stable", None if r["stable_fraction"] is None else f"{r['stable_fraction']:.0%} of readings"),
        ("spread", None if r["spread"] is None else f"{r['spread']:g} {u}"),
        ("drift", None if r["drift_per_min"] is None else f"{r['drift_per_min']:+.2f} {u}/min"),
    ]
    text = render_kv(rows)
    for f in r["findings"]:
        text += f"{f['status'].upper():<5} {f['reason']}\n"
        if f["fix"]:
            text += f"      fix: {f['fix']}\n"
    _emit(r, args.json, text)
    return EXIT_FAILED if r["status"] == "fail" else EXIT_OK


# ---------------------------------------------------------------------------------------- models, mqtt


def cmd_model_check(args: argparse.Namespace) -> int:
    from edge.config import RecognitionSection
    from edge.diag.models import model_check
    from edge.diag.result import render_columns

    cfg = _maybe_config(args)
    rec = cfg.recognition if cfg is not None else RecognitionSection.model_validate(
        {"models_dir": str(args.models_dir)} if args.models_dir else {})
    if args.models_dir and cfg is not None:
        rec = rec.model_copy(update={"models_dir": args.models_dir})
    _say("verifying and loading models...")
    r = model_check(rec)
    text = render_columns(
        ["MODEL", "STATUS", "SHA256", "LOAD MS", "LATENCY MS", "NOTE"],
        [[m["name"], m["status"].upper(), m["sha256"], m["load_ms"], m["latency_ms"], m["reason"]]
         for m in r["models"]]) if r["models"] else ""
    st = r["self_test"]
    if st is not None:
        text += (f"\nself-test: expected {st['expected']}, read {st['read']} "
                 f"(confidence {st['confidence']}) in {st['latency_ms']} ms\n")
    text += f"{r['status'].upper()}  {r['reason']}\n"
    _emit(r, args.json, text)
    return EXIT_OK if r["status"] == "pass" else EXIT_FAILED


def cmd_mqtt_check(args: argparse.Namespace) -> int:
    from edge.diag.mqtt import mqtt_check

    cfg = _load(args)
    _say(f"connecting to {cfg.broker.host}:{cfg.broker.port} as post {cfg.post.id}...")
    r = mqtt_check(cfg.broker, cfg.post.id, timeout_s=args.timeout)
    if r["status"] == "pass":
        human = (f"PASS  {r['broker']}: connected in {r['connect_ms']:.1f} ms "
                 f"({'TLS' if r['tls'] else 'plain'}, MQTT {'5' if r['mqtt5'] else '3.1.1'}); {r['reason']}")
    else:
        human = f"FAIL  {r['broker']}: {r['reason']}\n      fix: {r['fix']}"
    _emit(r, args.json, human)
    return EXIT_OK if r["status"] == "pass" else EXIT_FAILED


# ---------------------------------------------------------------------------------------- outbox, verify


def cmd_outbox(args: argparse.Namespace) -> int:
    from edge.diag.result import render_kv
    from edge.diag.stores import outbox_summary
    from edge.errors import StorageError

    cfg = _load(args)
    try:
        o = outbox_summary(cfg)
    except StorageError as err:
        raise CannotRun(str(err)) from err
    old = o["oldest_undelivered"]
    o["status"] = "fail" if old is not None and old["age_s"] >= args.max_age else "pass"
    rows: list[tuple[str, Any]] = [
        ("journal", o["journal"]), ("last seq", o["last_seq"]), ("backlog", f"{o['backlog']} event(s) not "
                                                                            f"acknowledged by HQ"),
        ("oldest undelivered", None if old is None else
         f"seq {old['seq']} ({old['lane_id']}) committed {old['created_at']}, {old['age_s']:.0f} s ago"),
        ("last ack from HQ", f"seq {o['last_ack']}" + (f" at {o['last_ack_at']}" if o["last_ack_at"] else "")),
    ]
    text = render_kv(rows)
    if o["status"] == "fail":
        text += (f"FAIL  HQ has not acknowledged for over {args.max_age:g} s\n"
                 "      fix: run `edgectl mqtt check`; `edgectl outbox drain` with the service stopped\n")
    _emit(o, args.json, text)
    return EXIT_FAILED if o["status"] == "fail" else EXIT_OK


def cmd_outbox_drain(args: argparse.Namespace) -> int:
    from edge.diag.stores import drain, read_status
    from edge.errors import StorageError

    cfg = _load(args)
    st = read_status(cfg)
    if st["running"]:
        raise CannotRun("the controller is running and delivers the backlog itself; a second uplink would "
                        "fight it for the broker session. Stop it first (systemctl stop customs-edge)")
    last = [-1]

    def progress(s: dict[str, Any]) -> None:
        if s["backlog"] != last[0]:
            last[0] = s["backlog"]
            _say(f"  backlog {s['backlog']}, acknowledged up to seq {s['last_ack']}"
                 + ("" if s["connected"] else f" (not connected: {s['last_error'] or 'connecting'})"))

    try:
        r = drain(cfg, timeout_s=args.timeout, progress=progress)
    except StorageError as err:
        raise CannotRun(str(err)) from err
    human = (f"{'PASS' if r['ok'] else 'FAIL'}  delivered {r['delivered']} of {r['backlog_before']} event(s) in "
             f"{r['seconds']:.1f} s; backlog now {r['backlog_after']}")
    if not r["ok"]:
        human += (f"\n      cause: {r['last_error'] or 'HQ did not acknowledge in time'}"
                  "\n      fix: run `edgectl mqtt check`")
    _emit(r, args.json, human)
    return EXIT_OK if r["ok"] else EXIT_FAILED


def cmd_verify(args: argparse.Namespace) -> int:
    from edge.diag.stores import verify_stores

    cfg = _load(args)
    v = verify_stores(cfg)
    if not v["journal"]["present"] and not v["weighings"]["present"]:
        raise CannotRun(f"nothing to verify under {cfg.storage.data_dir} (no journal, no weighing records)")
    lines = []
    for key, what in (("journal", "journal"), ("weighings", "weighing records")):
        part = v[key]
        if not part["present"]:
            lines.append(f"SKIP  {what}: {part['path']} does not exist")
        elif part["problems"]:
            lines.append(f"FAIL  {what}: {part['path']}: {len(part['problems'])} problem(s) "
                         f"in {part['records']} records")
            lines += [f"      {p}" for p in part["problems"]]
        else:
            lines.append(f"PASS  {what}: {part['records']} records intact ({part['path']})")
    _emit(v, args.json, "\n".join(lines))
    return EXIT_OK if v["ok"] else EXIT_FAILED


# ---------------------------------------------------------------------------------------- events, status


def _event_line(ev: dict[str, Any]) -> str:
    plate = ev.get("plate") or {}
    w = ev.get("weighing") or {}
    flags = [k for k, v in (ev.get("flags") or {}).items() if v]
    text = (f"seq {ev.get('seq')}  {ev.get('lane_id')}  {ev.get('first_seen')}  "
            f"{plate.get('display') or plate.get('text') or '(no plate)'}")
    if plate:
        text += f" ({plate.get('country') or '?'}, {float(plate.get('confidence') or 0):.2f})"
    if w:
        text += f"  gross {w.get('gross')} {w.get('unit')}"
    if flags:
        text += f"  [{', '.join(flags)}]"
    return text


def cmd_events_tail(args: argparse.Namespace) -> int:
    from edge.diag.stores import save_crop, tail
    from edge.errors import StorageError

    cfg = _load(args)
    end = time.monotonic() + args.seconds if args.seconds else None
    seen = [0]
    _say(f"following post {cfg.post.id}'s journal; Ctrl-C to stop")
    try:
        for ev in tail(cfg, after_seq=0 if args.from_start else args.after,
                       stop=lambda: (end is not None and time.monotonic() > end)
                       or (bool(args.count) and seen[0] >= args.count)):
            crop = save_crop(cfg, ev, args.crops) if args.crops else None
            seen[0] += 1
            if args.json:
                _line({**ev, "crop_file": str(crop) if crop else None})
            else:
                print(_event_line(ev) + (f"  crop: {crop}" if crop else ""), flush=True)
    except StorageError as err:
        raise CannotRun(str(err)) from err
    except KeyboardInterrupt:
        pass
    return EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    from edge.diag.result import render_columns
    from edge.diag.stores import read_status

    cfg = _load(args)
    st = read_status(cfg, stale_after_s=args.stale_after)
    s = st["status"]
    if not st["running"]:
        _emit(st, args.json, f"NOT RUNNING  {st['reason']}")
        return EXIT_FAILED
    assert s is not None
    rows = []
    for lane in s.get("lanes") or []:
        for c in lane.get("cameras") or []:
            rows.append([lane.get("lane"), f"camera {c.get('name')}", c.get("state"),
                         f"{float(c.get('fps') or 0):.1f} fps, {c.get('frames')} frames, {c.get('dropped')} dropped"
                         + (f"; {c['last_error']}" if c.get("last_error") and c.get("state") != "streaming" else "")])
        sc = lane.get("scale")
        if sc is not None:
            rows.append([lane.get("lane"), "scale", "connected" if sc.get("connected") else "disconnected",
                         f"{sc.get('readings')} readings, {sc.get('faults')} bad frames"
                         + (f"; {sc['last_error']}" if sc.get("last_error") and not sc.get("connected") else "")])
        stats = lane.get("stats") or {}
        if stats:
            rows.append([lane.get("lane"), "stats", "alive" if lane.get("alive") else "DEAD",
                         ", ".join(f"{k} {v}" for k, v in sorted(stats.items()))])
    up = s.get("uplink")
    b = s.get("backlog") or {}
    text = (f"post {s.get('post_id')}  pid {s.get('pid')}  version {s.get('version')}  up {s.get('uptime_s')} s"
            f"  (status {st['age_s']:.0f} s old)\n\n")
    text += render_columns(["LANE", "DEVICE", "STATE", "DETAIL"], rows) + "\n"
    if up is None:
        text += f"uplink: not started (the controller runs without a broker); backlog {b.get('events')}\n"
    else:
        text += (f"uplink: {'connected' if up.get('connected') else 'NOT connected'}"
                 + (f" ({up.get('last_error')})" if up.get("last_error") and not up.get("connected") else "")
                 + f"; backlog {b.get('events')}, last ack seq {up.get('last_ack')}\n")
    _emit(st, args.json, text)
    return EXIT_OK


def cmd_support_bundle(args: argparse.Namespace) -> int:
    from edge.diag import run_diagnostics
    from edge.diag.bundle import make_bundle

    cfg = _load(args)
    doctor = None
    if not args.no_doctor:
        _say("running the doctor...")
        doctor = run_diagnostics(cfg, config_source=str(args.config))
    out = args.output or Path(f"support-{cfg.post.id}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.tar.gz")
    r = make_bundle(cfg, Path(args.config), Path(out), doctor=doctor, progress=lambda m: _say(f"  adding {m}"))
    _emit(r, args.json, f"{r['path']} ({r['bytes']} bytes): {', '.join(r['contents'])}")
    return EXIT_OK


# ---------------------------------------------------------------------------------------- parser

_TOP_EPILOG = """exit codes: 0 healthy, 1 a check failed, 2 could not run
config: --config FILE, else $CUSTOMS_EDGE_CONFIG, else /etc/customs-edge/post.toml

examples:
  edgectl doctor                                 every check, one table
  edgectl camera probe lane1/front               stream, fps, sharpness, plate size, snapshot
  edgectl scale detect /dev/ttyUSB0              which protocol and baud rate the indicator speaks
  edgectl mqtt check                             TLS, credentials and a round trip to HQ's broker
  edgectl events tail --crops /tmp/crops         new events as they are committed
  edgectl support-bundle                         one archive for HQ's support desk
  edgectl config validate /etc/customs-edge/post.toml
"""


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", "-c", type=Path, default=default_config(),
                        help=f"post config (default: ${CONFIG_ENV} or {DEFAULT_CONFIG})")
    common.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    common.add_argument("--verbose", "-v", action="store_true", help="log details on stderr")

    raw = argparse.RawDescriptionHelpFormatter
    p = argparse.ArgumentParser(prog="edgectl", description="Diagnostics for a customs post's lanes.",
                                formatter_class=raw, epilog=_TOP_EPILOG)
    p.add_argument("--version", action="version", version=f"edgectl {__version__}")
    sub = p.add_subparsers(dest="group", required=True, metavar="COMMAND")

    def cmd(parent: Any, name: str, help: str, examples: list[str], func: Any, *, with_common: bool = True,
            ) -> argparse.ArgumentParser:
        sp: argparse.ArgumentParser = parent.add_parser(
            name, help=help, description=help, formatter_class=raw,
            parents=[common] if with_common else [],
            epilog="examples:\n" + "\n".join(f"  {e}" for e in examples))
        sp.set_defaults(func=func)
        return sp

    # config validate (kept as it was: FILE positional, --json)
    cfg = sub.add_parser("config", help="configuration files")
    cfg_sub = cfg.add_subparsers(dest="action", required=True)
    val = cmd(cfg_sub, "validate", "check a post config and print every error with its key path",
              ["edgectl config validate deploy/config/post-example.toml", "edgectl config validate --json post.toml"],
              cmd_config_validate, with_common=False)
    val.add_argument("file", type=Path)
    val.add_argument("--json", action="store_true", help="machine-readable output")

    d = cmd(sub, "doctor", "run every check against the installed config: one pass/warn/fail table",
            ["edgectl doctor", "edgectl doctor --check camera --check scale", "edgectl doctor --json > doctor.json"],
            cmd_doctor)
    d.add_argument("--check", action="append", metavar="NAME",
                   help="only this check (config, storage, controller, camera[:LANE/CAM], scale[:LANE], models, "
                        "mqtt, journal); repeatable")
    d.add_argument("--seconds", type=float, default=2.0, help="how long to watch each camera and scale (default 2)")
    d.add_argument("--quiet", "-q", action="store_true", help="no progress on stderr")

    cam = sub.add_parser("camera", help="plate cameras")
    cam_sub = cam.add_subparsers(dest="action", required=True)
    cp = cmd(cam_sub, "probe", "open a camera, measure fps, resolution, sharpness, exposure and plate size",
             ["edgectl camera probe lane1/front", "edgectl camera probe 'rtsp://user:pw@10.20.1.11/Streaming/1'",
              "edgectl camera probe synthetic://lane1?seed=1 --seconds 5 --snapshot /tmp/front.jpg",
              "edgectl camera probe /dev/video0 --no-read"], cmd_camera_probe)
    cp.add_argument("target", metavar="URL|NAME", help="a camera URL, or LANE/CAMERA (or CAMERA) from the config")
    cp.add_argument("--seconds", type=float, default=3.0, help="how long to read (default 3)")
    cp.add_argument("--snapshot", type=Path, help="where to save a JPEG (default: ./snapshot-NAME.jpg)")
    cp.add_argument("--no-snapshot", action="store_true", help="save no snapshot")
    cp.add_argument("--no-read", action="store_true", help="skip the plate read (faster; no model loading)")
    cp.add_argument("--open-timeout", type=float, default=10.0, help="seconds to wait for the first frame")
    cp.add_argument("--force", action="store_true", help="open a USB camera even while the controller reads it")
    cmd(cam_sub, "list", "list local USB (V4L2) cameras", ["edgectl camera list", "edgectl camera list --json"],
        cmd_camera_list)

    sc = sub.add_parser("scale", help="truck scales",
                        epilog="`edgectl scale simulate --help` for the indicator simulator")
    sc_sub = sc.add_subparsers(dest="action", required=True)
    cmd(sc_sub, "list", "list serial ports with their USB ids", ["edgectl scale list", "edgectl scale list --json"],
        cmd_scale_list)
    sd = cmd(sc_sub, "detect", "try the supported protocols and baud rates: which one does the indicator speak?",
             ["edgectl scale detect /dev/ttyUSB0", "edgectl scale detect socket://10.20.1.30:4001",
              "edgectl scale detect /dev/ttyUSB0 --protocol mettler-continuous --all"], cmd_scale_detect)
    sd.add_argument("port", metavar="PORT", help="device path or pyserial URL (socket://host:port, rfc2217://...)")
    sd.add_argument("--protocol", action="append", help="only try this protocol (repeatable)")
    sd.add_argument("--listen", type=float, default=1.0, help="seconds to listen per setting (default 1)")
    sd.add_argument("--all", action="store_true", help="try every setting instead of stopping at the first match")
    sd.add_argument("--force", action="store_true", help="open the port even while the controller reads it")
    for name, help_, ex, func in (
        ("watch", "print live readings with their status flags",
         ["edgectl scale watch", "edgectl scale watch --lane lane2 --count 20",
          "edgectl scale watch --url /dev/ttyUSB0 --protocol ascii --json"], cmd_scale_watch),
        ("check", "measure zero, stability and drift over a timed window (platform empty)",
         ["edgectl scale check --seconds 60", "edgectl scale check --lane lane1 --json"], cmd_scale_check),
    ):
        sp = cmd(sc_sub, name, help_, ex, func)
        sp.add_argument("--lane", help="the lane whose scale to use (needed when several have one)")
        sp.add_argument("--url", help="a port or URL instead of the config's")
        sp.add_argument("--protocol", help="protocol to parse with (default: the config's, or ascii with --url)")
        sp.add_argument("--baudrate", type=int, default=9600, help="with --url (default 9600)")
        sp.add_argument("--force", action="store_true", help="open the port even while the controller reads it")
        if name == "watch":
            sp.add_argument("--count", type=int, default=0, help="stop after this many readings")
            sp.add_argument("--seconds", type=float, default=0.0, help="stop after this many seconds")
        else:
            sp.add_argument("--seconds", type=float, default=30.0, help="window length (default 30)")
    sc_sub.add_parser("simulate", help="simulate an indicator on a pty or TCP port (own options: --help)",
                      add_help=False)

    m = sub.add_parser("model", help="plate-reading models")
    m_sub = m.add_subparsers(dest="action", required=True)
    mc = cmd(m_sub, "check", "verify every model's sha256, load it, run a self-test plate, print latency",
             ["edgectl model check", "edgectl model check --models-dir /opt/models --json"], cmd_model_check)
    mc.add_argument("--models-dir", type=Path, help="a models folder instead of the config's/installed one")

    q = sub.add_parser("mqtt", help="the link to HQ's broker")
    q_sub = q.add_subparsers(dest="action", required=True)
    qc = cmd(q_sub, "check", "connect with the post's TLS and credentials, round-trip a message on diag/test",
             ["edgectl mqtt check", "edgectl mqtt check --timeout 20 --json"], cmd_mqtt_check)
    qc.add_argument("--timeout", type=float, default=10.0, help="seconds for each step (default 10)")

    o = cmd(sub, "outbox", "backlog, oldest undelivered event, last acknowledgement from HQ",
            ["edgectl outbox", "edgectl outbox --json", "edgectl outbox drain --timeout 120"], cmd_outbox)
    o.add_argument("--max-age", type=float, default=3600.0,
                   help="fail when the oldest undelivered event is older than this many seconds (default 3600)")
    o_sub = o.add_subparsers(dest="action")
    od = cmd(o_sub, "drain", "push the backlog to HQ now (with the service stopped)",
             ["edgectl outbox drain", "edgectl outbox drain --timeout 300 --json"], cmd_outbox_drain)
    od.add_argument("--timeout", type=float, default=60.0, help="give up after this many seconds (default 60)")

    cmd(sub, "verify", "check the journal's and the weighing records' integrity (hash chains, signatures)",
        ["edgectl verify", "edgectl verify --json"], cmd_verify)

    ev = sub.add_parser("events", help="the post's vehicle events")
    ev_sub = ev.add_subparsers(dest="action", required=True)
    et = cmd(ev_sub, "tail", "print the post's events as they are committed",
             ["edgectl events tail", "edgectl events tail --from-start --count 10",
              "edgectl events tail --crops /tmp/crops --json"], cmd_events_tail)
    et.add_argument("--crops", type=Path, help="save each event's plate crop (from evidence/) into this folder")
    et.add_argument("--from-start", action="store_true", help="begin with the first event in the journal")
    et.add_argument("--after", type=int, default=None, help="begin after this seq")
    et.add_argument("--count", type=int, default=0, help="stop after this many events")
    et.add_argument("--seconds", type=float, default=0.0, help="stop after this many seconds")

    st = cmd(sub, "status", "the running controller's live state (lanes, devices, rates, uplink)",
             ["edgectl status", "edgectl status --json"], cmd_status)
    st.add_argument("--stale-after", type=float, default=10.0,
                    help="a status file older than this many seconds means the controller is not running")

    sb = cmd(sub, "support-bundle", "one tar.gz for HQ's support desk: redacted config, logs, versions, doctor, "
                                    "events", ["edgectl support-bundle", "edgectl support-bundle -o /tmp/b.tar.gz"],
             cmd_support_bundle)
    sb.add_argument("--output", "-o", type=Path, help="archive path (default: ./support-POST-TIME.tar.gz)")
    sb.add_argument("--no-doctor", action="store_true", help="leave out the doctor's report (faster)")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:2] == ["scale", "simulate"]:
        from drivers.scale.simulator import main as simulate

        return simulate(argv[2:])
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on bad usage, 0 on --help
        return int(exc.code or 0)
    logging.basicConfig(level=logging.INFO if getattr(args, "verbose", False) else logging.ERROR,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        return int(args.func(args))
    except CannotRun as err:
        _say(f"edgectl: {err}")
        return EXIT_CANNOT_RUN
    except KeyboardInterrupt:
        return EXIT_CANNOT_RUN


if __name__ == "__main__":
    sys.exit(main())
