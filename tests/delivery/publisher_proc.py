"""A controller-like publisher process for the SIGKILL test: journal + uplink, as the controller wires them.

``produce``: append events as fast as the disk allows (printing each committed seq) while the uplink
publishes; it runs until killed. ``drain``: only deliver what the journal holds, exit 0 when HQ has
acknowledged everything.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from edge.config import BrokerSection
from edge.outbox.journal import Journal
from edge.outbox.signing import PostKey
from edge.outbox.uplink import Uplink
from tests.delivery.harness import event_payload


def main() -> int:
    data_dir, post_id, host, port, mode = sys.argv[1:6]
    d = Path(data_dir)
    journal = Journal(d / "journal.sqlite", PostKey.load_or_create(d / "post.key"), post_id)
    broker = BrokerSection.model_validate(
        {"host": host, "port": int(port), "client_id": f"post-{post_id}", "ack_timeout_s": 2.0,
         "session_expiry_s": 60}
    )
    uplink = Uplink(broker, post_id, journal)
    uplink.start()
    if mode == "drain":
        deadline = time.monotonic() + 60
        while journal.last_ack() < journal.last_seq() and time.monotonic() < deadline:
            time.sleep(0.02)
        uplink.stop()
        return 0 if journal.last_ack() == journal.last_seq() else 1
    i = 0
    while True:
        seq = journal.append(event_payload(post_id, f"lane{i % 2 + 1}", i)).seq
        uplink.kick()
        print(seq, flush=True)
        i += 1
        time.sleep(0.002)


if __name__ == "__main__":
    sys.exit(main())
