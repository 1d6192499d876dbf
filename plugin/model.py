"""The plain values policydesk works with: what comes in, what the policies say, what goes out.

Everything here is helpdesk-neutral and immutable.  Integrations fill `Ticket` and
`Organization` from Zammad (or a replay file); the engine returns a `Decision`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, fields, replace
from typing import Any, Generic, Mapping, TypeVar

T = TypeVar("T")

#: The priority names Zammad ships with; policies use these strings.
PRIORITIES = ("1 low", "2 normal", "3 high")


# --------------------------------------------------------------------------- input


@dataclass(frozen=True)
class Organization:
    """The customer organization a ticket belongs to."""

    id: int | str | None = None
    name: str = ""
    #: The plan the organization is on; ``None`` means "not set" (the default plan applies).
    plan: str | None = None
    #: Who fills each account-manager role, e.g. ``{"account_manager": "ana@provider.example"}``.
    account_managers: Mapping[str, str] = field(default_factory=dict)
    partner: bool = False
    commitment_end: dt.date | None = None


@dataclass(frozen=True)
class Ticket:
    """A support request, as the engine needs to see it."""

    id: int | str | None
    #: How the request came in: ``phone``, ``email``, ``web``, ``chat``, ... (Zammad's
    #: ``create_article_type``).
    channel: str
    #: When the request arrived (timezone-aware).
    created_at: dt.datetime
    category: str | None = None
    #: ISO 639-1 language code of the customer, e.g. ``fr``.
    language: str | None = None
    #: The customer asked for 24/7 emergency handling.
    emergency_requested: bool = False
    state: str = "new"
    #: When an agent first responded or took charge; ``None`` while waiting.
    first_response_at: dt.datetime | None = None
    tags: frozenset[str] = frozenset()
    priority: str | None = None
    #: Periods the SLA clock was paused (Zammad's pending states), oldest first; an end of
    #: ``None`` means paused now.
    paused: tuple[tuple[dt.datetime, dt.datetime | None], ...] = ()


# --------------------------------------------------------------------------- policies


@dataclass(frozen=True)
class Window:
    """One opening window on a day, in local wall-clock minutes since midnight."""

    open: int  # 0..1439
    close: int  # 1..1440; 1440 is "24:00"


@dataclass(frozen=True)
class EscalationStep:
    """One rung of an escalation ladder: at ``at_percent`` of the target, do ``actions``."""

    name: str
    at_percent: float
    #: Tags to add, e.g. ``("sla:warning",)``.
    tags: tuple[str, ...] = ()
    #: Priority to raise the ticket to (never lowered), or ``None``.
    priority: str | None = None
    #: Account-manager roles to notify, e.g. ``("account_manager",)``.
    notify: tuple[str, ...] = ()


@dataclass(frozen=True)
class Plan:
    """One support plan, as `policies/plans.yaml` describes it."""

    name: str
    title: str
    #: Order of plans: a higher rank is a higher plan (upgrades go up).
    rank: int
    paid: bool
    #: Guaranteed first response in business minutes of the counting calendar; ``None``
    #: means no guarantee ("promptly").
    first_response_minutes: int | None
    emergency_24_7: bool
    #: Account-manager roles this plan includes, e.g. ``("account_manager",
    #: "technical_account_manager")``.
    account_manager_roles: tuple[str, ...]
    customised_advice: bool
    open_to_partners: bool
    vip_code: bool
    minimum_commitment_months: int
    #: Channel -> calendar name, already merged with the global channel map.
    channel_calendars: Mapping[str, str]
    #: Calendar for channels not in ``channel_calendars``.
    default_calendar: str
    priority: str
    escalation: tuple[EscalationStep, ...]


@dataclass(frozen=True)
class Role:
    """An account-manager role (``account_manager``, ``technical_account_manager``)."""

    name: str
    title: str
    #: The calendar of the role's own working hours.
    calendar: str
    #: People (Zammad logins or e-mails) from whom the role is assigned, least loaded first.
    pool: tuple[str, ...] = ()
    #: Most organizations one person of the pool takes; ``None`` for no limit.
    capacity: int | None = None
    #: croniter expression, in the role calendar's time zone, at which notifications held
    #: outside the role's hours are sent as a digest (e.g. ``"0 9 * * mon-fri"``).
    digest: str | None = None


@dataclass(frozen=True)
class OutOfScope:
    category: str
    referral: str


@dataclass(frozen=True)
class ScopeRules:
    #: Known request categories -> human title.
    categories: Mapping[str, str]
    emergency_categories: frozenset[str]
    emergency_languages: frozenset[str]
    emergency_calendar: str
    emergency_priority: str
    out_of_scope: Mapping[str, OutOfScope]


@dataclass(frozen=True)
class PlanChanges:
    """What the contract allows when a plan changes (from the seed: up any time, never down)."""

    upgrade: str  # "immediate"
    downgrade: str  # "never" | "after_commitment"
    cancel: str  # "after_commitment" | "any_time"


@dataclass(frozen=True)
class Policies:
    """Everything in ``policies/``, loaded, validated and cross-checked."""

    #: Directory the policies were loaded from (for messages).
    source: str
    default_timezone: str
    #: Calendar name -> `plugin.calendar.BusinessCalendar`.
    calendars: Mapping[str, Any]
    default_plan: str
    plans: Mapping[str, Plan]
    roles: Mapping[str, Role]
    scope: ScopeRules
    plan_changes: PlanChanges
    #: croniter expression for the escalation sweep.
    escalation_sweep: str = "* * * * *"
    #: The raw documents, by file name, for integrations that sync them elsewhere.
    documents: Mapping[str, Any] = field(default_factory=dict)



# --------------------------------------------------------------------------- output


@dataclass(frozen=True)
class Verdict(Generic[T]):
    """One hook's answer: a value, the hook that gave it, and why.

    A hook returns ``None`` for "no opinion"; a `Verdict` whose ``value`` is ``None`` is an
    answer ("this plan guarantees no response time").
    """

    value: T
    source: str
    reason: str


@dataclass(frozen=True)
class EmergencyVerdict:
    requested: bool
    eligible: bool
    #: Why eligible or not, one sentence each (every failed condition is listed).
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class ScopeVerdict:
    in_scope: bool
    category: str | None
    #: Text telling the customer where to go instead, when out of scope.
    referral: str | None = None


@dataclass(frozen=True)
class EscalationState:
    """Where a ticket stands on its plan's escalation ladder at ``now``."""

    #: The highest step whose instant has passed, or ``None``.
    step: EscalationStep | None
    #: Instant each step is (or was) due, by step name.
    due: Mapping[str, dt.datetime]
    #: The next step not yet due, and when.
    next_step: str | None = None
    next_due: dt.datetime | None = None


