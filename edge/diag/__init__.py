"""Diagnostics of a post, as data: what ``edgectl doctor`` prints and what HQ gets for ``diag.run``.

Each check is a function returning a :class:`CheckResult`; :func:`run_diagnostics` runs the ones
asked for under per-check deadlines and returns one JSON-ready report, so a technician on site and
HQ's support desk over MQTT see the same findings in the same words.

Check names: ``config``, ``storage``, ``controller``, ``camera:<lane>/<camera>``, ``scale:<lane>``,
``models``, ``mqtt``, ``journal``. A name without ``:`` also selects its family (``camera`` = all
cameras).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from edge.config import PostConfig
from edge.diag.result import Check, CheckResult, render_table, run_checks, summary, worst
from edge.events import iso_time

__all__ = [
    "Check",
    "CheckResult",
    "build_checks",
    "check_names",
    "diag_command_handler",
    "render_table",
    "run_checks",
    "run_diagnostics",
]

REPORT_SCHEMA = "customs.diag_report/1"


def check_names(cfg: PostConfig) -> list[str]:
    """Every check the config gives, in the order the doctor runs and prints them."""
    names = ["config", "storage", "controller"]
    for lane in cfg.lanes:
        names += [f"camera:{lane.id}/{c.name}" for c in lane.cameras]
        if lane.scale is not None:
            names.append(f"scale:{lane.id}")
    return [*names, "models", "mqtt", "journal"]


def _selected(all_names: list[str], wanted: list[str] | None) -> list[str]:
    if not wanted:
        return all_names
    out = []
    unknown = []
    for w in wanted:
        hit = [n for n in all_names if n == w or n.split(":", 1)[0] == w]
        if not hit:
            unknown.append(w)
        out += [h for h in hit if h not in out]
    if unknown:
        from edge.errors import ConfigError

        raise ConfigError("checks", [("", f"unknown check(s) {', '.join(unknown)}; this config has: "
                                          f"{', '.join(all_names)}")])
    return [n for n in all_names if n in out]


def build_checks(
    cfg: PostConfig,
    names: list[str] | None = None,
    *,
    config_source: str = "",
    live_status: dict[str, Any] | None = None,
    device_seconds: float = 2.0,
    mqtt_timeout_s: float = 8.0,
) -> list[Check]:
    """The :class:`Check` objects for ``names`` (all when None). Raises ConfigError for unknown names.

    ``live_status``: the controller's status dict. When given (the controller runs), cameras and
    scales are judged from it instead of being opened a second time.
    """
    from edge.diag import camera, models, mqtt, scale, stores

    selected = _selected(check_names(cfg), names)
    if live_status is None and any(n.startswith(("camera:", "scale:")) for n in selected):
        st = stores.read_status(cfg)
        live_status = st["status"] if st["running"] else None
    live = stores.live_devices(live_status)
    cams = {f"camera:{lane.id}/{c.name}": c for lane in cfg.lanes for c in lane.cameras}
    scales = {f"scale:{lane.id}": lane.scale for lane in cfg.lanes if lane.scale is not None}

    def config_check() -> CheckResult:
        n_cams = sum(len(lane.cameras) for lane in cfg.lanes)
        n_scales = len(scales)
        where = f"{config_source}: " if config_source else ""
        return CheckResult("config", "pass", f"{where}valid; post {cfg.post.id}, {len(cfg.lanes)} lane(s), "
                                             f"{n_cams} camera(s), {n_scales} scale(s)")

    def controller_check() -> CheckResult:
        st = stores.read_status(cfg)
        if st["running"]:
            return CheckResult("controller", "pass", st["reason"], details={"age_s": st["age_s"]})
        return CheckResult("controller", "warn", st["reason"],
                           "start it: systemctl start customs-edge (journalctl -u customs-edge for why it stopped)",
                           details={"age_s": st["age_s"]})

    def mqtt_check() -> CheckResult:
        r = mqtt.mqtt_check(cfg.broker, cfg.post.id, timeout_s=mqtt_timeout_s)
        reason = r["reason"] if r["status"] == "pass" else f"{r['broker']}: {r['reason']}"
        return CheckResult("mqtt", r["status"], reason, r["fix"], details=r)

    def make(name: str) -> Check:
        fn: Callable[[], CheckResult]
        timeout = 20.0
        if name == "config":
            fn = config_check
        elif name == "storage":
            fn = lambda: stores.storage_check(cfg)  # noqa: E731
        elif name == "controller":
            fn = controller_check
        elif name.startswith("camera:"):
            cam = cams[name]
            fn = lambda: camera.camera_check(name.split(":", 1)[1], cam, seconds=device_seconds,  # noqa: E731
                                             live=live.get(name))
            timeout = min(cam.open_timeout_s, 8.0) + device_seconds + 10.0
        elif name.startswith("scale:"):
            sc = scales[name]
            fn = lambda: scale.scale_doctor_check(name, sc, seconds=device_seconds, live=live.get(name))  # noqa: E731
            timeout = device_seconds + 10.0
        elif name == "models":
            fn = lambda: models.models_doctor_check(cfg.recognition)  # noqa: E731
            timeout = 40.0
        elif name == "mqtt":
            fn = mqtt_check
            timeout = mqtt_timeout_s + 5.0
        else:
            fn = lambda: stores.journal_check(cfg)  # noqa: E731
        return Check(name, fn, timeout)

    return [make(n) for n in selected]


def run_diagnostics(
    cfg: PostConfig,
    names: list[str] | None = None,
    *,
    config_source: str = "",
    live_status: dict[str, Any] | None = None,
    device_seconds: float = 2.0,
    on_done: Callable[[CheckResult], None] | None = None,
) -> dict[str, Any]:
    """Run the named checks (all when None) and return the report, JSON-serialisable.

    This is the answer to HQ's ``diag.run`` command as well as ``edgectl doctor --json``. Inside the
    controller pass its ``status()`` as ``live_status`` so devices are not opened twice. Raises
    :class:`edge.errors.ConfigError` for an unknown check name.
    """
    t0 = time.time()
    checks = build_checks(cfg, names, config_source=config_source, live_status=live_status,
                          device_seconds=device_seconds)
    results = run_checks(checks, on_done=on_done)
    return report(cfg, results, started_at=t0)


def report(cfg: PostConfig, results: list[CheckResult], *, started_at: float) -> dict[str, Any]:
    status = worst([r.status for r in results])
    return {
        "schema": REPORT_SCHEMA,
        "post_id": cfg.post.id,
        "started_at": iso_time(started_at),
        "duration_s": round(time.time() - started_at, 3),
        "status": status,
        "ok": status != "fail",
        "summary": summary(results),
        "checks": [r.as_dict() for r in results],
    }


def results_of(rep: dict[str, Any]) -> list[CheckResult]:
    """Back from a report's JSON to results (to render a report received from a post)."""
    return [CheckResult(c["name"], c["status"], c["reason"], c.get("fix", ""), c.get("details", {}),
                        c.get("duration_s", 0.0)) for c in rep["checks"]]


