"""One replayed ticket's first-response verdict, and the names of the verdicts."""

from __future__ import annotations

import datetime as dt
from typing import Any, NamedTuple

from integrations.replay.records import format_instant

__all__ = ["MET", "BREACHED", "NO_TARGET", "UNANSWERED", "PAUSED", "STATUSES", "ACCEPTED", "REFUSED", "Outcome"]

MET, BREACHED, NO_TARGET, UNANSWERED, PAUSED = "met", "breached", "no_target", "unanswered", "paused"
STATUSES = (MET, BREACHED, NO_TARGET, UNANSWERED, PAUSED)
ACCEPTED, REFUSED = "accepted", "refused"


class Outcome(NamedTuple):
    """The replayed first-response verdict for one ticket."""

    id: str
    plan: str
    channel: str
    #: Calendar whose opening hours counted.
    calendar: str
    #: The plan's guaranteed first response in business minutes; ``None``: no guarantee.
    target_minutes: int | None
    #: ``"accepted"``, ``"refused"`` or ``""`` (not requested).
    emergency: str
    due: dt.datetime | None
    status: str
    response_minutes: float | None
    margin_minutes: float | None
    created_at: dt.datetime
    first_response_at: dt.datetime | None
    #: The organization the ticket came from (name or id, as the input gave it).
    organization: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "plan": self.plan, "channel": self.channel, "calendar": self.calendar,
            "target_minutes": self.target_minutes, "emergency": self.emergency or None,
            "created_at": format_instant(self.created_at),
            "due": None if self.due is None else format_instant(self.due),
            "first_response_at": None if self.first_response_at is None else format_instant(self.first_response_at),
            "status": self.status,
            "organization": self.organization,
            "response_minutes": _round(self.response_minutes), "margin_minutes": _round(self.margin_minutes),
        }


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 3)
