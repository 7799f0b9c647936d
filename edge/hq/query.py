"""``customs-edge hq query``: what the situation centre asks of HQ's store, for people and for scripts.

Every question is a function returning a plain dict (JSON-ready), so the CLI, a web view or a test ask
the same thing the same way; :func:`main` only parses arguments and prints. Data goes to stdout
(``--json`` for machines), diagnostics to stderr.

Presence and backlog come from the posts themselves: each post keeps a retained ``status`` message on
the broker (``online``/``offline``, also its last will) and publishes ``telemetry`` with its delivery
backlog. The HQ subscriber records the status in the store; with ``--broker`` both are read live
instead (telemetry is not retained, so ``--listen S`` waits for it); without, the store's view is used
(recorded status, when HQ last heard from the post, and what HQ knows is missing).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import threading
import time
from collections.abc import Iterable
from typing import Any

from edge.errors import EdgeError, StorageError
from edge.events import iso_time
from edge.hq.store import EventStore, open_store
from edge.plates import normalise_plate, plate_distance
from edge.topics import DEFAULT_PREFIX

log = logging.getLogger(__name__)

DEFAULT_STORE = "hq.sqlite"  # the same default as ``customs-edge hq --db``
DEFAULT_STALE_S = 15 * 60.0


def open_store_url(url: str) -> EventStore:
    """``postgresql://...`` opens the PostgreSQL store; anything else goes to :func:`edge.hq.store.open_store`."""
    if url.startswith(("postgresql://", "postgres://")):
        from edge.hq.store_pg import PostgresEventStore

        return PostgresEventStore.from_url(url)
    return open_store(url)


# -- summaries -------------------------------------------------------------------------------------


def adr_labels(ev: dict[str, Any]) -> list[str]:
    """A crossing's orange ADR plates (customs.vehicle_event/2 on) as "hazard/UN": 33/1203 is petrol."""
    return [f"{a.get('hazard')}/{a.get('un')}" for a in ev.get("adr") or [] if isinstance(a, dict)]


def crossing_summary(ev: dict[str, Any]) -> dict[str, Any]:
    """The columns an officer scans; the full payload stays one ``recent``/``plate`` query away."""
    def obj(key: str) -> dict[str, Any] | None:
        value = ev.get(key)
        return value if isinstance(value, dict) else None

    plate, trailer, weighing, decl = obj("plate"), obj("trailer_plate"), obj("weighing"), obj("declaration")
    flags = obj("flags") or {}
    return {
        "post_id": ev.get("post_id"),
        "lane_id": ev.get("lane_id"),
        "seq": ev.get("seq"),
        "event_id": ev.get("event_id"),
        "first_seen": ev.get("first_seen"),
        "left_at": ev.get("left_at"),
        "plate": plate.get("text") if plate else None,
        "plate_display": (plate.get("display") or plate.get("text")) if plate else None,
        "country": plate.get("country") if plate else None,
        "confidence": plate.get("confidence") if plate else None,
        "trailer_plate": trailer.get("text") if trailer else None,
        "containers": [c.get("code") for c in ev.get("containers") or [] if isinstance(c, dict)],
        "adr": adr_labels(ev),
        "gross": weighing.get("gross") if weighing else None,
        "unit": weighing.get("unit") if weighing else None,
        "declaration": decl.get("reference") if decl else None,
        "flags": sorted(k for k, v in flags.items() if v is True),
    }


def _ranges(seqs: Iterable[int]) -> list[str]:
    out: list[str] = []
    run: list[int] = []
    for s in sorted(seqs):
        if run and s == run[-1] + 1:
            run.append(s)
            continue
        if run:
            out.append(str(run[0]) if len(run) == 1 else f"{run[0]}..{run[-1]}")
        run = [s]
    if run:
        out.append(str(run[0]) if len(run) == 1 else f"{run[0]}..{run[-1]}")
    return out


# -- questions -------------------------------------------------------------------------------------


def recent_crossings(store: EventStore, post_id: str, lane_id: str | None = None, limit: int = 20) -> dict[str, Any]:
    """The latest crossings of a post (or one lane of it), newest first."""
    rows = store.recent(post_id, lane_id, limit)
    crossings = [crossing_summary(e) for e in rows]
    return {"post_id": post_id, "lane_id": lane_id, "count": len(crossings), "crossings": crossings}


