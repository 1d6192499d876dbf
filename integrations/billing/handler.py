"""The billing webhook's decision: validate, deduplicate, decide, record, enqueue.

`BillingReceiver` is the ``BillingHandler`` `integrations.service.app.WebhookService`
calls with a verified (signed, fresh, JSON object) event. It answers at once:

* ``422 {"error": "$.path: message"}`` -- the event breaks the contract (schema, unknown
  plan, impossible date, a commitment shorter than the plan's minimum). Nothing stored.
* ``201`` (a first subscription) / ``200`` ``{"status": "applied", ...}`` -- recorded; the
  Zammad side (organization attributes, open tickets re-evaluated) is queued.
* ``409 {"status": "refused", "reason": ...}`` -- the contract forbids it (a downgrade, a
  cancellation inside the commitment). Recorded in the audit; nothing changes.
* ``200 {"status": "duplicate"}`` -- this event id was applied before; a refused event id
  answers its 409 again.

The event (``store.receive``), the subscription, the account managers, the VIP-code hash
and the audit record are written in one transaction: all or nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from functools import lru_cache
from typing import Any, Callable, Mapping

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from integrations.billing import SCHEMA_PATH, audit_subject, org_ref_for
from integrations.billing.onboarding import OrganizationLookup, managers_from_zammad
from integrations.billing.rules import ChangeRequest, Current, Ruling, add_months, current_subscription, rules_for
from integrations.billing.managers import assignment_problem, reassign
from integrations.billing.scheduled import schedule_cancellation, withdraw_cancellation
from integrations.store import Store
from integrations.vip import issue_vip_code
from plugin.errors import UserError
from integrations.zammad.errors import ZammadUnavailable
from integrations.zammad import mapping
from plugin.model import Organization, Policies

log = logging.getLogger("policydesk.billing")

__all__ = ["BillingReceiver", "EventError", "OUTCOME_HEADER", "parse_event", "validate_event"]

#: Job header telling the queued Zammad side whether the event was applied or refused.
OUTCOME_HEADER = "Policydesk-Billing-Outcome"
ORG_REF_HEADER = "Policydesk-Org-Ref"
#: Audit kinds.
APPLIED, REFUSED = "billing.applied", "billing.refused"


class EventError(UserError):
    """The event breaks the contract: a JSON path and what is wrong there (a 422)."""

    def __init__(self, path: str, message: str) -> None:
        path = path if len(path) <= 200 else path[:200] + "..."
        message = message if len(message) <= 300 else message[:300] + "..."  # never echo a huge value
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


@lru_cache(maxsize=1)
def _validator() -> Draft202012Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def _json_path(parts: Any) -> str:
    out = "$"
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _where(error: ValidationError) -> str:
    """The JSON path of the problem; for a missing field, the path of that field."""
    parts = list(error.absolute_path)
    if error.validator == "required" and isinstance(error.instance, dict):
        missing = [name for name in error.validator_value if name not in error.instance]
        if missing:
            parts.append(missing[0])
    return _json_path(parts)


def _message(error: ValidationError) -> str:
    if error.validator == "required":
        return "required field is missing"
    if error.validator == "not" and "subscription" in error.absolute_path and isinstance(error.instance, dict):
        if "effective" in error.instance and not {"start", "commitment", "billing_period"} & set(error.instance):
            return '"effective" is only for subscription.cancelled'
        return 'a cancellation has no "start", "commitment" or "billing_period" (give "effective" instead)'
    if error.validator == "additionalProperties":
        return error.message.replace("Additional properties are not allowed", "unknown field(s)")
    if error.validator == "pattern" and error.schema.get("format") == "date":
        return f"expected a date YYYY-MM-DD, got {error.instance!r}"
    if error.validator == "pattern" and error.schema.get("format") == "date-time":
        return f"expected an RFC 3339 date-time with an offset (2026-01-05T08:12:44Z), got {error.instance!r}"
    if error.validator in ("minProperties", "maxProperties") and "commitment" in error.absolute_path:
        return 'give exactly one of "months" and "end"'
    return error.message


#: Deepest nesting of arrays and objects an event may have (the schema's own is 3).
MAX_DEPTH = 16
#: Largest organization id: a 4-byte serial, the id column Zammad's organizations table
#: has (zammad/zammad db/migrate/20120101000001_create_base.rb, a Migration[4.2] table).
MAX_ORGANIZATION_ID = 2**31 - 1
_SHOWN = 80  # characters of a value shown in an error message


def _shape_problem(event: Any) -> EventError | None:
    """A structure the schema validator must not see: nested deeper than `MAX_DEPTH`
    (checked iteratively, so a 900-deep array is a 422, not a RecursionError)."""
    stack: list[tuple[Any, str, int]] = [(event, "$", 0)]
    while stack:
        value, path, depth = stack.pop()
        if depth > MAX_DEPTH:
            return EventError(path, f"nested more than {MAX_DEPTH} levels deep")
        if isinstance(value, dict):
            stack.extend((v, f"{path}.{str(k)[:_SHOWN]}", depth + 1) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((v, f"{path}[{i}]", depth + 1) for i, v in enumerate(value))
    return None


def _strict_integers(event: Mapping[str, Any]) -> None:
    """JSON Schema's ``integer`` accepts 6.0 and 1e300; the contract wants JSON integers."""
    org = event.get("organization")
    org_id = org.get("zammad_organization_id") if isinstance(org, dict) else None
    if org_id is not None and (type(org_id) is not int or not 1 <= org_id <= MAX_ORGANIZATION_ID):
        raise EventError("$.organization.zammad_organization_id",
                         f"expected an integer from 1 to {MAX_ORGANIZATION_ID}, got {_show(org_id)}")
    sub = event.get("subscription")
    commitment = sub.get("commitment") if isinstance(sub, dict) else None
    months = commitment.get("months") if isinstance(commitment, dict) else None
    if months is not None and type(months) is not int:
        raise EventError("$.subscription.commitment.months", f"expected a whole number of months, got {_show(months)}")


