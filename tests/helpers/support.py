"""Paths and time helpers shared by the tests (import from here, not from conftest:
tests/zammad has a conftest of its own, and both would be the module ``conftest``)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

REPO = Path(__file__).resolve().parents[2]
POLICIES = REPO / "policies"
ZURICH = ZoneInfo("Europe/Zurich")


def zurich(text: str) -> dt.datetime:
    """A Zurich wall-clock time, e.g. zurich("2026-11-27 21:00")."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=ZURICH)