def search_plate(store: EventStore, text: str, *, fuzzy: bool = True, limit: int = 50) -> dict[str, Any]:
    """Crossings whose plate matches ``text``; fuzzy tolerates OCR confusions (O/0, I/1, B/8, S/5, Z/2)
    and up to two other edits, closest first, so a misread plate is still found."""
    want = normalise_plate(text)
    if not want:
        raise EdgeError(f"plate query {text!r} has no letters or digits")
    rows = store.search_plate(want, fuzzy=fuzzy, limit=limit)
    matches = []
    for ev in rows:
        row = crossing_summary(ev)
        row["distance"] = plate_distance(want, row["plate"]) if row["plate"] else None
        row["exact"] = row["plate"] == want
        matches.append(row)
    matches.sort(key=lambda r: (r["distance"] if r["distance"] is not None else 99, not r["exact"]))
    return {"query": text, "normalised": want, "fuzzy": fuzzy, "count": len(matches), "matches": matches}


def integrity_report(store: EventStore, post_id: str | None = None, limit: int = 100) -> dict[str, Any]:
    """Gaps (missing seqs, by number) and integrity failures (tampered, chain breaks, conflicts) per post."""
    posts = [p for p in store.posts() if post_id is None or p.post_id == post_id]
    gaps = []
    for p in posts:
        missing = store.missing_seqs(p.post_id)
        if missing or p.max_seq > p.contiguous_seq:
            gaps.append({
                "post_id": p.post_id,
                "contiguous_seq": p.contiguous_seq,
                "max_seq": p.max_seq,
                "missing": _ranges(missing),
                "missing_count": len(missing),
                "held_back": p.max_seq - p.contiguous_seq,
            })
    problems = [
        {"post_id": pr.post_id, "seq": pr.seq, "kind": pr.kind, "detail": pr.detail, "at": iso_time(pr.at)}
        for pr in store.problems(post_id, limit)
    ]
    integrity = [pr for pr in problems if pr["kind"] != "gap"]
    return {"post_id": post_id, "gaps": gaps, "problems": problems,
            "integrity_failures": len(integrity), "ok": not gaps and not integrity}


