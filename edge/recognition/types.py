"""What the plate reader returns: one ``PlateRead`` per plate found in a picture."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from edge.recognition.confidence import ReadEvidence


@dataclass(frozen=True)
class PlateRead:
    """A plate found in one frame.

    ``text`` is normalised (upper case, no spaces or dashes) and is what HQ matches on; ``display``
    is the same text laid out as the country writes it (``01 A 123 BC``). ``country`` is an ISO
    3166-1 alpha-2 code, or None when no known syntax matched. For a plate, ``confidence`` is the
    probability that ``text`` is exactly right (``edge.recognition.confidence``) and ``evidence``
    what it was computed from; for container codes and ADR plates it is the recognizer's mean
    character probability. ``country_read`` says the country was read off the plate (its printed
    code, beside the text or in the EU band), not only inferred from which format the text fits:
    many formats are shared (``LLL DDD`` is Lithuanian, Hungarian, Moldovan...).
    """

    text: str
    confidence: float
    box: tuple[int, int, int, int]
    display: str = ""
    country: str | None = None
    syntax: str | None = None
    raw_text: str = ""
    camera: str = ""
    frame_seq: int = -1
    timestamp: float = 0.0
    kind: str = "plate"  # "plate", "container", "adr"
    evidence: ReadEvidence | None = None
    country_read: bool = False

    @property
    def hazard_un(self) -> tuple[str, str] | None:
        """An ADR plate's (hazard number, UN number), which the reader writes as ``hazard/UN``; None
        for any other read, or an ADR read without its second line."""
        if self.kind != "adr":
            return None
        hazard, slash, un = self.text.partition("/")
        return (hazard, un) if slash and hazard and un else None

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["box"] = list(self.box)
        return d
