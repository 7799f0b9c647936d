"""``customs-edge``: the controller (``run``), the HQ subscriber (``hq``), reading files (``read``), the demo.

Data goes to stdout, logs to stderr. Exit codes: 0 ok, 1 the work failed, 2 could not start (bad
arguments or config).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from edge import __version__
from edge.errors import ConfigError, EdgeError

log = logging.getLogger("customs-edge")


def _setup_logging(level: str) -> None:
    from edge.service.logging import setup_logging

    setup_logging(level.upper())


def _wait_for_signal() -> None:
    stop = threading.Event()

    def handler(signum: int, _frame: object) -> None:
        log.info("signal %d: stopping", signum)
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    while not stop.wait(1.0):
        pass


def cmd_run(args: argparse.Namespace) -> int:
    from edge.config import load_config
    from edge.controller import PostController

    cfg = load_config(args.config)
    controller = PostController(cfg, config_path=args.config)
    controller.start()
    metrics = None
    if cfg.metrics.enabled:
        from edge.service.metrics import MetricsServer, figures_from_status

        metrics = MetricsServer(cfg.metrics.port, lambda: figures_from_status(controller.status()),
                                host=cfg.metrics.host, disk_paths=[cfg.storage.data_dir])
        metrics.start()
    stop_service = _start_service(controller.alive)
    try:
        _wait_for_signal()
    finally:
        stop_service()
        if metrics is not None:
            metrics.stop()
        controller.stop()
    return 0


def _start_service(health: Callable[[], bool]) -> Callable[[], None]:
    """Tell systemd we are ready and feed its watchdog while ``health()`` holds; returns the stop function.

    Outside systemd both do nothing, so the same code runs on a technician's laptop.
    """
    from edge.service import systemd

    systemd.ready()
    dog = systemd.Watchdog(health)
    dog.start()

    def stop() -> None:
        systemd.stopping()
        dog.stop()

    return stop


def cmd_hq(args: argparse.Namespace) -> int:
    from edge.cli.hq import run_hq

    return run_hq(args)


def cmd_read(args: argparse.Namespace, rest: list[str]) -> int:
    from edge.recognition.cli import main as read_main

    return read_main(rest)


def cmd_demo(args: argparse.Namespace, rest: list[str]) -> int:
    from edge.demo import main as demo_main

    return demo_main(rest)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="customs-edge",
        description="Customs post edge controller.",
        epilog="examples:\n  customs-edge run --config /etc/customs-edge/post.toml\n"
        "  customs-edge hq --broker 127.0.0.1:1883 --db hq.sqlite\n"
        "  customs-edge hq query plate 01A123BC --json\n"
        "  customs-edge read photo.jpg truck.mp4\n  customs-edge demo",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"customs-edge {__version__}")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the post controller")
    run.add_argument("--config", "-c", type=Path, required=True)
    hq = sub.add_parser("hq", help="run the HQ subscriber (or query HQ's store)")
    hq.add_argument("--config", "-c", type=Path, help="post-style TOML with an [hq] and [broker] section")
    hq.add_argument("--broker", default="127.0.0.1:1883", help="host:port of HQ's broker")
    hq.add_argument("--db", default="hq.sqlite", help="SQLite path or postgresql:// DSN")
    hq.add_argument("--group", default="hq", help="shared-subscription group")
    hq.add_argument("--keys", type=Path, help="folder of posts' public keys (<post>.pem); default: trust on first use")
    hq.add_argument("--trust-on-first-use", action="store_true",
                    help="pin an unknown post's first key (demo, lab; never at a real HQ)")
    hq.add_argument("--json", action="store_true", help="print events as JSON lines")
    hq.add_argument("--quiet", action="store_true", help="don't print events")
    sub.add_parser("read", help="read plates in images or videos (one JSON line each)", add_help=False)
    sub.add_parser("demo", help="a whole simulated post on this machine", add_help=False)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:2] == ["hq", "query"]:
        from edge.hq.query import main as query_main

        return query_main(argv[2:])
    parser = build_parser()
    # read and demo own their arguments: everything after the subcommand is theirs.
    for i, a in enumerate(argv):
        if a in ("read", "demo"):
            args = parser.parse_args(argv[: i + 1])
            _setup_logging(args.log_level)
            rest = argv[i + 1 :]
            return cmd_read(args, rest) if a == "read" else cmd_demo(args, rest)
        if not a.startswith("-"):
            break
    args = parser.parse_args(argv)
    _setup_logging(args.log_level)
    try:
        if args.command == "run":
            return cmd_run(args)
        if args.command == "hq":
            return cmd_hq(args)
    except ConfigError as err:
        print(str(err), file=sys.stderr)
        return 2
    except EdgeError as err:
        print(f"customs-edge: {err}", file=sys.stderr)
        return 1
    return 2


if __name__ == "__main__":
    sys.exit(main())