@dataclass(frozen=True)
class Contribution:
    """An item contributed by a collecting hook (a tag, a note line)."""

    value: str
    source: str
    reason: str


@dataclass(frozen=True)
class Decision:
    """What policydesk decides for one ticket at one instant.

    Every single-valued field is a `Verdict` (value + source + reason) or ``None`` when no
    hook had an opinion; ``tags`` and ``notes`` collect contributions from every hook.
    """

    now: dt.datetime
    plan: Verdict[str] | None = None
    scope: Verdict[ScopeVerdict] | None = None
    emergency: Verdict[EmergencyVerdict] | None = None
    #: Name of the calendar whose opening hours count for the first response.
    calendar: Verdict[str] | None = None
    first_response_due: Verdict[dt.datetime | None] | None = None
    #: Role -> person filling it.
    account_managers: Verdict[Mapping[str, str]] | None = None
    escalation: Verdict[EscalationState] | None = None
    priority: Verdict[str] | None = None
    tags: tuple[Contribution, ...] = ()
    notes: tuple[Contribution, ...] = ()

    def with_(self, **changes: Any) -> "Decision":
        """A copy with ``changes`` applied (like `dataclasses.replace`, but cheap).

        The engine makes ten of these per decision: copying the instance dict skips
        ``replace``'s field introspection and the frozen ``__init__``.
        """
        if type(self) is not Decision or not _DECISION_FIELDS.issuperset(changes):
            return replace(self, **changes)  # subclasses, and the usual error for unknown fields
        new = _new_object(Decision)
        attrs = new.__dict__
        attrs.update(self.__dict__)
        attrs.update(changes)
        return new

    @property
    def tag_names(self) -> tuple[str, ...]:
        """Tags in contribution order, without repeats."""
        return tuple(dict.fromkeys(c.value for c in self.tags))

    @property
    def note_text(self) -> str:
        """The internal note for agents: the contributed sentences, one per line."""
        return "\n".join(c.value for c in self.notes)


_new_object = object.__new__
#: Decision's fields, all settable through ``__init__`` (and so through `Decision.with_`).
_DECISION_FIELDS = frozenset(f.name for f in fields(Decision))


# --------------------------------------------------------------------------- hook input


@dataclass(frozen=True)
class Request:
    """What every hook receives: the ticket, its organization, the instant and the policies."""

    ticket: Ticket
    organization: Organization
    now: dt.datetime
    policies: Policies

    def plan_of(self, decision: Decision) -> Plan:
        """The `Plan` the decision has chosen (call only once ``decision.plan`` is set)."""
        assert decision.plan is not None
        return self.policies.plans[decision.plan.value]