def diag_command_handler(cfg: PostConfig, live_status: Callable[[], dict[str, Any]] | None = None,
                         ) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """The ``diag.run`` handler for :class:`edge.commands.CommandDispatcher`-style registries.

    Payload: ``{"checks": ["camera", "scale:lane1", ...]}`` (optional; all checks when absent) and
    ``{"seconds": 2}`` (optional device window, 0.5-10). The result is the same report as
    ``edgectl doctor --json``. ``live_status`` is the controller's ``status`` method, so its devices
    are judged from its own health rather than opened a second time.
    """
    from edge.errors import CommandError, ConfigError

    def handle(payload: dict[str, Any]) -> dict[str, Any]:
        names = payload.get("checks")
        if names is not None and (not isinstance(names, list) or not all(isinstance(n, str) for n in names)):
            raise CommandError("malformed: payload.checks must be a list of check names")
        seconds = payload.get("seconds", 2.0)
        if not isinstance(seconds, int | float) or not 0.5 <= float(seconds) <= 10:
            raise CommandError("malformed: payload.seconds must be a number from 0.5 to 10")
        try:
            return run_diagnostics(cfg, names, live_status=live_status() if live_status else None,
                                   device_seconds=float(seconds))
        except ConfigError as err:
            raise CommandError(f"malformed: {err}") from err

    return handle
