"""Statements from a Zammad: the organizations, their plan history and their tickets.

- organizations: ``GET /api/v1/organizations`` (paged), with policydesk's attributes;
- plan history: ``GET /api/v1/organizations/history/ID`` (Zammad's
  OrganizationsController#history: ``history_get(true)``, the same shape as a ticket's
  history) — the changes of the ``support_plan`` attribute; when Zammad has no history
  for it, the plan each ticket was evaluated under is used instead (see `compute`);
- tickets: replay's export (`integrations.replay.zammad_source.export_tickets`) for the
  six months of the trend, restricted to the organizations asked for.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Mapping, Sequence
from zoneinfo import ZoneInfo

from integrations.replay.run import policy_version
from integrations.replay.zammad_source import ZammadExport, export_tickets
from integrations.statement.compute import TREND_MONTHS, Month, Statement, build_statement
from integrations.zammad import mapping
from integrations.zammad.errors import ZammadNotFound
from integrations.zammad.resources import iter_all
from plugin.errors import UserError
from plugin.model import Policies

__all__ = ["plan_changes", "statements_from_zammad"]


def plan_changes(client: Any, organization_id: int) -> list[tuple[dt.datetime, str]]:
    """(instant, new plan) for every change of the organization's ``support_plan``, oldest
    first; the plan before the first change is dated at the epoch. Empty when Zammad keeps no
    history of it."""
    try:
        answer = client.organizations._call("GET", f"organizations/history/{int(organization_id)}")
    except ZammadNotFound:
        return []
    history = (answer or {}).get("history") if isinstance(answer, Mapping) else answer
    changes: list[tuple[dt.datetime, str]] = []
    for entry in history or []:
        if not isinstance(entry, Mapping) or entry.get("attribute") != mapping.ORG_SUPPORT_PLAN:
            continue
        at = mapping.parse_instant(entry.get("created_at"))
        if at is None:
            continue
        before, after = mapping._text(entry.get("value_from")), mapping._text(entry.get("value_to"))
        if not changes and before:
            changes.append((dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc), before))
        if after:
            changes.append((at, after))
    return sorted(changes)


def statements_from_zammad(
    client: Any,
    policies: Policies,
    month: Month,
    *,
    organization_ids: Sequence[int] | None = None,
    as_of: dt.datetime | None = None,
    report: ZammadExport | None = None,
) -> list[Statement]:
    """One statement per organization (every organization when ``organization_ids`` is
    ``None``; an unknown id is a `UserError`)."""
    as_of = as_of or dt.datetime.now(dt.timezone.utc)
    zone = ZoneInfo(policies.default_timezone)
    organizations = {int(o["id"]): o for o in iter_all(client.organizations) if o.get("id") is not None}
    if organization_ids is not None:
        unknown = [i for i in organization_ids if i not in organizations]
        if unknown:
            raise UserError(f"--organization: no organization {', '.join(map(str, unknown))} in Zammad")
        wanted = {i: organizations[i] for i in organization_ids}
    else:
        wanted = organizations
    first = month
    for _ in range(TREND_MONTHS - 1):
        first = first.previous()
    records = list(export_tickets(client, first.start(zone), report, organization_ids=set(wanted)))
    version = policy_version(policies)
    statements = []
    for org_id, record in sorted(wanted.items()):
        name = str(record.get("name") or org_id)
        mine = [r for r in records if r.organization in (name, str(org_id))]
        key = mine[0].organization if mine else name
        organization = mapping.organization_from_record(record)
        statements.append(build_statement(
            mine, month, policies, organization=str(org_id), organization_name=name, organization_key=key,
            policy_version=version, as_of=as_of, plan_changes=plan_changes(client, org_id),
            account_managers=organization.account_managers,
        ))
    return statements
