"""``policydesk reconcile``: bring every open ticket (or those changed since) in line.

On a desk that already has open tickets, the first reconcile evaluates each of them as a
webhook would (plan, hours, deadline, tags, attributes, note, timers); later runs change
only what differs, so a repeat is a no-op (the adapter's fingerprint).  It also gives
every organization a support code when billing's ``ensure_support_code`` exists.

::

    summary = reconcile(processor, since=dt.timedelta(hours=2), now=now, progress=bar)
    print(summary.render())

The tickets come from `integrations.zammad.search` (condition searches: Zammad runs them as
SQL, with or without Elasticsearch); each organization is read once, however many tickets
it has.
"""

from __future__ import annotations

import datetime as dt
import inspect
import logging
import re
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, TextIO

from integrations.zammad import mapping, search
from integrations.zammad.errors import ZammadError, ZammadNotFound
from integrations.zammad.resources import iter_all

log = logging.getLogger("policydesk.reconcile")

__all__ = ["Progress", "ReconcileSummary", "parse_duration", "reconcile", "reconcile_record"]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|min|h|d|w)\s*$")
_UNITS = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> dt.timedelta:
    """``"90s"``, ``"15m"``, ``"2h"``, ``"1d"``, ``"1w"`` -> timedelta.

    :raises ValueError: with a message saying what was expected.
    """
    match = _DURATION.match(str(text))
    if not match:
        raise ValueError(f"expected a duration like 15m, 2h or 1d, got {text!r}")
    return dt.timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])


# --------------------------------------------------------------------------- progress


