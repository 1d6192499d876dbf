"""Escalation (placeholder until the calendar port lands): no escalation is computed yet."""

from __future__ import annotations

from typing import Any


class EscalationMixin:
    """Mixed into State."""

    def escalation_update(self, ticket: dict[str, Any]) -> None:
        """Not computed yet (issue 11 part 5)."""
        return None
