"""The queued Zammad side of a billing event.

`billing_job` returns the handler the `Processor` runs for jobs from source
``"billing"``. It writes the organization's *current* subscription, as the store has it
(not the event's values: jobs processed late or out of order still converge on the
latest state), to the Zammad organization -- ``support_plan``, ``account_manager``,
``technical_account_manager``, ``commitment_end`` and ``support_code``, only what differs -- then re-evaluates
every open ticket of the organization through ``processor.reconcile_ticket``, so an
upgrade moves a first-response deadline forward at once.

A refused event's job does nothing. Every step is a diff, so a retried job has one effect.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any, Callable, Iterator

from integrations.billing.handler import OUTCOME_HEADER
from integrations.service.worker import PermanentError
from integrations.store import Job, Store
from integrations.support_code import ORG_SUPPORT_CODE, support_code
from integrations.zammad import mapping
from integrations.zammad.errors import ZammadNotFound

log = logging.getLogger("policydesk.billing")

__all__ = ["billing_job", "open_tickets", "organization_attributes", "sync_organization"]



def organization_attributes(store: Store, org_ref: str, default_plan: str | None = None) -> dict[str, Any]:
    """What the Zammad organization should hold, from the store (``None``/"" clears)."""
    subscription = store.get_subscription(org_ref)
    managers = store.managers_of(org_ref)
    plan = subscription.plan if subscription is not None else default_plan
    end = subscription.commitment_end if subscription is not None else None
    wanted: dict[str, Any] = {mapping.ORG_SUPPORT_PLAN: plan,
                              mapping.ORG_COMMITMENT_END: end.date().isoformat() if end else None}
    for role, attribute in mapping.ROLE_ATTRIBUTES.items():
        wanted[attribute] = managers.get(role, "")
    wanted[ORG_SUPPORT_CODE] = support_code(int(org_ref))  # written with the rest: one update
    return wanted


def sync_organization(adapter: Any, store: Store, organization_id: int, org_ref: str) -> dict[str, Any]:
    """Write the organization's plan, managers and commitment end where they differ; returns
    what was written (empty when nothing differed)."""
    client = adapter.client
    record = client.organizations.find(organization_id)
    changes = mapping.attribute_changes(record, organization_attributes(store, org_ref))
    if changes:
        client.organizations.update(organization_id, changes)
    return changes


def open_tickets(adapter: Any, organization_id: int) -> Iterator[int]:
    """Ids of the organization's open tickets (`integrations.zammad.search`: a condition
    search, run as SQL by Zammad with or without Elasticsearch, paged)."""
    from integrations.zammad.search import open_tickets_of_organization

    for record in open_tickets_of_organization(adapter.client, organization_id):
        yield int(record["id"])


def billing_job(processor_like: Any, store: Store, adapter: Any) -> Callable[[Job, dt.datetime], str]:
    """The handler for jobs from source ``"billing"``: ``handler(job, now) -> outcome``.

    ``processor_like`` needs ``reconcile_ticket(ticket_id, now)``.
    """

    def handle(job: Job, now: dt.datetime) -> str:
        if job.headers.get(OUTCOME_HEADER) == "refused":
            return "skipped: refused"
        try:
            event = json.loads(job.body)
            organization_id = int(event["organization"]["zammad_organization_id"])
        except (ValueError, KeyError, TypeError) as error:
            raise PermanentError(f"stored billing event has no organization: {type(error).__name__}") from None
        org_ref = str(organization_id)
        try:
            written = sync_organization(adapter, store, organization_id, org_ref)
        except ZammadNotFound:
            raise PermanentError(f"Zammad has no organization {organization_id}") from None
        reconciled = 0
        # The organization once, each open ticket's record from the search page: no read per ticket.
        from integrations.zammad.search import open_tickets_of_organization

        organization = adapter.client.organizations.find(organization_id, expand=True)
        for record in open_tickets_of_organization(adapter.client, organization_id):
            ticket_id = int(record["id"])
            try:
                processor_like.reconcile_ticket(ticket_id, now, record=record, organization=organization)
            except ZammadNotFound:
                log.info("ticket %s vanished while re-evaluating organization %s", ticket_id, organization_id)
                continue
            reconciled += 1
        log.info("billing event %s: organization %s: wrote %s; re-evaluated %d open ticket(s)",
                 job.delivery_id, organization_id, sorted(written) or "nothing", reconciled)
        return "applied" if written else "unchanged"  # a fixed word: it is a metrics label

    return handle
