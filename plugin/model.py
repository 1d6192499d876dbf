"""The plain values policydesk works with: what comes in, what the policies say, what goes out.

Everything here is helpdesk-neutral and immutable.  Integrations fill `Ticket` and
`Organization` from Zammad (or a replay file); the engine returns a `Decision`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any, Generic, TypeVar

T = TypeVar("T")

#: The priority names Zammad ships with; policies use these strings.
PRIORITIES = ("1 low", "2 normal", "3 high")

#: Where a request's language came from, most trusted first: a ticket attribute an agent
#: set (e.g. for a phone call), the language detected in the customer's article, the
#: customer's locale in Zammad (often copied from whoever created the user).
LANGUAGE_SOURCES = ("ticket", "article", "customer")


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
    #: ISO 639-1 language code of the request, e.g. ``fr`` (see `plugin.language.request_language`).
    language: str | None = None
    #: The customer asked for 24/7 emergency handling.
    emergency_requested: bool = False
    state: str = "new"
    #: When an agent first responded or took charge; ``None`` while waiting.
    first_response_at: dt.datetime | None = None
    tags: frozenset[str] = frozenset()
    priority: str | None = None
    #: Periods the SLA clock was paused (states that pause it: `plugin.clock.pauses_clock`),
    #: oldest first; an end of ``None`` means paused now.
    paused: tuple[tuple[dt.datetime, dt.datetime | None], ...] = ()
    #: Where ``language`` came from: one of `LANGUAGE_SOURCES`, ``None`` when unknown.
    language_source: str | None = None
    #: The priority policydesk itself last wrote (the adapter keeps it). A current priority
    #: equal to it is policydesk's, which it may lower again; any other is an agent's.
    applied_priority: str | None = None
    #: The ticket's group and owner (login or e-mail) now, ``None`` when unknown or unset.
    group: str | None = None
    owner: str | None = None


# --------------------------------------------------------------------------- policies


@dataclass(frozen=True)
class Window:
    """One opening window on a day, in local wall-clock minutes since midnight."""

    open: int  # 0..1439
    close: int  # 1..1440; 1440 is "24:00"


#: Escalation recipients that are not roles: the ticket's owner, and ``group:<name>``.
OWNER = "owner"
GROUP_PREFIX = "group:"


@dataclass(frozen=True)
class CalendarSpec:
    """A calendar of hours.yaml as written: what sync needs to write a Zammad calendar."""

    name: str
    title: str
    timezone: str
    #: Weekday (0 = Monday) -> windows; a weekday missing is closed.
    weekly: Mapping[int, tuple[Window, ...]]
    always_open: bool = False
    #: (country, subdivision or ``None``) of each public-holiday source.
    holidays: tuple[tuple[str, str | None], ...] = ()
    closed: tuple[dt.date, ...] = ()
    special_days: Mapping[dt.date, tuple[Window, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class EscalationStep:
    """One rung of an escalation ladder: at ``at_percent`` of the target, do ``actions``."""

    name: str
    at_percent: float
    #: Tags to add, e.g. ``("sla:warning",)``.
    tags: tuple[str, ...] = ()
    #: Priority to raise the ticket to while the step holds, or ``None``.
    priority: str | None = None
    #: Who hears of the step: role names (``"account_manager"``), ``"owner"`` (the ticket's
    #: owner) and ``"group:<name>"`` (a Zammad group).
    notify: tuple[str, ...] = ()
    #: Stable identifier (the policy's ``id``, else the name): timers, notifications and
    #: digests refer to a step by it, never by text.
    id: str = ""

    def __post_init__(self) -> None:
        if not self.id:
            object.__setattr__(self, "id", self.name)


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
    #: Zammad group of the role (advice requests are routed there), or ``None``.
    group: str | None = None


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
    #: Channels by which 24/7 emergency handling may be asked for ("emergency calls").
    emergency_channels: frozenset[str] = frozenset({"phone"})
    #: Ready replies to a refused emergency: language -> reason key -> sentence; keys are
    #: ``intro``, ``plan``, ``channel``, ``category``, ``language``, ``scope``, ``closing``.
    emergency_replies: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    #: Language of the reply when the customer's has none.
    reply_fallback_language: str = "en"
    #: Customised advice: its category, the calendar of its hours, and where it goes.
    advice: AdviceRules | None = None


@dataclass(frozen=True)
class AdviceRules:
    """Customised advice (Enterprise in the seed, Mon-Fri 09:00-18:00)."""

    category: str
    #: The advice hours.
    calendar: str
    #: The group advice requests are routed to, and the role whose person owns them.
    group: str | None = None
    owner_role: str | None = None


@dataclass(frozen=True)
class RouteRule:
    """Where a kind of request goes: a Zammad group and/or an owner role."""

    group: str | None = None
    #: An account-manager role whose person (for the organization) becomes the owner.
    owner_role: str | None = None


@dataclass(frozen=True)
class RoutingRules:
    """Routing by what the request is, most specific first: a granted emergency, a
    category, the plan. Advice is routed by `AdviceRules`."""

    emergency: RouteRule | None = None
    categories: Mapping[str, RouteRule] = field(default_factory=dict)
    plans: Mapping[str, RouteRule] = field(default_factory=dict)


@dataclass(frozen=True)
class PlanChanges:
    """What the contract allows when a plan changes (from the seed: up any time, never down)."""

    upgrade: str  # "immediate"
    downgrade: str  # "never" | "after_commitment"
    cancel: str  # "after_commitment" | "any_time"
    #: A hand edit in Zammad that contradicts the subscription: "revert" | "warn".
    hand_edits: str = "revert"


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
    #: Ticket states that pause the clock; ``None`` follows Zammad (each state's
    #: ``ignore_escalation``), see `plugin.clock.pauses_clock`.
    pause_states: frozenset[str] | None = None
    #: What reaches people at once even outside their hours: ``"emergency"`` (a granted
    #: emergency) and/or step ids.
    urgent: frozenset[str] = frozenset({"emergency"})
    routing: RoutingRules = field(default_factory=RoutingRules)
    #: Calendar name -> its definition as written (for sync, which writes Zammad calendars).
    calendar_specs: Mapping[str, CalendarSpec] = field(default_factory=dict)
    #: A short digest of the policy files (12 hex of sha256 over names and bytes).
    version: str = ""


# --------------------------------------------------------------------------- output


class _Written:
    """Fields given as a callable are written when first read, then kept.

    Most decisions are never explained: the adapter reads reasons, notes and notification
    texts only when a decision's fingerprint changes, ``explain`` always. Formatting
    instants into sentences was a quarter of every decision's cost, so the built-ins pass
    ``lambda: f"..."`` where a sentence is costly. The callable for field ``x`` waits in
    the instance as ``_write_x``; equality, hashing, ``repr``, pickling and
    `dataclasses.replace` read the field like any other.
    """

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        # Called only for a name the instance does not hold: a field not yet written.
        attrs = self.__dict__
        write = attrs.get("_write_" + name)
        if write is None:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        value = attrs[name] = write()
        return value

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        for key in [k for k in state if k.startswith("_write_")]:
            del state[key]
            name = key[len("_write_"):]
            state[name] = getattr(self, name)
        return state


def _put_text(attrs: dict[str, Any], name: str, text: str | Callable[[], str]) -> None:
    """Field ``name`` of a `_Written` instance: the text, or the callable that writes it."""
    attrs[name if isinstance(text, str) else "_write_" + name] = text


def _init_reasoned(self: Any, value: Any, source: str, reason: str | Callable[[], str]) -> None:
    """``__init__`` of `Verdict` and `Contribution`: value, source and a reason, written as
    `_put_text` writes it (inlined: one call for every verdict)."""
    # A frozen dataclass's own __init__ sets each field through object.__setattr__, about
    # three times the cost of writing the instance dict; these types are made for every decision.
    attrs = self.__dict__
    attrs["value"] = value
    attrs["source"] = source
    attrs["reason" if isinstance(reason, str) else "_write_reason"] = reason


@dataclass(frozen=True, init=False)
class Verdict(_Written, Generic[T]):
    """One hook's answer: a value, the hook that gave it, and why.

    A hook returns ``None`` for "no opinion"; a `Verdict` whose ``value`` is ``None`` is an
    answer ("this plan guarantees no response time"). ``reason`` may be given as a callable
    returning the sentence: it is called once, when the reason is first read.
    """

    value: T
    source: str
    reason: str

    if TYPE_CHECKING:
        def __init__(self, value: T, source: str, reason: str | Callable[[], str]) -> None: ...
    else:
        __init__ = _init_reasoned  # one call for every verdict


@dataclass(frozen=True)
class EmergencyVerdict:
    requested: bool
    eligible: bool
    #: Why eligible or not, one sentence each (every failed condition is listed).
    reasons: tuple[str, ...]
    #: Keys of the failed conditions (``plan``, ``channel``, ``category``, ``language``,
    #: ``scope``), in `reasons`' order; empty when granted or not requested.
    refused_for: tuple[str, ...] = ()
    #: A refused emergency: the reply an agent can send the customer, and its language.
    reply: str | None = None
    reply_language: str | None = None


@dataclass(frozen=True)
class Routing:
    """Where the ticket should be: a Zammad group and an owner; ``None`` leaves it as is.

    The adapter writes a routing once and again only when the decision's routing changes,
    so an agent's later reassignment stands.
    """

    group: str | None = None
    owner: str | None = None


@dataclass(frozen=True)
class AdviceVerdict:
    """A request for customised advice."""

    requested: bool
    #: The plan includes customised advice.
    included: bool = False
    #: The advice hours are open at ``now``.
    open_now: bool = False
    #: Outside the advice hours: when the next advice window opens (the request waits).
    queued_until: dt.datetime | None = None


@dataclass(frozen=True, init=False)
class Notification(_Written):
    """Who hears of an escalation step, and when.

    ``deliver_at`` equals the decision's ``now`` when the notification goes out at once;
    later, it is held until then (the recipient's digest).
    """

    #: `EscalationStep.id` of the step.
    step_id: str
    #: ``"role"``, ``"group"`` or ``"owner"``.
    kind: str
    #: The role name, the group name, or ``"owner"``.
    recipient: str
    #: Who that is for this ticket (the role's person, the owner); ``None`` for a group.
    person: str | None
    immediate: bool
    deliver_at: dt.datetime
    #: The message: what holds, for whom.
    text: str
    source: str
    reason: str

    def __init__(self, step_id: str, kind: str, recipient: str, person: str | None, immediate: bool,
                 deliver_at: dt.datetime, text: str | Callable[[], str], source: str,
                 reason: str | Callable[[], str]) -> None:
        attrs = self.__dict__  # text and reason may be written when first read (`_Written`)
        attrs["step_id"] = step_id
        attrs["kind"] = kind
        attrs["recipient"] = recipient
        attrs["person"] = person
        attrs["immediate"] = immediate
        attrs["deliver_at"] = deliver_at
        _put_text(attrs, "text", text)
        attrs["source"] = source
        _put_text(attrs, "reason", reason)


@dataclass(frozen=True)
class ScopeVerdict:
    in_scope: bool
    category: str | None
    #: Text telling the customer where to go instead, when out of scope.
    referral: str | None = None


@dataclass(frozen=True, init=False)
class EscalationState:
    """Where a ticket stands on its plan's escalation ladder at ``now``."""

    #: The highest step whose instant has passed, or ``None``.
    step: EscalationStep | None
    #: Instant each step is (or was) due, by step name.
    due: Mapping[str, dt.datetime]
    #: The next step not yet due, and when.
    next_step: str | None = None
    next_due: dt.datetime | None = None

    def __init__(self, step: EscalationStep | None, due: Mapping[str, dt.datetime], next_step: str | None = None,
                 next_due: dt.datetime | None = None) -> None:
        attrs = self.__dict__  # made for every decision: see `_init_reasoned`
        attrs["step"] = step
        attrs["due"] = due
        attrs["next_step"] = next_step
        attrs["next_due"] = next_due


@dataclass(frozen=True, init=False)
class Contribution(_Written):
    """An item contributed by a collecting hook (a tag, a note line); ``reason`` as in `Verdict`."""

    value: str
    source: str
    reason: str

    if TYPE_CHECKING:
        def __init__(self, value: str, source: str, reason: str | Callable[[], str]) -> None: ...
    else:
        __init__ = _init_reasoned


@dataclass(frozen=True)
class Decision(_Written):
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
    #: The request's language, and where it came from (in the reason).
    language: Verdict[str | None] | None = None
    #: May the organization be on its plan (partners: plans open to partners)?
    eligibility: Verdict[bool] | None = None
    advice: Verdict[AdviceVerdict] | None = None
    routing: Verdict[Routing] | None = None
    #: Who hears of the step reached, and when.
    notifications: tuple[Notification, ...] = ()

    def with_(self, **changes: Any) -> Decision:
        """A copy with ``changes`` applied (like `dataclasses.replace`, but cheap).

        The engine makes ten of these per decision: copying the instance dict skips
        ``replace``'s field introspection and the frozen ``__init__``.
        """
        if type(self) is not Decision or not _DECISION_FIELDS.issuperset(changes):
            return replace(self, **changes)  # subclasses, and the usual error for unknown fields
        new = _new_object(Decision)
        attrs = new.__dict__
        attrs.update(self.__dict__)  # notes not yet written are written by the same hooks
        attrs.update(changes)
        return new

    @classmethod
    def blank(cls, now: dt.datetime, write_notes: Callable[[], tuple[Contribution, ...]] | None = None) -> Decision:
        """A Decision with every field but ``now`` unset (its default), for the engine to
        fill field by field; ``write_notes``, when given, writes its notes when first read."""
        new = _new_object(Decision)
        attrs = new.__dict__
        if write_notes is None:
            attrs.update(_DECISION_DEFAULTS)
        else:
            attrs.update(_DECISION_DEFAULTS_BUT_NOTES)
            attrs["_write_notes"] = write_notes
        attrs["now"] = now
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
_DECISION_DEFAULTS = {f.name: f.default for f in fields(Decision) if f.name != "now"}
_DECISION_DEFAULTS_BUT_NOTES = {name: value for name, value in _DECISION_DEFAULTS.items() if name != "notes"}
# Notes an engine's decision has not written yet are found through ``__getattr__``: no
# class attribute may answer for them first (``__init__`` keeps its default of ``()``).
del Decision.notes


# --------------------------------------------------------------------------- hook input


@dataclass(frozen=True, init=False)
class Request:
    """What every hook receives: the ticket, its organization, the instant and the policies."""

    ticket: Ticket
    organization: Organization
    now: dt.datetime
    policies: Policies

    def __init__(self, ticket: Ticket, organization: Organization, now: dt.datetime, policies: Policies) -> None:
        attrs = self.__dict__  # made for every decision: see `_init_reasoned`
        attrs["ticket"] = ticket
        attrs["organization"] = organization
        attrs["now"] = now
        attrs["policies"] = policies

    def plan_of(self, decision: Decision) -> Plan:
        """The `Plan` the decision has chosen (call only once ``decision.plan`` is set)."""
        assert decision.plan is not None
        return self.policies.plans[decision.plan.value]
