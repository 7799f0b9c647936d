"""What every bench prints besides its figures: the machine, the exact command, a table, a JSON file.

A figure without the machine it came from and the command that made it cannot be compared with
anything, so every bench prints both, and ratios against a baseline measured in the same run.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def interrupt_on_sigterm() -> None:
    """SIGTERM ends a bench like Ctrl-C does, so its ``finally`` blocks stop brokers and controllers."""
    import signal

    def handler(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def machine() -> dict[str, Any]:
    """CPU model, cores, RAM and kernel, read from /proc (no third-party package needed)."""
    model = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram_gb: float | None = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram_gb = round(int(line.split()[1]) / 1024 / 1024, 1)
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cpu": model, "cores": cores, "ram_gb": ram_gb, "kernel": platform.release(),
            "python": platform.python_version()}


def machine_line() -> str:
    m = machine()
    return (f"{m['cpu']}, {m['cores']} core(s), {m['ram_gb']} GiB RAM, Linux {m['kernel']}, "
            f"Python {m['python']}")


def command_line() -> str:
    """The command that reproduces this run (as typed through ./dev)."""
    prog = sys.argv[0]
    name = Path(prog).stem if prog.endswith(".py") else prog.rsplit(".", 1)[-1]
    return shlex.join(["./dev", "bench", name, *sys.argv[1:]])


def header(title: str) -> None:
    print(f"# {title}")
    print(f"machine: {machine_line()}")
    print(f"command: {command_line()}")
    print(f"date:    {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}")
    try:
        load = os.getloadavg()
        print(f"load:    {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at start (other work on the machine skews figures)")
    except OSError:
        pass
    print()


def table(rows: Sequence[dict[str, Any]], cols: Sequence[str], title: str | None = None) -> None:
    """A plain aligned table; None prints as '-', floats with up to 3 significant decimals."""
    def fmt(v: Any) -> str:
        if v is None:
            return "-"
        if isinstance(v, bool):
            return "yes" if v else "NO"
        if isinstance(v, float):
            return f"{v:.3g}" if abs(v) < 10 else f"{v:,.1f}" if abs(v) < 1000 else f"{v:,.0f}"
        return str(v)
    cells = [[fmt(r.get(c)) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) if cells else len(c) for i, c in enumerate(cols)]
    if title:
        print(title)
    print("  ".join(c.rjust(w) for c, w in zip(cols, widths, strict=True)))
    for row in cells:
        print("  ".join(v.rjust(w) for v, w in zip(row, widths, strict=True)))
    print()


def write_json(path: str | Path | None, name: str, figures: dict[str, Any]) -> None:
    """``--json PATH`` (or ``-`` for stdout): the figures with the machine and command."""
    if path is None:
        return
    doc = {"bench": name, "machine": machine(), "command": command_line(), "loadavg_at_end": os.getloadavg(),
           "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "figures": figures}
    text = json.dumps(doc, indent=2, default=str)
    if str(path) == "-":
        print(text)
    else:
        Path(path).write_text(text + "\n")
        print(f"figures written to {path}")


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100); None for no values."""
    if not values:
        return None
    s = sorted(values)
    k = max(0, min(len(s) - 1, round(q / 100 * (len(s) - 1))))
    return float(s[k])


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


# -- a process seen from outside: CPU, memory, file descriptors -----------------------------------

_TICK = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process and its reaped children (from /proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def proc_rss(pid: int) -> int:
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * _PAGE


def proc_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def proc_threads(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    return 0


class ProcSampler:
    """Samples a process every ``interval`` seconds in a thread: (t, cpu_s, rss, fds, threads)."""

    def __init__(self, pid: int, interval: float = 1.0) -> None:
        self.pid = pid
        self.interval = interval
        self.samples: list[tuple[float, float, int, int, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"sample-{pid}", daemon=True)

    def start(self) -> ProcSampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def sample(self) -> None:
        try:
            self.samples.append((time.monotonic(), proc_cpu_s(self.pid), proc_rss(self.pid),
                                 proc_fds(self.pid), proc_threads(self.pid)))
        except (OSError, ValueError, IndexError):
            pass  # the process is gone (or going): keep what we have

    def _run(self) -> None:
        while True:
            self.sample()
            if self._stop.wait(self.interval):
                return

    def cpu_percent(self, since: float | None = None) -> float | None:
        """Average CPU% (100 = one core) over the samples taken after ``since`` (monotonic)."""
        s = [x for x in self.samples if since is None or x[0] >= since]
        if len(s) < 2 or s[-1][0] <= s[0][0]:
            return None
        return round(100 * (s[-1][1] - s[0][1]) / (s[-1][0] - s[0][0]), 1)

    def rss_mb(self, since: float | None = None) -> float | None:
        """Peak RSS in MiB over the samples after ``since``."""
        s = [x[2] for x in self.samples if since is None or x[0] >= since]
        return round(max(s) / 1024 / 1024, 1) if s else None


def sample_event(n: int, post_id: str, t: float | None = None, lane_id: str | None = None) -> dict[str, Any]:
    """Vehicle event ``n`` as a post's lane makes it, before the journal seals it.

    Built by :class:`edge.events.VehicleEvent`, so a delivery or HQ bench moves the schema and the
    size posts really send (a plate with its evidence, one read per camera, a weighing).
    """
    from edge.events import VehicleEvent, iso_time

    t = time.time() if t is None else t
    text, display = f"01A{n % 1000:03d}BC", f"01 A {n % 1000:03d} BC"
    plate = {"text": text, "display": display, "country": "UZ", "syntax": "uz-private", "confidence": 0.95,
             "camera": "front", "frame_seq": n, "seen_at": iso_time(t - 10), "box": [612, 388, 210, 52],
             "votes": 9, "crop_sha256": "ab" * 32, "overview_sha256": "cd" * 32}
    read = {"camera": "front", "role": "front", "text": text, "display": display, "country": "UZ",
            "syntax": "uz-private", "confidence": 0.95, "frames": 11}
    weighing = {"gross": 38240.0, "tare": 0.0, "net": 38240.0, "unit": "kg", "stable_span_s": 2.1,
                "spread": 20.0, "readings": 21, "record_id": f"w-{n}", "scale": "socket://10.0.0.21:4001",
                "axles": []}
    return VehicleEvent(
        post_id=post_id, lane_id=lane_id or f"lane{n % 4 + 1}", first_seen=t - 12, left_at=t, weighed_at=t - 4,
        plate=plate, reads=[read], weighing=weighing,
        models={"ppocr-det": "6678c866d002", "ppocr-rec": "8e72d77b5068"},
    ).payload()
