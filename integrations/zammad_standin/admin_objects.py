"""Calendars, SLAs, triggers and webhooks: the admin objects policydesk sync writes
(calendars_controller.rb, slas_controller.rb, triggers_controller.rb, webhooks_controller.rb;
validations from app/models/calendar.rb, sla.rb, trigger.rb, webhook.rb)."""

from __future__ import annotations

import copy
import re
from typing import Any, Mapping

from integrations.zammad_standin.errors import Unprocessable, validation_failed
from integrations.zammad_standin.render import SECRET_MASK, SECRET_WEBHOOK_COLUMNS


class AdminObjectsMixin:
    """Mixed into State."""

    def create_generic(self, table: str, params: Mapping[str, Any], actor: int) -> dict[str, Any]:
        with self.lock:
            params = self.lookup_names(table, dict(params))
            clean = self.cleanup(table, params, new=True)
            _validate_generic(self, table, clean, None)
            clean["created_by_id"] = clean["updated_by_id"] = actor
            record = self.insert(table, clean)
            if table in ("slas", "calendars"):
                self.escalation_rebuild()
            return record

    def update_generic(self, table: str, rid: Any, params: Mapping[str, Any], actor: int) -> dict[str, Any]:
        with self.lock:
            record = self.get(table, rid)
            params = self.lookup_names(table, dict(params))
            clean = self.cleanup(table, params, new=False)
            if table == "webhooks":  # the mask sent back means "keep the stored secret"
                for key in SECRET_WEBHOOK_COLUMNS:
                    if clean.get(key) == SECRET_MASK:
                        clean.pop(key)
            _validate_generic(self, table, clean, record)
            record.update(copy.deepcopy(clean))
            self.touch(record, actor)
            if table in ("slas", "calendars"):
                self.escalation_rebuild()
            return record

    def delete_generic(self, table: str, rid: Any) -> None:
        with self.lock:
            record = self.get(table, rid)
            if table == "calendars" and any(s["calendar_id"] == record["id"] for s in self.all("slas")):
                raise Unprocessable("Can't delete, object has references.")
            del self.tables[table][record["id"]]
            if table in ("slas", "calendars"):
                self.escalation_rebuild()


def _validate_generic(state: Any, table: str, clean: dict[str, Any], record: Mapping[str, Any] | None) -> None:
    merged = dict(state.columns(table))
    merged.update(record or {})
    merged.update(clean)
    if not str(merged.get("name") or "").strip():
        raise validation_failed("Name can't be blank")
    other = state.by_name(table, merged["name"])
    if other is not None and (record is None or other["id"] != record["id"]):
        raise validation_failed("Name has already been taken")
    if table == "webhooks":
        if not re.match(r"^https?://", str(merged.get("endpoint") or "")):
            raise Unprocessable("Invalid endpoint (no http/https)!")
    if table == "slas":
        if merged.get("calendar_id") in (None, ""):
            raise validation_failed("Calendar can't be blank")
        for key in ("first_response_time", "update_time", "response_time", "solution_time"):
            if merged.get(key) not in (None, "") and not str(merged[key]).lstrip("-").isdigit():
                raise validation_failed(f"{key} is not a number")
    if table == "triggers":
        if not isinstance(merged.get("condition"), dict) or not merged["condition"]:
            raise validation_failed("Condition can't be blank")
        if not isinstance(merged.get("perform"), dict) or not merged["perform"]:
            raise validation_failed("Perform can't be blank")
        if merged.get("activator") not in ("action", "time"):
            raise Unprocessable(f"Invalid activator '{merged.get('activator')}'")
        if merged.get("execution_condition_mode") not in ("selective", "always"):
            raise Unprocessable(f"Invalid execution_condition_mode '{merged.get('execution_condition_mode')}'")
    if table == "calendars" and merged.get("timezone"):
        try:
            from zoneinfo import ZoneInfo  # noqa: PLC0415

            ZoneInfo(str(merged["timezone"]))
        except Exception:  # noqa: BLE001
            raise validation_failed(f"Timezone {merged['timezone']} is invalid") from None