def read_live(host: str, port: int, prefix: str = DEFAULT_PREFIX, *, listen_s: float = 0.0,
              timeout_s: float = 5.0) -> dict[str, dict[str, Any]]:
    """Retained ``status`` of every post (and any ``telemetry`` heard within ``listen_s``), from the broker.

    Returns ``{post_id: {"status": {...} | None, "telemetry": {...} | None}}``. A clean-session client
    with a random id, so it never disturbs the HQ subscribers' persistent sessions.
    """
    import uuid

    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    found: dict[str, dict[str, Any]] = {}
    subscribed = threading.Event()
    last_msg = [time.monotonic()]
    head = prefix.split("/")

    def on_connect(client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        client.subscribe([(f"{prefix}/+/status", 1), (f"{prefix}/+/telemetry", 0)])

    def on_subscribe(client: mqtt.Client, userdata: Any, mid: int, reasons: Any, props: Any) -> None:
        last_msg[0] = time.monotonic()
        subscribed.set()

    def on_message(client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        parts = msg.topic.split("/")
        if len(parts) != len(head) + 2 or not msg.payload:
            return
        post, kind = parts[len(head)], parts[-1]
        try:
            body = json.loads(msg.payload)
        except ValueError:
            body = {"unparsed": bytes(msg.payload[:200]).decode("utf-8", "replace")}
        found.setdefault(post, {"status": None, "telemetry": None})[kind] = body
        last_msg[0] = time.monotonic()

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"hq-query-{uuid.uuid4().hex[:8]}",
                         protocol=mqtt.MQTTv311, clean_session=True)
    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    try:
        client.connect(host, port, keepalive=30)
    except OSError as err:
        raise EdgeError(f"cannot reach the broker at {host}:{port}: {err}") from err
    client.loop_start()
    try:
        if not subscribed.wait(timeout_s):
            raise EdgeError(f"the broker at {host}:{port} did not answer the subscription in {timeout_s:.0f} s")
        # Retained messages follow the SUBACK at once: stop after a short quiet spell (or the listen time).
        end = time.monotonic() + listen_s
        while time.monotonic() < end or time.monotonic() - last_msg[0] < 0.3:
            time.sleep(0.05)
    finally:
        client.disconnect()
        client.loop_stop()
    return found


def posts_offline(store: EventStore, live: dict[str, dict[str, Any]] | None = None, *,
                  stale_after_s: float = DEFAULT_STALE_S, now: float | None = None) -> dict[str, Any]:
    """Which posts are offline, by their last status: read live from the broker when ``live`` is given,
    else as the HQ subscriber recorded it; a post with no status at all that has not sent an event for
    ``stale_after_s`` is reported ``silent``.

    A post's status is retained and doubles as its MQTT last will, so ``offline`` means it stopped or
    its link died, whichever HQ process or query asks.
    """
    now = time.time() if now is None else now
    states = {p.post_id: p for p in store.posts()}
    rows = []
    for post in sorted(set(states) | set(live or {})):
        st = states.get(post)
        status = (live or {}).get(post, {}).get("status")
        seen = st.last_seen if st else None
        age = None if seen is None else max(0.0, now - seen)
        status_at: Any = None
        if isinstance(status, dict) and status.get("state") in ("online", "offline"):
            state, source, status_at = str(status["state"]), "broker", status.get("at")
        elif st is not None and st.status in ("online", "offline"):
            state, source, status_at = str(st.status), "store", iso_time(st.status_at)
        elif age is not None and age > stale_after_s:
            state, source = "silent", "last_event"
        elif age is not None:
            state, source = "online", "last_event"
        else:
            state, source = "unknown", "none"
        rows.append({
            "post_id": post,
            "state": state,
            "source": source,
            "status_at": status_at,
            "last_event_at": iso_time(seen),
            "last_event_age_s": None if age is None else round(age, 1),
        })
    offline = [r for r in rows if r["state"] in ("offline", "silent")]
    return {"checked_broker": live is not None, "stale_after_s": stale_after_s, "posts": rows,
            "offline": [r["post_id"] for r in offline], "count_offline": len(offline)}


def backlog(store: EventStore, live: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Per post: what HQ holds back (received above a gap, not yet acknowledged) and, from telemetry,
    what the post itself still has to deliver."""
    rows = []
    states = {p.post_id: p for p in store.posts()}
    for post in sorted(set(states) | set(live or {})):
        st = states.get(post)
        tele = (live or {}).get(post, {}).get("telemetry")
        post_backlog = post_oldest = None
        if isinstance(tele, dict):
            b = tele.get("backlog")
            if isinstance(b, dict):  # customs.telemetry/1 (the controller's status document)
                post_backlog, post_oldest = b.get("events"), b.get("oldest_age_s")
            elif isinstance(b, int):  # the uplink's own status() form
                post_backlog, post_oldest = b, tele.get("oldest_undelivered_age_s")
        rows.append({
            "post_id": post,
            "acked_seq": st.contiguous_seq if st else None,
            "max_seq": st.max_seq if st else None,
            "held_back_at_hq": (st.max_seq - st.contiguous_seq) if st else None,
            "missing_at_hq": len(store.missing_seqs(post)) if st else None,
            "post_backlog": post_backlog,
            "post_oldest_age_s": post_oldest,
        })
    return {"checked_broker": live is not None, "posts": rows}


# -- CLI -------------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="customs-edge hq query",
        description="Ask HQ's store: recent crossings, plate search (fuzzy), gaps and integrity failures,"
                    " posts offline, backlog per post. Data on stdout; --json for machines.")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--db", "--store", dest="store", default=DEFAULT_STORE,
                        help="SQLite path, sqlite:///PATH or postgresql://USER@HOST:5432/DB[?schema=NAME]"
                             " (default %(default)s)")
    common.add_argument("--json", action="store_true", help="machine-readable output")
    live = argparse.ArgumentParser(add_help=False)
    live.add_argument("--broker", metavar="HOST:PORT", help="read posts' retained status/telemetry from this broker")
    live.add_argument("--prefix", default=DEFAULT_PREFIX, help="topic prefix (default %(default)s)")
    live.add_argument("--listen", type=float, default=0.0, metavar="S",
                      help="also listen this long for telemetry (not retained)")
    sub = ap.add_subparsers(dest="what", required=True)
    p = sub.add_parser("recent", parents=[common], help="recent crossings of a post (and lane)")
    p.add_argument("post_id")
    p.add_argument("--lane")
    p.add_argument("--limit", type=int, default=20)
    p = sub.add_parser("plate", parents=[common], help="search crossings by plate (fuzzy by default)")
    p.add_argument("text")
    p.add_argument("--exact", action="store_true", help="no fuzzy matching")
    p.add_argument("--limit", type=int, default=50)
    p = sub.add_parser("gaps", parents=[common], help="missing seqs and integrity failures")
    p.add_argument("--post")
    p.add_argument("--limit", type=int, default=100)
    p = sub.add_parser("offline", parents=[common, live], help="posts offline (last status) or silent")
    p.add_argument("--stale", type=float, default=DEFAULT_STALE_S, metavar="S",
                   help="no event for this long counts as silent (default %(default)s)")
    sub.add_parser("backlog", parents=[common, live], help="backlog per post")
    return ap


def _live(args: argparse.Namespace) -> dict[str, dict[str, Any]] | None:
    if not args.broker:
        return None
    host, _, port = args.broker.rpartition(":")
    if not host or not port.isdigit():
        raise EdgeError(f"--broker must be HOST:PORT, got {args.broker!r}")
    return read_live(host, int(port), args.prefix, listen_s=args.listen)


def _text(what: str, r: dict[str, Any]) -> str:
    lines: list[str] = []
    if what in ("recent", "plate"):
        rows = r["crossings"] if what == "recent" else r["matches"]
        head = (f"{r['count']} crossing(s) at {r['post_id']}" + (f" lane {r['lane_id']}" if r["lane_id"] else "")
                if what == "recent" else f"{r['count']} match(es) for {r['normalised']}"
                + (" (fuzzy)" if r["fuzzy"] else ""))
        lines.append(head)
        for c in rows:
            dist = f" d={c['distance']}" if what == "plate" else ""
            weight = f"{c['gross']:g} {c['unit']}" if c["gross"] is not None else "-"
            adr = f"  ADR {','.join(c['adr'])}" if c["adr"] else ""
            lines.append(f"  {c['first_seen'] or '-'}  {c['post_id']}/{c['lane_id']} #{c['seq']}  "
                         f"{c['plate_display'] or '(unread)'}{dist}  {weight}{adr}  {','.join(c['flags'])}")
    elif what == "gaps":
        lines.append("OK: no gaps, no integrity failures" if r["ok"] else
                     f"{len(r['gaps'])} post(s) with gaps, {r['integrity_failures']} integrity failure(s)")
        for g in r["gaps"]:
            lines.append(f"  {g['post_id']}: acked {g['contiguous_seq']}, highest {g['max_seq']},"
                         f" missing {', '.join(g['missing']) or '-'}")
        for pr in r["problems"]:
            lines.append(f"  {pr['at']}  {pr['post_id']} seq {pr['seq']}  {pr['kind']}: {pr['detail']}")
    elif what == "offline":
        lines.append(f"{r['count_offline']} post(s) offline")
        for p in r["posts"]:
            lines.append(f"  {p['post_id']}: {p['state']} ({p['source']}), last event {p['last_event_at'] or '-'}")
    else:
        for p in r["posts"]:
            lines.append(f"  {p['post_id']}: acked {p['acked_seq']}, held at HQ {p['held_back_at_hq']},"
                         f" missing {p['missing_at_hq']}, post backlog {p['post_backlog']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Exit 0 with data on stdout; 1 when ``gaps`` finds problems (for cron and monitoring); 2 on errors."""
    args = _parser().parse_args(argv)
    try:
        store = open_store_url(args.store)
    except StorageError as err:
        print(f"customs-edge hq query: {err}", file=sys.stderr)
        return 2
    try:
        if args.what == "recent":
            result = recent_crossings(store, args.post_id, args.lane, args.limit)
        elif args.what == "plate":
            result = search_plate(store, args.text, fuzzy=not args.exact, limit=args.limit)
        elif args.what == "gaps":
            result = integrity_report(store, args.post, args.limit)
        elif args.what == "offline":
            result = posts_offline(store, _live(args), stale_after_s=args.stale)
        else:
            result = backlog(store, _live(args))
    except EdgeError as err:
        print(f"customs-edge hq query: {err}", file=sys.stderr)
        return 2
    finally:
        store.close()
    print(json.dumps(result, indent=2, ensure_ascii=False) if args.json else _text(args.what, result))
    return 1 if args.what == "gaps" and not result["ok"] else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