class Progress:
    """The shared progress bar (`integrations.progress.ProgressBar`) on a terminal; nothing
    otherwise, so logs and pipes stay clean."""

    def __init__(self, stream: TextIO | None = None, *, enabled: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.bar: Any = None

    def start(self, total: int) -> None:
        from integrations.progress import ProgressBar

        self.bar = ProgressBar(total, self.stream, label="reconcile", enabled=self.enabled, unit="tickets")

    def step(self, done: int) -> None:
        if self.bar is not None:
            self.bar.update(done, done, force=done == self.bar.total)

    def finish(self) -> None:
        if self.bar is not None:
            self.bar.close()


# --------------------------------------------------------------------------- the summary


@dataclass
class ReconcileSummary:
    dry_run: bool = False
    since: str | None = None
    examined: int = 0
    #: Tickets written (or that would be, in a dry run).
    changed: int = 0
    unchanged: int = 0
    #: Tickets that vanished or could not be evaluated, with the reason.
    failed: list[str] = field(default_factory=list)
    organizations: int = 0
    #: Organizations given a support code (or that would be).
    support_codes: int = 0
    #: Why support codes were not handled, when they were not.
    support_code_note: str | None = None
    seconds: float = 0.0

    def as_json(self) -> dict[str, Any]:
        return {"dry_run": self.dry_run, "since": self.since, "examined": self.examined, "changed": self.changed,
                "unchanged": self.unchanged, "failed": list(self.failed), "organizations": self.organizations,
                "support_codes": self.support_codes, "support_code_note": self.support_code_note,
                "seconds": round(self.seconds, 3)}

    def render(self) -> str:
        verb = "would change" if self.dry_run else "changed"
        scope = f"changed since {self.since}" if self.since else "open"
        lines = [f"{self.examined} {scope} ticket{'s' if self.examined != 1 else ''} examined: {self.changed} "
                 f"{verb}, {self.unchanged} already in line, {len(self.failed)} failed ({self.seconds:.1f} s)"]
        lines += [f"  failed: {reason}" for reason in self.failed]
        if self.support_code_note:
            lines.append(f"support codes: {self.support_code_note}")
        else:
            lines.append(f"{self.organizations} organization{'s' if self.organizations != 1 else ''}: "
                         f"{self.support_codes} {'would get' if self.dry_run else 'given'} a support code")
        return "\n".join(lines)


# --------------------------------------------------------------------------- one ticket


def _accepts(function: Callable[..., Any], name: str) -> bool:
    try:
        return name in inspect.signature(function).parameters
    except (TypeError, ValueError):
        return False


def reconcile_record(processor: Any, record: Mapping[str, Any], organization: Mapping[str, Any] | None,
                     now: dt.datetime, *, trigger: str = "policydesk reconcile") -> str:
    """Bring one ticket in line, giving the processor the records already read (when it
    takes them: then the ticket and its organization are not read again)."""
    extra: dict[str, Any] = {}
    if trigger and _accepts(processor.reconcile_ticket, "trigger"):
        extra["trigger"] = trigger
    if _accepts(processor.reconcile_ticket, "record"):
        extra["record"] = record
    if organization is not None and _accepts(processor.reconcile_ticket, "organization"):
        extra["organization"] = organization
    return processor.reconcile_ticket(int(record["id"]), now, **extra)


def would_change(processor: Any, record: Mapping[str, Any], organization: Mapping[str, Any] | None,
                 now: dt.datetime) -> bool:
    """Whether reconciling the ticket would write anything (reads Zammad only): the decision's
    fingerprint differs from the one policydesk last wrote, the adapter's own "unchanged" test."""
    tid = int(record["id"])
    applied = processor.applied_state(tid) if hasattr(processor, "applied_state") else None
    extra: dict[str, Any] = {"record": record, "organization": organization, "applied": applied}
    load = processor.adapter.load_context
    ticket, org, state = load(tid, **{k: v for k, v in extra.items() if v is not None and _accepts(load, k)})
    with_pauses = getattr(processor, "_with_pauses", None)
    if with_pauses is not None and applied is not None:  # a paused clock changes the deadline
        ticket = with_pauses(tid, ticket, now, applied)[0]
    decision = processor.engine().evaluate(ticket, org, now)
    newer = applied is not None and hasattr(applied, "newer_than") and applied.newer_than(state.record)
    current = applied.fingerprint if newer and applied is not None else state.fingerprint
    return mapping.decision_fingerprint(decision) != current


# --------------------------------------------------------------------------- every ticket


def _organization_cache(client: Any) -> Callable[[Any], Mapping[str, Any] | None]:
    cache: dict[int, Mapping[str, Any] | None] = {}

    def organization(organization_id: Any) -> Mapping[str, Any] | None:
        if organization_id in (None, "", 0):
            return None
        key = int(organization_id)
        if key not in cache:  # one read per organization, however many tickets it has
            try:
                cache[key] = client.organizations.find(key, expand=True)
            except ZammadNotFound:
                cache[key] = None
        return cache[key]

    return organization


def reconcile(processor: Any, *, now: dt.datetime, since: dt.timedelta | None = None, dry_run: bool = False,
              progress: Progress | None = None, support_codes: bool = True,
              clock: Callable[[], float] = time.monotonic) -> ReconcileSummary:
    """Evaluate every open ticket, or every ticket changed within ``since``; then give every
    organization a support code (when billing provides ``ensure_support_code``)."""
    started = clock()
    client = processor.adapter.client
    summary = ReconcileSummary(dry_run=dry_run, since=_human(since) if since else None)
    records: list[dict[str, Any]]
    if since is not None:
        records = search.tickets_changed_since(client, now - since, open_only=False)
    else:
        records = list(search.open_tickets(client))
    progress = progress or Progress(enabled=False)
    progress.start(len(records))
    organization = _organization_cache(client)
    for done, record in enumerate(records, 1):
        tid = int(record["id"])
        summary.examined += 1
        try:
            if dry_run:
                changed = would_change(processor, record, organization(record.get("organization_id")), now)
            else:
                changed = reconcile_record(processor, record, organization(record.get("organization_id")),
                                           now) == "applied"
        except ZammadNotFound:
            summary.failed.append(f"ticket {tid}: vanished meanwhile")
            changed = None
        except (ZammadError, ValueError) as error:
            summary.failed.append(f"ticket {tid}: {error}")
            log.warning("reconcile: ticket %s: %s", tid, error)
            changed = None
        if changed is True:
            summary.changed += 1
        elif changed is False:
            summary.unchanged += 1
        progress.step(done)
    progress.finish()
    if support_codes:
        _support_codes(processor, summary, dry_run=dry_run)
    summary.seconds = clock() - started
    return summary


#: Where billing's support-code function lives (issue 12); reconcile calls it when present.
SUPPORT_CODE_MODULE = "integrations.support_code"
SUPPORT_CODE_FUNCTION = "ensure_support_code"


def support_code_function() -> Callable[..., Any] | None:
    """billing's ``ensure_support_code(adapter, organization_record) -> str``, if it exists yet."""
    import importlib

    try:
        module = importlib.import_module(SUPPORT_CODE_MODULE)
    except ImportError:
        return None
    return getattr(module, SUPPORT_CODE_FUNCTION, None)


def _support_codes(processor: Any, summary: ReconcileSummary, *, dry_run: bool) -> None:
    ensure = support_code_function()
    if ensure is None:
        summary.support_code_note = (f"not handled: {SUPPORT_CODE_MODULE}.{SUPPORT_CODE_FUNCTION} does not exist "
                                     "in this version")
        return
    import importlib

    module = importlib.import_module(SUPPORT_CODE_MODULE)
    attribute = getattr(module, "ORG_SUPPORT_CODE", "support_code")
    code_of = getattr(module, "support_code", None)  # the code an organization should have
    adapter = processor.adapter
    for record in _organizations(adapter.client):
        summary.organizations += 1
        have = str(record.get(attribute) or "")
        if have and (code_of is None or have == code_of(int(record["id"]))):
            continue
        summary.support_codes += 1
        if not dry_run:
            ensure(adapter, record)


def _organizations(client: Any) -> Iterable[dict[str, Any]]:
    return iter_all(client.organizations, per_page=100)


def _human(delta: dt.timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