def _show(value: Any) -> str:
    """A value for an error message: its JSON, cut to a few dozen characters."""
    try:
        text = json.dumps(value)
    except (ValueError, TypeError, RecursionError):
        text = type(value).__name__
    return text if len(text) <= _SHOWN else text[:_SHOWN] + "..."


def validate_event(event: Mapping[str, Any]) -> None:
    """Raise `EventError` for the first schema violation (deepest path first)."""
    problem = _shape_problem(event)
    if problem is not None:
        raise problem
    _strict_integers(event)
    errors = sorted(_validator().iter_errors(event), key=lambda e: (-len(e.absolute_path), list(map(str, e.absolute_path))))
    if errors:
        first = errors[0]
        raise EventError(_where(first), _message(first)[:300])


def _date(value: str, path: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise EventError(path, f"{value!r} is not a real date (YYYY-MM-DD)") from None


def _instant(value: str, path: str) -> dt.datetime:
    try:
        parsed = dt.datetime.fromisoformat(value.replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        raise EventError(path, f"{value!r} is not a real date-time") from None
    if parsed.tzinfo is None:
        raise EventError(path, "a date-time needs an offset (Z or +01:00)")
    return parsed


def parse_event(policies: Policies, event: Mapping[str, Any]) -> tuple[str, ChangeRequest]:
    """Validate ``event`` (schema, then what the schema cannot check) and return its
    organization reference and request. Raises `EventError`."""
    validate_event(event)
    occurred = _instant(event["occurred_at"], "$.occurred_at")
    org = event["organization"]
    sub = event["subscription"]
    plan = sub.get("plan")
    if plan is not None and plan not in policies.plans:
        known = ", ".join(sorted(policies.plans, key=lambda p: policies.plans[p].rank))
        raise EventError("$.subscription.plan", f"unknown plan {plan!r}; expected one of {known}")
    kind = event["type"]
    if kind == "subscription.cancelled":
        effective = _date(sub["effective"], "$.subscription.effective") if "effective" in sub else occurred.date()
        return org_ref_for(org["zammad_organization_id"]), ChangeRequest(kind, plan, effective,
                                                                          occurred_on=occurred.date())
    start = _date(sub["start"], "$.subscription.start")
    commitment = sub["commitment"]
    months = commitment.get("months")
    if "end" in commitment:
        end = _date(commitment["end"], "$.subscription.commitment.end")
        where = "$.subscription.commitment.end"
    else:
        where = "$.subscription.commitment.months"
    try:
        end = end if "end" in commitment else add_months(start, months)
        problem = rules_for(policies).commitment(Organization(), plan, start, end, months).value
    except (ValueError, OverflowError):  # past the year 9999
        raise EventError(where, "the commitment would end after the year 9999") from None
    if problem:
        raise EventError(where, problem)
    for role, person in (sub.get("account_managers") or {}).items():
        refused = assignment_problem(policies, plan, role, person)
        if refused is not None:
            raise EventError(f"$.subscription.account_managers.{role}", refused)
    return org_ref_for(org["zammad_organization_id"]), ChangeRequest(
        kind, plan, start, commitment_end=end, billing_period=sub.get("billing_period"), occurred_on=occurred.date())


def _utc_midnight(day: dt.date | None) -> dt.datetime | None:
    return None if day is None else dt.datetime.combine(day, dt.time(), dt.timezone.utc)


class BillingReceiver:
    """The ``BillingHandler``: ``receiver(event, body, now) -> (status, json body)``.

    ``policies`` is a callable so that a policy reload takes effect on the next event.
    ``organizations`` looks the organization up in Zammad (`onboarding.zammad_organizations`):
    unknown there is a 422 before anything is recorded, Zammad unreachable a 503; ``None``
    (tests without a Zammad) skips the look-up, the onboarding and the partner check.
    """

    def __init__(self, store: Store, policies: Callable[[], Policies],
                 organizations: OrganizationLookup | None = None) -> None:
        self.store = store
        self.policies = policies
        self.organizations = organizations

    def __call__(self, event: Mapping[str, Any], body: bytes, now: dt.datetime) -> tuple[int, dict[str, Any]]:
        policies = self.policies()
        try:
            org_ref, request = parse_event(policies, event)
        except EventError as error:
            log.warning("billing event rejected: %s", error)
            return 422, {"error": str(error), "path": error.path}
        event_id = str(event["id"])
        refused_before = self._refused(event_id)
        if refused_before is not None:  # found by its id, however many refusals came since
            return refused_before
        record_in_zammad: Mapping[str, Any] | None = None
        if self.organizations is not None:
            organization_id = int(event["organization"]["zammad_organization_id"])
            try:
                record_in_zammad = self.organizations(organization_id)
            except ZammadUnavailable as error:
                log.warning("billing event %s: Zammad unavailable to confirm organization %s: %s",
                            event_id, organization_id, type(error).__name__)
                return 503, {"error": "Zammad cannot confirm the organization now; retry later"}
            if record_in_zammad is None:
                return 422, {"error": f"$.organization.zammad_organization_id: Zammad has no organization"
                                      f" {organization_id}", "path": "$.organization.zammad_organization_id"}
        store = self.store
        with store.atomic():
            _serialise(store, f"billing:{org_ref}")
            current = store.get_subscription(org_ref)
            first = current is None
            organization = mapping.organization_from_record(record_in_zammad)
            state = _current(current) if current is not None else current_subscription(policies, None, organization)
            verdict = rules_for(policies).rule(organization, state, request)  # eligibility, then the change
            ruling = verdict.value
            onboarded = current is None and state is not None
            headers = {OUTCOME_HEADER: "applied" if ruling.allowed else "refused", ORG_REF_HEADER: org_ref}
            received = store.receive("billing", event_id, body, headers, now)
            if not received.new:
                return self._duplicate(org_ref, event_id)
            record = {
                "event_id": event_id,
                "type": request.type,
                "billing_account": event["organization"]["billing_account"],
                "zammad_organization_id": event["organization"]["zammad_organization_id"],
                "from_plan": state.plan if state else policies.default_plan,
                "requested_plan": request.plan,
                "kind": ruling.kind,
                "reason": ruling.reason,
                "onboarded_from_zammad": onboarded,
                "decided_by": verdict.source,
            }
            if not ruling.allowed:
                store.audit(REFUSED, audit_subject(org_ref), record, now)
                store.audit(REFUSED, _event_subject(event_id), {"reason": ruling.reason}, now)
                log.info("billing event %s for organization %s refused: %s", event_id, org_ref, ruling.reason)
                return 409, {"status": "refused", "reason": ruling.reason}
            if onboarded:
                _adopt(store, policies, org_ref, state, record_in_zammad, now)
                current = store.get_subscription(org_ref)
            if ruling.kind == "cancel" and request.effective > now.date():
                schedule_cancellation(store, org_ref, event_id, request.effective, now)
                response: dict[str, Any] = {
                    "status": "scheduled", "change": "cancel", "plan": state.plan if state else None,
                    "effective": request.effective.isoformat(),
                    "reason": f"cancellation scheduled: {state.plan if state else ''!s} runs until"
                              f" {request.effective.isoformat()}, then {policies.default_plan!r}",
                }
                store.audit(APPLIED, audit_subject(org_ref), {**record, "scheduled": request.effective.isoformat()},
                            now)
                log.info("billing event %s for organization %s: cancellation scheduled for %s",
                         event_id, org_ref, request.effective.isoformat())
                return 200, response
            withdrawn = withdraw_cancellation(store, org_ref, f"superseded by {event_id}", now)
            response = self._apply(policies, org_ref, current, request, ruling, now,
                                   event["subscription"].get("account_managers"))
            if withdrawn is not None:
                response["withdrawn_cancellation"] = withdrawn
            record.update({k: v for k, v in response.items() if k not in ("vip_code", "technical_document")})
            record["vip_code_issued"] = "vip_code" in response
            store.audit(APPLIED, audit_subject(org_ref), record, now)
        if "vip_code" in response:
            response["technical_document"] = self._document(org_ref, record_in_zammad, response["vip_code"], now)
        log.info("billing event %s for organization %s applied: %s", event_id, org_ref, ruling.reason)
        return (201 if first else 200), response

    def _document(self, org_ref: str, record: Mapping[str, Any] | None, code: str,
                  now: dt.datetime) -> dict[str, Any] | None:
        """The technical document with the new VIP code, base64 in the answer (docs/billing.md)."""
        from integrations.techdoc import document_for_billing

        try:
            return document_for_billing(self.store, self.policies(), org_ref, record, code, now)
        except Exception:  # the code is issued and recorded; a failed PDF must not lose it
            log.exception("organization %s: technical document not produced", org_ref)
            return None

    def _apply(self, policies: Policies, org_ref: str, current: Any, request: ChangeRequest, ruling: Ruling,
               now: dt.datetime, requested_managers: Mapping[str, str] | None = None) -> dict[str, Any]:
        store = self.store
        started = current.started_at if current is not None and ruling.kind in ("unchanged", "renewal") else (
            _utc_midnight(request.effective))
        store.put_subscription(org_ref, plan=ruling.plan, started_at=started,
                               commitment_end=_utc_midnight(ruling.commitment_end),
                               billing_period=ruling.billing_period, now=now)
        plan = policies.plans[ruling.plan]
        for role in store.managers_of(org_ref):
            if role not in plan.account_manager_roles:
                store.unassign_manager(org_ref, role)  # the plan no longer includes the role
        for role, person in (requested_managers or {}).items():  # named by the event: a reassignment
            reassign(store, policies, org_ref, role, person, now, by=f"billing event {request.type}", enqueue=False)
        managers: dict[str, str] = {}
        unassigned: list[str] = []
        for role in plan.account_manager_roles:
            spec = policies.roles.get(role)
            pool = spec.pool if spec is not None else ()
            person = store.assign_least_loaded(org_ref, role, pool, spec.capacity if spec else None, now)
            if person is None:
                unassigned.append(role)
                log.warning("organization %s: no %s available (pool empty or at capacity)", org_ref, role)
            else:
                managers[role] = person
        response: dict[str, Any] = {
            "status": "applied",
            "change": ruling.kind,
            "plan": ruling.plan,
            "commitment_end": ruling.commitment_end.isoformat() if ruling.commitment_end else None,
            "account_managers": managers,
            "unassigned_roles": unassigned,
        }
        if plan.vip_code:
            code = issue_vip_code(store, org_ref, now)
            if code is not None:
                response["vip_code"] = code
        return response

    def _refused(self, event_id: str) -> tuple[int, dict[str, Any]] | None:
        """The 409 a refused event id got, found by the id (an indexed audit subject)."""
        for entry in self.store.audit_log(subject=_event_subject(event_id), kind=REFUSED, limit=1):
            return 409, {"status": "refused", "reason": entry.data.get("reason"), "duplicate": True}
        return None


    def _duplicate(self, org_ref: str, event_id: str) -> tuple[int, dict[str, Any]]:
        # Refusals recorded before the per-event audit subject existed are in the organization's log.
        for entry in self.store.audit_log(subject=audit_subject(org_ref), kind=REFUSED, limit=200):
            if entry.data.get("event_id") == event_id:
                return 409, {"status": "refused", "reason": entry.data.get("reason"), "duplicate": True}
        return 200, {"status": "duplicate"}


def _event_subject(event_id: str) -> str:
    return f"billing-event:{event_id}"


def _adopt(store: Store, policies: Policies, org_ref: str, state: Current | None,
           record: Mapping[str, Any] | None, now: dt.datetime) -> None:
    """Record the subscription and managers Zammad shows as the current state (onboarding)."""
    if state is None:
        return
    store.put_subscription(org_ref, plan=state.plan, started_at=now, commitment_end=_utc_midnight(state.commitment_end),
                           billing_period=state.billing_period, now=now)
    for role, person in managers_from_zammad(policies, record, state.plan).items():
        store.assign_manager(org_ref, role, person, now)


def _current(subscription: Any) -> Current | None:
    if subscription is None:
        return None
    end = subscription.commitment_end
    return Current(subscription.plan, end.date() if end is not None else None, subscription.billing_period)


def _serialise(store: Store, key: str) -> None:
    """Serialise concurrent events for one organization (inside ``atomic``)."""
    store.lock(key)
