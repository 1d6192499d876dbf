"""Ticket history as Zammad keeps it (app/models/concerns/has_history.rb, app/models/history.rb).

Every saved change of a column is logged ('updated' with the attribute, its old and
new value, and for ``*_id`` columns the ids plus the related record's name) except
created_at/updated_at/created_by_id/updated_by_id and the Ticket's
``history_attributes_ignored`` (create_article_type_id, create_article_sender_id,
article_count, preferences; app/models/ticket.rb).  So a value typed into a custom
field stays in the history after the field is cleared.  Tags (Tag::WritesToTicketHistory),
mentions (app/models/mention.rb#history_log_attributes) and articles log 'added' /
'removed' / 'created' entries against the ticket.  Escalation columns are written with
``update_columns`` (app/models/ticket/escalation.rb) and so are not logged.
"""

from __future__ import annotations

from typing import Any, Mapping

#: has_history.rb defaults + app/models/ticket.rb history_attributes_ignored.
TICKET_HISTORY_IGNORED = frozenset({
    "created_at", "updated_at", "created_by_id", "updated_by_id", "create_article_type_id",
    "create_article_sender_id", "article_count", "preferences",
    # escalation columns are written with update_columns (no callbacks); the contact
    # bookkeeping columns are left out too (a stand-in simplification: they carry no typed data)
    "first_response_escalation_at", "first_response_in_min", "first_response_diff_in_min",
    "close_escalation_at", "close_in_min", "close_diff_in_min", "update_escalation_at", "update_in_min",
    "update_diff_in_min", "escalation_at", "last_contact_at", "last_contact_agent_at",
    "last_contact_customer_at", "last_owner_update_at",
})
_RELATED_TABLES = {"group_id": "groups", "state_id": "ticket_states", "priority_id": "ticket_priorities",
                   "organization_id": "organizations", "owner_id": "users", "customer_id": "users"}


class HistoryMixin:
    """Mixed into State."""

    def history_log(self, history_type: str, o_id: int, user_id: int, *, history_object: str = "Ticket",
                    **attributes: Any) -> dict[str, Any]:
        """History.add: one row of the histories table."""
        now = self.clock.now()  # type: ignore[attr-defined]
        values = {"o_id": o_id, "history_type": history_type, "history_object": history_object,
                  "created_by_id": user_id, "created_at": now, "updated_at": now, **attributes}
        return self.insert("histories", values)  # type: ignore[attr-defined]

    def history_update(self, ticket: Mapping[str, Any], before: Mapping[str, Any], user_id: int) -> None:
        """has_history.rb#history_update for a ticket: one 'updated' row per changed column."""
        for key, new in ticket.items():
            if key.startswith("_") or key in TICKET_HISTORY_IGNORED or before.get(key) == new:
                continue
            old = before.get(key)
            attribute = key[:-3] if key.endswith("_id") else key
            values: dict[str, Any] = {"history_attribute": attribute, "value_from": _text(old),
                                      "value_to": _text(new)}
            if key.endswith("_id"):
                values.update(id_from=old, id_to=new)
                table = _RELATED_TABLES.get(key)
                if table is not None:
                    values.update(value_from=self._history_name(table, old), value_to=self._history_name(table, new))
            self.history_log("updated", ticket["id"], user_id, **values)

    def _history_name(self, table: str, rid: Any) -> str:
        record = self.find(table, rid) if rid is not None else None  # type: ignore[attr-defined]
        if record is None:
            return _text(rid)
        if table == "users":  # the user's fullname (User#fullname)
            name = f"{record.get('firstname') or ''} {record.get('lastname') or ''}".strip()
            return name or str(record.get("login") or "")
        return str(record.get("name") or "")

    def ticket_history(self, ticket_id: int) -> list[dict[str, Any]]:
        """History.list('Ticket', id, related objects) as GET /ticket_history/:id lists it."""
        rows = [h for h in self.all("histories")  # type: ignore[attr-defined]
                if (h["history_object"] == "Ticket" and h["o_id"] == ticket_id)
                or (h.get("related_history_object") == "Ticket" and h.get("related_o_id") == ticket_id)]
        return [{"id": h["id"], "o_id": h["o_id"], "object": h["history_object"], "type": h["history_type"],
                 "attribute": h["history_attribute"], "value_from": h["value_from"], "value_to": h["value_to"],
                 "id_from": h["id_from"], "id_to": h["id_to"], "related_o_id": h["related_o_id"],
                 "related_object": h["related_history_object"], "created_by_id": h["created_by_id"],
                 "created_at": h["created_at"]} for h in rows]


def _text(value: Any) -> str:
    """Ruby's ``to_s`` of a logged value (nil -> '')."""
    if value is None:
        return ""
    if value is True or value is False:
        return "true" if value else "false"
    return str(value)
