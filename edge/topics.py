"""The MQTT topic layout, in one place so the post, HQ, the ACLs and the AsyncAPI document agree.

    <prefix>/<post>/events/<lane>   post -> HQ   vehicle events, QoS 1, not retained
    <prefix>/<post>/status          post -> HQ   "online"/"offline" JSON, retained, also the last will
    <prefix>/<post>/telemetry       post -> HQ   live state of lanes, devices, backlog; QoS 0
    <prefix>/<post>/ack             HQ -> post   highest sequence HQ stored with no gap; retained, QoS 1
    <prefix>/<post>/cmd             HQ -> post   signed commands (watchlist, declarations, reload, diag)
    <prefix>/<post>/cmd/result      post -> HQ   the answer to each command, QoS 1
    <prefix>/<post>/diag/test       both         the post's own round-trip test topic (edgectl mqtt check)

``<prefix>`` defaults to ``customs/v1``. A post may publish only under its own ``<post>`` and read only
its own ``ack``, ``cmd`` and ``diag`` topics (see deploy/mosquitto ACLs).
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_PREFIX = "customs/v1"


@dataclass(frozen=True)
class Topics:
    post_id: str
    prefix: str = DEFAULT_PREFIX

    @property
    def base(self) -> str:
        return f"{self.prefix}/{self.post_id}"

    def events(self, lane_id: str) -> str:
        return f"{self.base}/events/{lane_id}"

    @property
    def events_all(self) -> str:
        return f"{self.base}/events/+"

    @property
    def status(self) -> str:
        return f"{self.base}/status"

    @property
    def telemetry(self) -> str:
        return f"{self.base}/telemetry"

    @property
    def ack(self) -> str:
        return f"{self.base}/ack"

    @property
    def cmd(self) -> str:
        return f"{self.base}/cmd"

    @property
    def cmd_result(self) -> str:
        return f"{self.base}/cmd/result"

    @property
    def diag_test(self) -> str:
        return f"{self.base}/diag/test"


def all_posts_events(prefix: str = DEFAULT_PREFIX) -> str:
    """What HQ subscribes to (inside ``$share/<group>/`` when several HQ processes split the load)."""
    return f"{prefix}/+/events/+"


def post_of(topic: str, prefix: str = DEFAULT_PREFIX) -> str | None:
    """The post id in a topic under ``prefix``, or None for a topic outside the layout."""
    head = prefix + "/"
    if not topic.startswith(head):
        return None
    rest = topic[len(head) :].split("/", 1)
    return rest[0] or None
