from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

REPO = Path(__file__).resolve().parent.parent
POLICIES = REPO / "policies"
ZURICH = ZoneInfo("Europe/Zurich")


def zurich(text: str) -> dt.datetime:
    """A Zurich wall-clock time, e.g. zurich("2026-11-27 21:00")."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=ZURICH)


@pytest.fixture(scope="session")
def bundled_policies():
    from plugin.policy import load_policies

    return load_policies(POLICIES)
