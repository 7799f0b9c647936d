"""What one diagnostic check says, how checks run under a deadline, and how a report is rendered.

A check is a plain function returning a :class:`CheckResult`: the same result is printed as a table
row by ``edgectl doctor``, emitted as JSON by ``--json`` and sent to HQ as the answer of a
``diag.run`` command, so the three can never disagree.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from edge.errors import EdgeError

log = logging.getLogger(__name__)

Status = Literal["pass", "warn", "fail", "skip"]
STATUSES: tuple[Status, ...] = ("pass", "warn", "fail", "skip")
_RANK = {"skip": 0, "pass": 1, "warn": 2, "fail": 3}


@dataclass
class CheckResult:
    """``reason`` says what was found in words a technician understands; ``fix`` what to try next."""

    name: str
    status: Status
    reason: str
    fix: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    duration_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "reason": self.reason,
            "fix": self.fix,
            "duration_s": round(self.duration_s, 3),
            "details": self.details,
        }


def worst(statuses: list[Status] | list[str]) -> Status:
    """The most serious of several findings (fail > warn > pass > skip)."""
    best: Status = "pass" if not statuses else "skip"
    for s in statuses:
        if _RANK.get(s, 3) > _RANK[best]:
            best = s  # type: ignore[assignment]
    return best


@dataclass
class Check:
    """A named check with its own deadline; ``fn`` returns the result (its name and time are filled in)."""

    name: str
    fn: Callable[[], CheckResult]
    timeout_s: float = 20.0


def _run_one(check: Check) -> CheckResult:
    t0 = time.monotonic()
    try:
        res = check.fn()
    except EdgeError as err:
        res = CheckResult(check.name, "fail", str(err))
    except Exception as err:  # a bug in one check must not hide the others' findings
        log.exception("check %s failed unexpectedly", check.name)
        res = CheckResult(check.name, "fail", f"the check itself failed: {err!r}",
                          "report this to HQ's support desk with `edgectl support-bundle`")
    res.name = check.name
    res.duration_s = time.monotonic() - t0
    return res


def run_checks(checks: list[Check], *, parallel: int = 8,
               on_done: Callable[[CheckResult], None] | None = None) -> list[CheckResult]:
    """Run ``checks`` concurrently (at most ``parallel`` at once), each under its own deadline.

    A check still running at its deadline is reported as failed and left behind in a daemon thread:
    a camera that hangs inside its driver must not keep the technician waiting for the rest.
    Results come back in the order the checks were given.
    """
    results: dict[int, CheckResult] = {}
    gate = threading.Semaphore(max(1, parallel))
    lock = threading.Lock()
    threads: list[tuple[int, Check, threading.Thread, list[float]]] = []

    def worker(i: int, check: Check, started: list[float]) -> None:
        with gate:
            started.append(time.monotonic())
            res = _run_one(check)
        with lock:
            if i not in results:
                results[i] = res
                if on_done is not None:
                    on_done(res)

    for i, check in enumerate(checks):
        started: list[float] = []
        t = threading.Thread(target=worker, args=(i, check, started), name=f"check-{check.name}", daemon=True)
        threads.append((i, check, t, started))
        t.start()
    for i, check, t, started in threads:
        while True:
            # The deadline counts from when the check got a slot, not from when it was queued.
            if started:
                left = started[0] + check.timeout_s - time.monotonic()
                t.join(max(0.0, left))
                break
            t.join(0.05)
            if not t.is_alive():
                break
        with lock:
            if i not in results:
                res = CheckResult(
                    check.name, "fail", f"did not finish within {check.timeout_s:g} s (device or network hangs)",
                    "run the check alone (e.g. `edgectl camera probe NAME`) to see where it stops",
                    duration_s=check.timeout_s,
                )
                results[i] = res
                if on_done is not None:
                    on_done(res)
    return [results[i] for i in range(len(checks))]


def summary(results: list[CheckResult]) -> dict[str, int]:
    return {s: sum(1 for r in results if r.status == s) for s in STATUSES}


def render_table(results: list[CheckResult]) -> str:
    """The doctor's table: one row per check, the fix on its own indented line.

    Variable figures (measured values, times) are kept at the end of lines so that columns do not
    move when a figure changes width.
    """
    width = max([len("CHECK"), *(len(r.name) for r in results)])
    lines = [f"{'STATUS':<6}  {'CHECK':<{width}}  RESULT"]
    for r in results:
        lines.append(f"{r.status.upper():<6}  {r.name:<{width}}  {r.reason} ({r.duration_s:.1f} s)")
        if r.fix and r.status in ("warn", "fail"):
            lines.append(f"{'':<6}  {'':<{width}}  fix: {r.fix}")
    counts = summary(results)
    lines.append("")
    lines.append(", ".join(f"{counts[s]} {s}" for s in STATUSES if counts[s] or s in ("pass", "fail")))
    return "\n".join(lines) + "\n"


def render_kv(rows: list[tuple[str, Any]]) -> str:
    """``key: value`` lines, keys aligned: the human form of a single record."""
    width = max((len(k) for k, _ in rows), default=0)
    return "".join(f"{k + ':':<{width + 1}} {'-' if v is None else v}\n" for k, v in rows)


def render_columns(header: list[str], rows: list[list[Any]]) -> str:
    """A plain table; the last column is left unpadded (it holds the variable-width text)."""
    cells = [[("-" if v is None else str(v)) for v in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(header)]
    out = []
    for row in [header, *cells]:
        parts = [f"{v:<{widths[i]}}" for i, v in enumerate(row[:-1])] + [row[-1]]
        out.append("  ".join(parts).rstrip())
    return "\n".join(out) + "\n"
