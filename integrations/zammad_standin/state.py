"""The stand-in's State: one object with every Zammad model family mixed in.

``Store`` (store.py) holds the tables; each mixin adds one family's writes:
users.py (users, organizations, groups), tickets.py (tickets, articles, transactions),
tags_mentions.py, object_manager.py, admin_objects.py (calendars, SLAs, triggers,
webhooks), history.py, escalation.py; render.py renders records as Zammad's JSON.
Names other modules and tests import from here are re-exported.
"""

from __future__ import annotations

from integrations.zammad_standin.admin_objects import AdminObjectsMixin
from integrations.zammad_standin.errors import (
    ApiError,
    Forbidden,
    NotAuthorized,
    NotFound,
    ServerError,
    Unprocessable,
    statement_invalid,
    validation_failed,
)
from integrations.zammad_standin.escalation import EscalationMixin
from integrations.zammad_standin.history import HistoryMixin
from integrations.zammad_standin.object_manager import ObjectManagerMixin
from integrations.zammad_standin.render import Renderings
from integrations.zammad_standin.schema import ATTRIBUTE_OBJECTS, CALENDAR_COLUMNS, COLUMNS, MODEL_NAMES
from integrations.zammad_standin.store import Clock, Store, format_ms
from integrations.zammad_standin.tags_mentions import TagsMentionsMixin
from integrations.zammad_standin.tickets import TicketsMixin
from integrations.zammad_standin.users import UsersMixin


class State(Renderings, UsersMixin, TicketsMixin, TagsMentionsMixin, ObjectManagerMixin, AdminObjectsMixin,
            HistoryMixin, EscalationMixin, Store):
    """All records of one stand-in Zammad, plus its logs and fault injector."""


__all__ = ["State", "ApiError", "Forbidden", "NotAuthorized", "NotFound", "ServerError", "Unprocessable",
           "statement_invalid", "validation_failed", "Clock", "format_ms", "ATTRIBUTE_OBJECTS", "CALENDAR_COLUMNS",
           "COLUMNS", "MODEL_NAMES"]
